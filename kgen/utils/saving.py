"""Saving models for inference."""

import os


def save_inference_copy(model, path):
    """Saves `model`'s architecture and weights without optimizer state.

    A compiled model's `.keras` file also stores the optimizer's slots (3x the
    weights for Adam); shipped models need only the weights. Written to a
    temporary name first, then renamed, so a failure leaves no file.
    """
    clone = type(model).from_config(model.get_config())
    clone.set_weights(model.get_weights())
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path[: -len(".keras")] + ".tmp.keras"
    clone.save(tmp)
    os.replace(tmp, path)
