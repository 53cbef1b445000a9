"""Saving models for inference."""

import contextlib
from typing import Any, Iterator

from kgen.utils.atomic import atomic_path


def save_inference_copy(model: Any, path: str) -> None:
    """Saves `model`'s architecture and weights without optimizer state.

    A compiled model's `.keras` file also stores the optimizer's slots (3x the
    weights for Adam); shipped models need only the weights. Written to a
    temporary name first, then renamed, so a failure leaves no file.
    """
    clone = type(model).from_config(model.get_config())
    clone.set_weights(model.get_weights())
    with atomic_path(path) as tmp:
        clone.save(tmp)


@contextlib.contextmanager
def float32_policy() -> Iterator[None]:
    """Keras's global dtype policy is float32 inside the block and what it was after.

    Networks built inside (a checkpoint loaded for export, a clone) compute in
    float32 whatever policy a training in the same process left set, e.g.
    `mixed_bfloat16` before the export between `kgen.train distill`'s stages.
    """
    import keras

    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(policy)
