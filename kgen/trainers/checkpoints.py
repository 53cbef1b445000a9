"""Reading a kgen `.keras` checkpoint back as its trainer."""

import os

import keras

from kgen.trainers.generative_trainer import GenerativeTrainer


def check_checkpoint_path(path: str) -> None:
    """Refuses a path that is not an existing `.keras` file (`.h5` is never read: it can run code)."""
    if not (os.path.isfile(path) and path.endswith(".keras")):
        raise ValueError(f"checkpoint {path!r}: give an existing .keras file written by a kgen recipe.")


def load_trainer(path: str) -> GenerativeTrainer:
    """The `GenerativeTrainer` saved in the `.keras` file `path` (any backend wrote it).

    Raises `ValueError` for a missing, foreign or damaged file.
    """
    check_checkpoint_path(path)
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises several types for foreign or damaged files
        detail = (str(error).strip().splitlines() or [""])[0]
        detail = detail if len(detail) <= 200 else detail[:200] + "..."  # a refused config can be kilobytes
        raise ValueError(f"cannot load {path} as a kgen checkpoint ({type(error).__name__}: {detail}).") from None
    if not isinstance(model, GenerativeTrainer):
        raise ValueError(f"{path} holds a {type(model).__name__}, not a kgen generative model "
                         "(a DCGAN, VAE, DDPM or another GenerativeTrainer).")
    return model
