"""Saving models for inference."""

from typing import Any

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
