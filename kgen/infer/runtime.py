"""Loading a model for inference: an ONNX file (onnxruntime) or a `.keras` checkpoint.

ONNX files carry everything inference needs in one metadata entry,
`kgen` (JSON): the model kind, image shape, value range, dataset, class
names, and for denoisers the schedule and its alpha tables. `.keras`
checkpoints are read with Keras (imported only then) and described by the
same metadata, so every subcommand runs one code path for both.
"""

import argparse
import os
from typing import Any, Callable, Optional

import numpy as np

from kgen import metadata as kgen_metadata
from kgen.metadata import KINDS, METADATA_KEY  # noqa: F401  (re-exported for callers)


class InferenceModel:
    """A model kind, its metadata, and `run(**inputs) -> list of outputs` in numpy."""

    def __init__(self, path, metadata, run_fn, provider):
        self.path = path
        self.metadata = metadata
        self.kind = metadata["kind"]
        self.image_shape = tuple(metadata["image_shape"])
        self.provider = provider
        self._run = run_fn

    def run(self, **inputs: np.ndarray) -> list:
        return self._run(inputs)

    def require(self, *kinds: str) -> "InferenceModel":
        if self.kind not in kinds:
            raise ValueError(f"{self.path} is a {self.kind} model; this subcommand needs a {' or '.join(kinds)}.")
        return self

    @property
    def class_names(self) -> list:
        return list(self.metadata.get("class_names") or [])

    @property
    def guidance_input(self) -> bool:
        """The denoiser takes the guidance scale as an input (a distilled student): one pass per step."""
        return bool(self.metadata.get("guidance_input"))

    def denoiser_predict(self, batch_size: int = 256) -> Callable[..., np.ndarray]:
        """`predict(x, t, labels)` for `kgen.schedulers` samplers (`predict(x, t, labels, scales)` for a student)."""
        self.require("denoiser")

        def predict(x, t, labels, scales=None):
            outs = []
            for i in range(0, len(x), batch_size):
                sl = slice(i, i + batch_size)
                inputs = {"images": np.ascontiguousarray(x[sl], np.float32), "timesteps": t[sl].astype(np.int32),
                          "labels": labels[sl].astype(np.int32)}
                if scales is not None:
                    inputs["guidance_scales"] = np.asarray(scales[sl], np.float32)
                outs.append(self.run(**inputs)[0])
            return np.concatenate(outs)

        return predict


def providers(prefer: Optional[list] = None) -> list:
    """CUDA (and TensorRT) execution providers when onnxruntime has them, else CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    order = prefer or ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    return [p for p in order if p in available] or ["CPUExecutionProvider"]


ENGINES = ("onnxruntime", "openvino")
PRECISIONS = ("f32", "bf16")


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """The `--engine`, `--precision` and `--threads` flags of every inference subcommand."""
    parser.add_argument("--engine", default="onnxruntime", choices=ENGINES,
                        help="runtime for .onnx files; openvino needs the openvino extra")
    parser.add_argument("--precision", default="f32", choices=PRECISIONS,
                        help="inference precision; bf16 needs --engine openvino and a CPU with bfloat16")
    parser.add_argument("--threads", type=int, help="intra-op threads (default: the engine's choice)")


def engine_options(args: argparse.Namespace) -> dict:
    return {"engine": args.engine, "precision": args.precision, "threads": args.threads}


def load(path: str, threads: Optional[int] = None, engine: str = "onnxruntime",
         precision: str = "f32") -> "InferenceModel":
    """An `InferenceModel` for an `.onnx` file or a `.keras` checkpoint.

    Args:
        path: str. An `.onnx` file from `kgen.export` or a `.keras` checkpoint.
        threads: int or None. Intra-op threads; None is the engine's default.
        engine: str. `"onnxruntime"` or `"openvino"` (ONNX files; both run
            the same file, and the samplers are the same numpy code).
        precision: str. `"f32"`, or `"bf16"` (OpenVINO on a CPU with
            bfloat16 instructions: faster, a few percent off; see the
            quality gate in docs/performance.md).
    """
    if engine not in ENGINES or precision not in PRECISIONS:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)} and precision one of {', '.join(PRECISIONS)}; "
                         f"got {engine!r}, {precision!r}.")
    if precision != "f32" and engine != "openvino":
        raise ValueError(f"--precision {precision} needs --engine openvino (onnxruntime runs float32 here).")
    cpus = os.cpu_count() or 1
    if threads is not None and not 1 <= int(threads) <= cpus:
        raise ValueError(f"--threads must be in 1..{cpus} (this machine's CPUs; more only adds contention); "
                         f"got {threads}.")
    if not os.path.isfile(path):
        raise ValueError(f"model {path!r} not found; give an .onnx file from `python -m kgen.export` "
                         "or a .keras checkpoint.")
    if path.endswith(".onnx"):
        if engine == "openvino":
            return _load_openvino(path, threads, precision)
        return _load_onnx(path, threads)
    if engine != "onnxruntime":
        raise ValueError(f"--engine {engine} runs .onnx files; {path} is a Keras checkpoint.")
    if path.endswith(".keras"):
        return _load_keras(path)
    raise ValueError(f"model {path!r}: accepted are .onnx (kgen.export) and .keras (kgen recipes) files.")


def _load_onnx(path, threads=None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle intra-op threads spin (onnxruntime's default, set here as a measured choice): without it a
    # guided sampling run took 1.26x the wall time and no less CPU time (benchmarks/bench_ort_settings.py
    # --sampling, docs/performance.md "onnxruntime session settings, measured").
    options.add_session_config_entry("session.intra_op.allow_spinning", "1")
    if threads:
        options.intra_op_num_threads = int(threads)
    try:
        session = ort.InferenceSession(path, options, providers=providers())
    except Exception as error:  # onnxruntime raises its own types for corrupt files
        raise ValueError(_load_failure(path, str(error), f"onnxruntime {ort.__version__}")) from None
    raw = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    if raw is None:
        raise ValueError(f"{path} has no kgen metadata; export it with `python -m kgen.export`.")
    metadata = kgen_metadata.parse(raw, path)
    names = [o.name for o in session.get_outputs()]

    def run(inputs):
        return session.run(names, inputs)

    return InferenceModel(path, metadata, run, session.get_providers()[0])


def _load_failure(path, message, runtime):
    """One line for a model file the runtime refused: too new a format, or damaged."""
    import re

    newer = re.search(r"Unsupported model IR version: (\d+), max supported IR version: (\d+)", message)
    if newer:
        return (f"{path} is ONNX IR version {newer[1]}; the installed {runtime} reads IR versions up to "
                f"{newer[2]}: upgrade it (pip install -U onnxruntime) or export with an older onnx.")
    opset = re.search(r"Opset (\d+) is under development.*support for domain ([\w.]+) is till opset (\d+)", message)
    if opset:
        return (f"{path} uses opset {opset[1]} of {opset[2]}; the installed {runtime} supports opsets up to "
                f"{opset[3]}: upgrade it (pip install -U onnxruntime) or export with --opset {opset[3]} or lower.")
    return f"{path} is not a loadable ONNX model (damaged or not ONNX; {runtime} says: {_first_line(message)})."


def _first_line(message, limit=160):
    line = message.strip().splitlines()[0] if message.strip() else "no detail"
    return line if len(line) <= limit else line[:limit - 3] + "..."


def _load_openvino(path, threads=None, precision="f32"):
    try:
        import openvino as ov
    except ImportError:
        raise ValueError('--engine openvino needs the openvino package: pip install -e ".[openvino]".') from None
    import onnx

    try:
        proto = onnx.load(path, load_external_data=False)
    except Exception as error:  # onnx raises DecodeError and others for damaged files
        raise ValueError(f"{path} is not a loadable ONNX model ({type(error).__name__}).") from None
    raw = {p.key: p.value for p in proto.metadata_props}.get(METADATA_KEY)
    if raw is None:
        raise ValueError(f"{path} has no kgen metadata; export it with `python -m kgen.export`.")
    metadata = kgen_metadata.parse(raw, path)
    core = ov.Core()
    if precision == "bf16" and "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        raise ValueError("--precision bf16: this CPU has no bfloat16 support in OpenVINO; use f32.")
    config = {"INFERENCE_PRECISION_HINT": precision}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    try:
        compiled = core.compile_model(path, "CPU", config)
    except Exception as error:  # OpenVINO raises RuntimeError for graphs it cannot compile
        raise ValueError(f"OpenVINO cannot compile {path} ({type(error).__name__}: "
                         f"{str(error).splitlines()[0][:200]}).") from None
    outputs = list(compiled.outputs)

    def run(inputs):
        results = compiled(inputs)
        return [results[o] for o in outputs]

    return InferenceModel(path, metadata, run, f"openvino[CPU, {precision}]")


def _load_keras(path):
    import keras

    from kgen.runs import describe_checkpoint

    network, metadata = describe_checkpoint(path)
    return InferenceModel(path, metadata, keras_runner(network, metadata), f"keras[{keras.backend.backend()}]")


def keras_runner(network: Any, metadata: dict) -> Callable[[dict], list]:
    """A Keras network as an engine: input dict -> list of numpy outputs, in `metadata`'s order."""
    import keras

    def run(inputs):
        ordered = [inputs[name] for name in metadata["input_names"]]
        outputs = network(ordered if len(ordered) > 1 else ordered[0], training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return [keras.ops.convert_to_numpy(o) for o in outputs]

    return run
