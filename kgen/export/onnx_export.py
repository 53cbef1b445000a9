"""`.keras` checkpoint -> ONNX file with kgen metadata, checked and parity-tested."""

import json
import os
from typing import Any, Optional

from kgen.export.model_card import card_metrics, write_card_files
from kgen.export.onnx_files import DEFAULT_TOLERANCE, max_difference, session_runner
from kgen.infer.runtime import keras_runner
from kgen.utils.atomic import atomic_path
from kgen.utils.saving import float32_policy

DEFAULT_OPSET = 17
OPSETS = range(13, 19)  # what tf2onnx writes (its newest is 18) and onnxruntime >= 1.14 reads


def check_export_arguments(checkpoint: str, output: Optional[str], opset: int, overwrite: bool = False) -> None:
    """Refuses a missing checkpoint, an opset tf2onnx cannot write, and an output that cannot be written or
    that exists (unless `overwrite`)."""
    from kgen.trainers.checkpoints import check_checkpoint_path
    from kgen.utils.cli import check_output_folder

    check_checkpoint_path(checkpoint)
    if int(opset) not in OPSETS:
        raise ValueError(f"--opset must be in {OPSETS.start}..{OPSETS.stop - 1} (what tf2onnx writes); got {opset}.")
    if output is not None:
        if os.path.isdir(output):
            raise ValueError(f"--output {output!r} is a folder; give a file name ending in .onnx.")
        if not output.endswith(".onnx"):
            raise ValueError(f"--output must end in .onnx; got {output!r}.")
        check_output_folder(os.path.dirname(os.path.abspath(output)), "--output")
        _check_not_there(output, overwrite)


def _check_not_there(output, overwrite):
    if not overwrite:
        for path in (output, os.path.splitext(output)[0] + ".json"):
            if os.path.exists(path):
                raise ValueError(f"{path} exists; pass --overwrite to replace it (the model and its card), or give "
                                 "another --output.")


def default_output(checkpoint: str, metadata: dict) -> str:
    """Where an export goes without --output: `<run folder>/exported/<dataset>_<part>.onnx` for a run's
    checkpoint, else beside the checkpoint. Never the working folder's `exported/` (a shipped model's place)."""
    name = os.path.basename(os.path.normpath(metadata.get("dataset") or "model"))
    folder = os.path.dirname(os.path.abspath(checkpoint))
    if os.path.basename(folder) == "checkpoints":
        folder = os.path.join(os.path.dirname(folder), "exported")
    path = os.path.join(folder, f"{name}_{metadata['kind']}.onnx")
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def _rename_outputs(model_proto, names):
    graph = model_proto.graph
    for output, new in zip(graph.output, names):
        old = output.name
        for node in graph.node:
            node.output[:] = [new if o == old else o for o in node.output]
            node.input[:] = [new if i == old else i for i in node.input]
        output.name = new


def to_onnx_proto(network: Any, metadata: dict, opset: int = DEFAULT_OPSET, fuse: bool = True) -> Any:
    """The ONNX `ModelProto` of a functional Keras `network` (TensorFlow backend), outputs named from metadata.

    With `fuse`, group norms are fused (`kgen.export.graph_rewrites`); the
    caller checks the result against Keras. `fuse=False` leaves tf2onnx's
    graph as traced (what kgen wrote before; for comparisons).
    """
    import warnings

    import tensorflow as tf
    import tf2onnx
    from keras.src.export.tf2onnx_lib import patch_tf2onnx  # numpy 2 support, as keras.Model.export

    from kgen.export.graph_rewrites import fuse_group_norms

    specs = []
    for name, keras_input in zip(metadata["input_names"], network.inputs):
        dtype = tf.int32 if "int" in str(keras_input.dtype) else tf.float32
        specs.append(tf.TensorSpec((None, *keras_input.shape[1:]), dtype, name=name))

    @tf.function(input_signature=specs)
    def forward(*inputs):
        outputs = network(list(inputs) if len(inputs) > 1 else inputs[0], training=False)
        return outputs if isinstance(outputs, (list, tuple)) else [outputs]

    with warnings.catch_warnings():  # the patch asks numpy for `np.object`, which warns

        warnings.simplefilter("ignore", FutureWarning)

        patch_tf2onnx()
    model_proto, _ = tf2onnx.convert.from_function(forward, input_signature=specs, opset=int(opset))
    _rename_outputs(model_proto, metadata["output_names"])
    if fuse:
        fuse_group_norms(model_proto)
    return model_proto


def _plus(before, after):
    return None if before is None or after is None else before + after


def write_card(output: str, checkpoint: str, metadata: dict, error: float, opset: int, command: Optional[str] = None,
               metrics: Optional[dict] = None) -> str:
    """`<output minus .onnx>.json`: what the model is, how it was trained, what it measured.

    A run warm-started from an earlier model (`warm_start.json` in its folder)
    counts that model's training too: epochs, steps, time, images and chunks
    are the sums, and `warm_start` says where the run took over.
    """
    from kgen.runs import RunFolder

    run = RunFolder.of_checkpoint(checkpoint)
    own, config = run.training_record(), run.config()
    card = {
        "file": os.path.basename(output), "kind": metadata["kind"], "dataset": metadata.get("dataset"),
        "image_shape": metadata["image_shape"], "trainer": metadata.get("trainer"),
        "recipe_command": command, "recipe_config": {k: v for k, v in config.items() if k != "dataset"},
        "epochs": own["epochs"], "steps": own["steps"], "train_time_s": own["train_time_s"],
        "train_backend": own["backend"], "images_seen": own["images_seen"], "chunks": own["chunks"],
    }
    if metadata.get("sampling"):  # a distilled denoiser's own sampler and steps
        card["sampling"] = metadata["sampling"]
    prior = run.read("warm_start")
    if prior:
        for key in ("epochs", "steps", "train_time_s", "images_seen"):
            card[key] = _plus(prior.get(key), card[key])
        card["chunks"] = prior.get("chunks", []) + card["chunks"]
        card["warm_start"] = {k: prior.get(k) for k in ("from", "epochs", "steps", "images_seen")}
    card["export"] = {"opset": opset, "max_abs_error_vs_keras": error, "size_bytes": os.path.getsize(output)}
    card["metrics"] = card_metrics(metrics)
    return write_card_files(os.path.splitext(output)[0] + ".json", card)


def _export_under_tensorflow(checkpoint, part, output, opset, dataset, class_names, tolerance, card_command,
                             card_metrics, fuse, overwrite):
    """`export_onnx` from another backend: `python -m kgen.export ... --json-result` under TensorFlow."""
    import keras

    from kgen.export.tensorflow_subprocess import run_under_tensorflow

    args = [checkpoint, "--opset", opset, "--tolerance", tolerance, "--json-result"]
    for flag, value in (("--part", part), ("--output", output), ("--dataset", dataset),
                        ("--class-names", ",".join(class_names) if class_names else None),
                        ("--card-command", card_command)):
        if value:
            args += [flag, value]
    if card_metrics:
        args += ["--card-metrics-json", json.dumps(card_metrics)]
    if not fuse:
        args += ["--unfused"]
    if overwrite:
        args += ["--overwrite"]
    # Trainers registered from outside kgen (a new model family) must be importable by the exporting process too.
    for module in sorted({obj.__module__ for obj in keras.saving.get_custom_objects().values()
                          if not obj.__module__.startswith("kgen.")}):
        args += ["--import", module]
    stdout = run_under_tensorflow("kgen.export", args, failure="export failed")
    return json.loads(stdout.strip().splitlines()[-1])


def export_onnx(checkpoint: str, part: Optional[str] = None, output: Optional[str] = None, opset: int = DEFAULT_OPSET,
                dataset: Optional[str] = None, class_names: Optional[list] = None, tolerance: float = DEFAULT_TOLERANCE,
                card_command: Optional[str] = None, card_metrics: Optional[dict] = None, fuse: bool = True,
                overwrite: bool = False) -> dict:
    """Exports one part of a kgen checkpoint to ONNX.

    Runs under the TensorFlow backend (a subprocess if another backend is
    active: `.keras` files are backend-portable). Writes to a temporary name,
    runs `onnx.checker` and compares onnxruntime with Keras on random inputs
    at batch sizes 1 and 3; only a file that passes is renamed into place.

    Args:
        checkpoint: str. A `.keras` file of a `GenerativeTrainer` (DCGAN,
            VAE, DDPM, ...).
        part: str or None. One of the trainer's `inference_parts()`
            (`generator`, `discriminator`, `vae_decoder`, `vae_encoder`,
            `denoiser`); None is its main part.
        output: str or None. ONNX path; None is `default_output`:
            `<run folder>/exported/<dataset>_<part>.onnx`.
        opset: int. ONNX opset. Defaults to `17`.
        dataset: str or None. Overrides the dataset name of the run config.
        class_names: list of str or None. Overrides the run's class names.
        tolerance: float. Largest accepted absolute difference.
        card_command: str or None. The recipe command, for the model card.
        card_metrics: dict or None. Measured metrics, for the model card.
        fuse: bool. Fuse group norms (`to_onnx_proto`). Defaults to `True`.
        overwrite: bool. Replace an existing file and card; refused
            otherwise (before any conversion). Defaults to `False`.

    Returns:
        dict: `path`, `max_abs_error`, `metadata` and `card` (the model
        card written beside the ONNX file).
    """
    import keras

    check_export_arguments(checkpoint, output, opset, overwrite)
    if keras.backend.backend() != "tensorflow":
        return _export_under_tensorflow(checkpoint, part, output, opset, dataset, class_names, tolerance,
                                        card_command, card_metrics, fuse, overwrite)

    import onnx
    import onnxruntime as ort

    from kgen import metadata as kgen_metadata
    from kgen.runs import describe_checkpoint

    with float32_policy():  # a float32 graph, whatever policy a training in this process left set
        network, metadata = describe_checkpoint(checkpoint, part, dataset, class_names)
    kgen_metadata.parse(json.dumps(metadata), checkpoint)  # what inference will require of it
    if output is None:
        output = default_output(checkpoint, metadata)
        _check_not_there(output, overwrite)
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)

    model_proto = to_onnx_proto(network, metadata, opset, fuse)
    model_proto.doc_string = f"kgen {metadata['kind']} exported from {os.path.basename(checkpoint)}"
    entry = model_proto.metadata_props.add()
    entry.key, entry.value = kgen_metadata.METADATA_KEY, json.dumps(metadata)
    onnx.checker.check_model(model_proto)

    with atomic_path(output) as tmp:  # only a file that passes is renamed into place
        onnx.save(model_proto, tmp)
        session = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
        error = max_difference(metadata, session_runner(session, metadata), keras_runner(network, metadata))
        if not error <= tolerance:
            raise ValueError(f"ONNX and Keras outputs differ by {error:.3g} > tolerance {tolerance:g}; "
                             f"nothing written to {output}.")
    card = write_card(output, checkpoint, metadata, error, int(opset), card_command, card_metrics)
    return {"path": output, "max_abs_error": error, "metadata": metadata, "card": card}
