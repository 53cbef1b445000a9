"""Evaluate a generator (checkpoint) or a folder of images against a dataset split.

    python -m kgen.evaluate runs/dcgan/checkpoints/last.keras --data mnist

Feature-space distances use the dataset classifier trained by
`recipes/train_classifier.py` and are labelled `classifier[<name>]`; they are
not Inception FIDs and must not be compared with published FIDs. Inception
features (`keras.applications.InceptionV3` pool features at 299x299) are used
only when a local weights file is given.
"""

from kgen.evaluate.denoiser_evaluation import evaluate_denoiser
from kgen.evaluate.evaluation import (
    DEFAULT_CLASSIFIER_DIR,
    ClassifierFeatures,
    InceptionFeatures,
    evaluate,
    generated_images,
)
from kgen.evaluate.vae_evaluation import evaluate_vae, evaluate_vae_checkpoint, load_split

__all__ = ["DEFAULT_CLASSIFIER_DIR", "ClassifierFeatures", "InceptionFeatures", "evaluate", "evaluate_denoiser", "evaluate_vae", "evaluate_vae_checkpoint", "load_split", "generated_images"]
