"""Reading a kgen `.keras` checkpoint back: the trainer, and the names its run recorded."""

import json
import os

import keras

from kgen.trainers.generative_trainer import GenerativeTrainer


def run_config(checkpoint):
    """The recipe's config.json of the run a checkpoint belongs to (`<run>/checkpoints/x.keras`), or {}."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(checkpoint))), "config.json")
    if os.path.isfile(path):
        with open(path) as f:
            return json.load(f)
    return {}


def run_names(checkpoint):
    """`(dataset, class_names)` recorded by the checkpoint's run, each None when unknown."""
    config = run_config(checkpoint)
    info = config.get("dataset") if isinstance(config.get("dataset"), dict) else {}
    dataset = info.get("name") or (config.get("dataset") if isinstance(config.get("dataset"), str) else None)
    return dataset or config.get("data"), config.get("class_names") or info.get("class_names")


def check_checkpoint_path(path):
    """Refuses a path that is not an existing `.keras` file (`.h5` is never read: it can run code)."""
    if not (os.path.isfile(path) and path.endswith(".keras")):
        raise ValueError(f"checkpoint {path!r}: give an existing .keras file written by a kgen recipe.")


def load_trainer(path):
    """The `GenerativeTrainer` saved in the `.keras` file `path` (any backend wrote it).

    Raises `ValueError` for a missing, foreign or damaged file.
    """
    import kgen.trainers  # noqa: F401  (registers kgen's classes with Keras)

    check_checkpoint_path(path)
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises several types for foreign or damaged files
        raise ValueError(f"cannot load {path} as a kgen checkpoint ({type(error).__name__}: {error}).") from None
    if not isinstance(model, GenerativeTrainer):
        raise ValueError(f"{path} holds a {type(model).__name__}, not a kgen generative model "
                         "(a DCGAN, VAE, DDPM or another GenerativeTrainer).")
    return model


def describe_checkpoint(path, part=None, dataset=None, class_names=None):
    """`(network, metadata)` of one part of a checkpoint, named from its run's config.

    Args:
        path: str. A `.keras` file.
        part: str or None. A part of the trainer's `inference_parts()`;
            None is the main one.
        dataset: str or None. Overrides the run's dataset name.
        class_names: list of str or None. Overrides the run's class names.
    """
    model = load_trainer(path)
    if class_names:  # given, not read from the run: check them against the model
        if not model.class_conditional:
            raise ValueError(f"{path} holds an unconditional {type(model).__name__}; --class-names applies to "
                             "class-conditional models.")
        if len(class_names) != model.num_classes:
            raise ValueError(f"{path} has {model.num_classes} classes; --class-names gave {len(class_names)}.")
    run_dataset, run_classes = run_names(path)
    return model.export_part(part, dataset or run_dataset, class_names or run_classes)
