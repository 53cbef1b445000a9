"""Evaluate any generative model (checkpoint or export) or a folder of images against a dataset split.

    python -m kgen.evaluate runs/dcgan/checkpoints/last.keras
    python -m kgen.evaluate exported/mnist_denoiser.onnx --per-class 100 --guidance-scale 1,4 --inception

Feature-space distances that use the dataset classifier trained by
`recipes/train_classifier.py` are labelled `classifier[<name>]`; they are not
Inception FIDs and must not be compared with published FIDs. `--inception`
adds FID and KID of the standard FID network (`kgen.evaluate.inception`,
the `fid` extra), which are comparable at the same n and reference set.
"""

from kgen.evaluate.evaluation import DEFAULT_CLASSIFIER_DIR, ClassifierFeatures, evaluate, format_table
from kgen.evaluate.sources import open_source
from kgen.evaluate.vae_evaluation import evaluate_vae, load_split

__all__ = ["DEFAULT_CLASSIFIER_DIR", "ClassifierFeatures", "evaluate", "evaluate_vae", "format_table", "load_split",
           "open_source"]
