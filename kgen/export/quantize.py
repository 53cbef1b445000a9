"""Static int8 quantization of an exported kgen network (onnxruntime's QDQ format, per-channel weights).

    python -m kgen.export exported/mnist_denoiser.onnx --quantize int8

The float32 file from `kgen.export` stays as it is; the int8 copy is written
beside it as `<name>_int8.onnx` with the same kgen metadata, so every
`kgen.infer` subcommand and `kgen.evaluate` run it unchanged. Activation
ranges are calibrated on inputs the network meets when it is used:

- denoiser: training images noised to uniformly drawn timesteps with the
  model's own schedule, labels the images' classes with the null label in
  the guided share (half the calls of guided sampling are unconditional);
- generator, VAE decoder: latents from the prior, N(0, I);
- VAE encoder: training images.

Only the matrix products (Conv, MatMul, Gemm) are quantized, less the first
and the last convolution (image in, prediction out: on the MNIST denoiser,
keeping those two in float32 cut the relative error of the prediction from
0.0050 to 0.0019). Weights are
int8 per output channel, their input activations uint8 (onnxruntime's
choice for x86 CPUs, where `U8S8` maps onto VNNI), MinMax calibration.
Whether the result is good enough is a measurement, not an assumption:
`docs/performance.md` has the quality gate (conditional accuracy and FID
against the float32 file) and the speed-up.
"""

import contextlib
import json
import os
import tempfile
from typing import Optional

import numpy as np

from kgen import metadata as kgen_metadata
from kgen.export.model_card import card_metrics, write_card_files
from kgen.utils.atomic import atomic_path

QUANTIZABLE = ("denoiser", "generator", "vae_decoder", "vae_encoder")
# The matrix products. Normalisation, activations and residual sums stay float32: quantized there,
# each elementwise op pays a requantization for little work, and group norm's statistics lose precision.
QUANTIZED_OPS = ("Conv", "MatMul", "Gemm")


def int8_path(path: str) -> str:
    """`exported/x.onnx` -> `exported/x_int8.onnx`."""
    return os.path.splitext(path)[0] + "_int8.onnx"


def calibration_inputs(metadata: dict, input_shapes: dict, count: int, data: Optional[str] = None,
                       seed: int = 0) -> dict:
    """`count` input examples, a dict of arrays named as the network's inputs.

    Args:
        metadata: dict. The model's kgen metadata.
        input_shapes: dict. Input name -> shape without the batch axis.
        count: int. Examples.
        data: str or None. Dataset of the training images (denoiser and
            encoder); None is the metadata's dataset.
        seed: int. Seed of the images' order, timesteps, noise and latents.
    """
    rng = np.random.default_rng(seed)
    kind = metadata["kind"]
    if kind in ("generator", "vae_decoder"):
        (name, shape), = input_shapes.items()
        return {name: rng.standard_normal((count, *shape)).astype(np.float32)}
    images, labels = _training_images(data or metadata.get("dataset"), count, seed)
    count = len(images)  # a split smaller than `count` gives what it has
    low, high = metadata.get("value_range", (-1.0, 1.0))
    images = low + (high - low) * (images + 1.0) / 2.0  # load_images gives [-1, 1]
    if kind == "vae_encoder":
        return {"images": images}
    alphas_cumprod = np.asarray(metadata["schedule"]["alphas_cumprod"], np.float64)
    timesteps = rng.integers(0, len(alphas_cumprod), count)
    noise = rng.standard_normal(images.shape)
    scale = alphas_cumprod[timesteps].reshape(-1, 1, 1, 1)
    noisy = np.sqrt(scale) * images + np.sqrt(1.0 - scale) * noise
    labels = labels.astype(np.int32)
    if metadata.get("num_classes"):
        labels = np.where(rng.random(count) < 0.5, np.int32(metadata["null_label"]), labels)
    return {"images": noisy.astype(np.float32), "timesteps": timesteps.astype(np.int32), "labels": labels}


def _training_images(data, count, seed):
    from kgen.data import load_images

    if not data:
        raise ValueError("the model's metadata names no dataset; give --data for the calibration images.")
    images, labels, seen = [], [], 0
    for x, y in load_images(data, split="train", batch_size=min(count, 256), shuffle=True, seed=seed,
                            drop_remainder=False, limit=count, cache=False):
        images.append(x.numpy())
        labels.append(y.numpy())
        seen += len(images[-1])
        if seen >= count:
            break
    return np.concatenate(images)[:count].astype(np.float32), np.concatenate(labels)[:count]


class _Reader:
    """onnxruntime's `CalibrationDataReader` over a dict of arrays, `batch_size` examples per read."""

    def __init__(self, inputs, batch_size):
        count = len(next(iter(inputs.values())))
        self._batches = iter([{k: v[i:i + batch_size] for k, v in inputs.items()}
                              for i in range(0, count, batch_size)])

    def get_next(self):
        return next(self._batches, None)

    def rewind(self):  # pragma: no cover - called by some calibrators only
        pass


def quantize_int8(path: str, output: Optional[str] = None, calibration_count: int = 256, data: Optional[str] = None,
                  batch_size: int = 32, seed: int = 0, card_metrics: Optional[dict] = None,
                  inputs: Optional[dict] = None) -> dict:
    """Writes the int8 (QDQ) copy of the exported network at `path`; returns its path and settings.

    Args:
        path: str. A float32 `.onnx` from `kgen.export` (generator, VAE
            decoder or encoder, denoiser).
        output: str or None. Defaults to `<path minus .onnx>_int8.onnx`.
        calibration_count: int. Calibration examples. Defaults to `256`.
        data: str or None. Dataset of the calibration images; None is the
            one in the metadata.
        batch_size: int. Calibration batch. Defaults to `32`.
        seed: int. Defaults to `0`.
        card_metrics: dict or None. The int8 file's measured metrics (the
            quality gate), for its card.
        inputs: dict or None. Calibration inputs given directly (arrays
            named as the network's inputs) instead of `calibration_inputs`;
            benchmarks use it where only the speed matters.

    Returns:
        dict with `path`, `card` and `quantization` (the settings, also
        written into the card `<output minus .onnx>.json`).
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if calibration_count < 1:
        raise ValueError(f"--calibration-images must be >= 1; got {calibration_count}.")
    model = onnx.load(path)
    raw = {p.key: p.value for p in model.metadata_props}.get(kgen_metadata.METADATA_KEY)
    if raw is None:
        raise ValueError(f"{path} has no kgen metadata; export it with `python -m kgen.export`.")
    metadata = kgen_metadata.parse(raw, path)
    if metadata["kind"] not in QUANTIZABLE:
        raise ValueError(f"--quantize int8 takes a {', '.join(QUANTIZABLE)}; {path} is a {metadata['kind']}.")
    output = output or int8_path(path)
    if not output.endswith(".onnx") or os.path.abspath(output) == os.path.abspath(path):
        raise ValueError(f"the int8 file must be a new .onnx path; got {output!r}.")
    shapes = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim][1:] for i in model.graph.input}
    if inputs is None:
        inputs = calibration_inputs(metadata, shapes, calibration_count, data, seed)
    calibration_count = len(next(iter(inputs.values())))
    settings = {
        "format": "QDQ", "operators": list(QUANTIZED_OPS), "float32": "first and last Conv",
        "weights": "int8 in a 7-bit range (reduce_range), per channel", "activations": "uint8", "calibration": "MinMax",
        "calibration_examples": calibration_count,
        "calibration_data": ((data or metadata.get("dataset")) if metadata["kind"] in ("denoiser", "vae_encoder")
                             else "prior latents N(0, I)"),
        "seed": seed, "source": os.path.basename(path)}
    path, output = os.path.abspath(path), os.path.abspath(output)
    # onnxruntime's tools write scratch files (external weight data) into the working folder: give them one.
    with atomic_path(output) as tmp, tempfile.TemporaryDirectory() as scratch, _working_folder(scratch):
        prepared = os.path.join(scratch, "prepared.onnx")
        try:
            quant_pre_process(path, prepared, skip_symbolic_shape=False)
        except Exception:  # symbolic shapes fail on some tf2onnx graphs (the UNet): ONNX's own inference
            quant_pre_process(path, prepared, skip_symbolic_shape=True)
        convs = [node.name for node in onnx.load(prepared).graph.node if node.op_type == "Conv"]
        quantize_static(prepared, tmp, _Reader(inputs, batch_size), quant_format=QuantFormat.QDQ,
                        nodes_to_exclude=convs[:1] + convs[-1:], per_channel=True,
                        # 7-bit weights: onnxruntime's uint8 x int8 kernels on x86 CPUs without
                        # VNNI (AVX2, AVX-512F) add pairs of products in 16 bits, which full-range
                        # weights can overflow (docs/performance.md measures the error both ways).
                        reduce_range=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=list(QUANTIZED_OPS))
        quantized = onnx.load(tmp)
        del quantized.metadata_props[:]
        for prop in model.metadata_props:  # the kgen metadata: every command reads it
            quantized.metadata_props.add().CopyFrom(prop)
        quantized.doc_string = f"{model.doc_string} (int8 QDQ from {os.path.basename(path)})"
        onnx.save(quantized, tmp)
    card = _write_card(path, output, settings, card_metrics)
    return {"path": output, "card": card, "quantization": settings}


@contextlib.contextmanager
def _working_folder(folder):
    previous = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


def _write_card(source, output, settings, metrics=None):
    """The float32 file's card with the int8 settings, the int8 metrics given, the float32 ones beside."""
    card = {}
    source_card = os.path.splitext(source)[0] + ".json"
    if os.path.isfile(source_card):
        with open(source_card) as f:
            card = json.load(f)
    card = {**card, "file": os.path.basename(output), "quantization": settings,
            "metrics": card_metrics(metrics), "float32_metrics": card_metrics(card.get("metrics")),
            "export": {**card.get("export", {}), "size_bytes": os.path.getsize(output)}}
    return write_card_files(os.path.splitext(output)[0] + ".json", card)
