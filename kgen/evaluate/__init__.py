"""Evaluate any generative model (checkpoint or export) or a folder of images against a dataset split.

    python -m kgen.evaluate runs/dcgan/checkpoints/last.keras
    python -m kgen.evaluate exported/mnist_denoiser.onnx --per-class 100 --guidance-scale 1,4 --inception

Feature-space distances that use the dataset classifier trained by
`recipes/train_classifier.py` are labelled `classifier[<name>]`; they are not
Inception FIDs and must not be compared with published FIDs. `--inception`
adds FID and KID of the standard FID network (`kgen.evaluate.inception`,
the `fid` extra), which are comparable at the same n and reference set.
"""

from kgen.utils.lazy import lazy_attributes

# Names load on first use, so `python -m kgen.evaluate --help` does not import Keras.
_HOMES = {
    **dict.fromkeys(("DEFAULT_CLASSIFIER_DIR", "evaluate", "format_table"), "evaluation"),
    "ClassifierFeatures": "features",
    "open_source": "sources",
    **dict.fromkeys(("evaluate_vae", "load_split"), "vae_evaluation"),
}
__all__ = sorted(_HOMES)
__getattr__ = lazy_attributes(__name__, _HOMES)

