"""Reading and comparing kgen ONNX files: the leaf of `kgen.export` that every other export module uses."""

import json
import os
from typing import Any, Callable, Sequence

import numpy as np

DEFAULT_TOLERANCE = 1e-3


def read_onnx_metadata(path: str) -> tuple:
    """`(model_proto, kgen metadata dict)` of a kgen ONNX file."""
    import onnx

    from kgen import metadata as kgen_metadata

    try:
        model = onnx.load(path)
    except Exception as error:  # protobuf raises several types for a damaged file
        raise ValueError(f"cannot read {path} as an ONNX file ({type(error).__name__}).") from None
    raw = {p.key: p.value for p in model.metadata_props}.get(kgen_metadata.METADATA_KEY)
    if raw is None:
        raise ValueError(f"{path} has no kgen metadata: give an ONNX file written by kgen.export.")
    return model, json.loads(raw)


def random_inputs(metadata: dict, batch: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    shape = tuple(metadata["image_shape"])
    if metadata["kind"] in ("generator", "vae_decoder"):
        return {"latents": rng.standard_normal((batch, metadata["latent_dim"])).astype(np.float32)}
    if metadata["kind"] in ("vae_encoder", "discriminator"):
        return {"images": rng.uniform(-1, 1, (batch, *shape)).astype(np.float32)}
    steps = metadata["schedule"]["num_train_timesteps"]
    inputs = {"images": rng.standard_normal((batch, *shape)).astype(np.float32),
              "timesteps": rng.integers(0, steps, batch).astype(np.int32),
              "labels": rng.integers(0, (metadata["num_classes"] or 0) + 1, batch).astype(np.int32)}
    if metadata.get("guidance_input"):
        inputs["guidance_scales"] = rng.uniform(0.0, 6.0, batch).astype(np.float32)
    return inputs


def max_difference(metadata: dict, first: Callable, second: Callable, batches: Sequence[int] = (1, 3)) -> float:
    """Largest absolute difference between two runs of one part on `random_inputs` at each batch size.

    `first` and `second` take the input dict and return the list of outputs
    (`kgen.infer.runtime.keras_runner`, `session_runner`): how export, the fusion and the weight
    import check what they wrote against what they started from.
    """
    error = 0.0
    for batch in batches:
        inputs = random_inputs(metadata, batch)
        for a, b in zip(first(inputs), second(inputs)):
            error = max(error, float(np.abs(np.asarray(a) - np.asarray(b)).max()))
    return error


def session_runner(session: Any, metadata: dict) -> Callable[[dict], list]:
    """`max_difference`'s view of an onnxruntime session."""
    return lambda inputs: session.run(metadata["output_names"], inputs)


def read_card(onnx_path: str) -> dict:
    """The model card beside an `.onnx` file (`<name>.json`), {} when there is none."""
    path = os.path.splitext(onnx_path)[0] + ".json"
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)
