"""The whole guided sampler as one ONNX graph: labels, noise and guidance scale in, images out.

The exported denoiser runs inside an ONNX `Loop` whose iteration i gathers
step i's timestep and coefficients from constant tables
(`kgen.schedulers.step_coefficients`): the predicted x_0 from the guided
output, then `x' = a x + b x0 + c x0_prev (+ sigma z)`. Classifier-free
guidance is in the graph (the conditional and null-label halves of one
doubled batch); every random number is an input, so a runtime in any
language (onnxruntime-web included) reproduces `kgen.infer`'s images for
the same noise.
"""

import json
import os
from typing import Any, Optional

import numpy as np

SAMPLER_OUTPUT = "images"


def _prefixed(graph, prefix, rename, keep=None):
    """The nodes of `graph` (or a node list) with every internal value name prefixed.

    `rename` maps chosen names (inputs, outputs); names in `keep` (default:
    the graph's initializers) stay as they are.
    """
    import onnx

    graph_nodes = graph.node if hasattr(graph, "node") else graph
    keep = {init.name for init in graph.initializer} if keep is None else keep
    nodes = []
    for k, node in enumerate(graph_nodes):
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
            raise ValueError("the denoiser holds control flow; a sampler graph needs a straight-line denoiser.")
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.name = prefix + (node.name or f"node{k}")

        def name(value):
            if not value or value in keep:
                return value
            return rename.get(value, prefix + value)

        copy.input[:] = [name(v) for v in node.input]
        copy.output[:] = [name(v) for v in node.output]
        nodes.append(copy)
    return nodes


def build_sampler_graph(denoiser: Any, metadata: dict, sampler: str = "ddim", num_steps: int = 25, eta: float = 0.0,
                        unroll: bool = False) -> tuple:
    """An ONNX `ModelProto` that samples with `denoiser` from end to end.

    Args:
        denoiser: `onnx.ModelProto`. A denoiser from `kgen.export` (inputs
            `images`, `timesteps`, `labels`; output `model_output`).
        metadata: dict. Its kgen metadata.
        sampler: str. `"ddim"` or `"dpmsolver++"`. Defaults to `"ddim"`.
        num_steps: int. Sampling steps. Defaults to `25`.
        eta: float. DDIM's eta; above 0 the graph takes `step_noise`.
        unroll: bool. One copy of the step per iteration instead of a `Loop`
            (weights shared; more nodes). Defaults to `False`.

    Returns:
        `(model, metadata)`: inputs `noise` (B, H, W, C) float32, `labels`
        (B,) int32 (`num_classes` = no class), `guidance_scale` () float32
        and, if eta > 0, `step_noise` (steps, B, H, W, C); output `images`
        (B, H, W, C) in [-1, 1].
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from kgen import metadata as kgen_metadata
    from kgen.schedulers import step_coefficients

    table = step_coefficients(sampler, kgen_metadata.schedule_config(metadata), num_steps, eta)
    steps = len(table["timesteps"])
    stochastic = bool((table["sigma"] > 0).any())
    # A distilled student takes the scale as an input (one pass); other denoisers guide with a doubled batch.
    scale_input = bool(metadata.get("guidance_input"))
    guided = bool(metadata.get("num_classes")) and not scale_input
    height, width, channels = metadata["image_shape"]
    image = ["batch", height, width, channels]

    constants = _constants(table, steps, metadata, guided)

    body = _step_nodes(denoiser, table, guided, stochastic, scale_input)
    loop_body = helper.make_graph(
        body, "sampler_step",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x", TensorProto.FLOAT, image),
         helper.make_tensor_value_info("x0_prev", TensorProto.FLOAT, image)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x_next", TensorProto.FLOAT, image),
         helper.make_tensor_value_info("x0_next", TensorProto.FLOAT, image)])

    nodes = [helper.make_node("Mul", ["noise", "zero_float"], ["zeros"])]
    if unroll:
        outer = {c.name for c in constants} | {i.name for i in denoiser.graph.initializer}
        outer |= {"labels", "guidance_scale", "step_noise", "sampler_true"}
        x, x0 = "noise", "zeros"
        for i in range(steps):
            constants.append(numpy_helper.from_array(np.array(i, np.int64), f"step_{i}"))
            rename = {"i": f"step_{i}", "cond_in": "sampler_true", "x": x, "x0_prev": x0}
            nodes += _prefixed(body, f"step{i}/", rename, keep=outer | {x, x0, f"step_{i}"})
            x, x0 = f"step{i}/x_next", f"step{i}/x0_next"
        nodes.append(helper.make_node("Identity", [x], ["x_final"]))
    else:
        nodes.append(helper.make_node("Loop", ["sampler_steps", "sampler_true", "noise", "zeros"],
                                      ["x_final", "x0_final"], body=loop_body))
    nodes.append(helper.make_node("Clip", ["x_final", "minus_one", "plus_one"], [SAMPLER_OUTPUT]))
    constants.append(numpy_helper.from_array(np.array(0.0, np.float32), "zero_float"))
    inputs = [helper.make_tensor_value_info("noise", TensorProto.FLOAT, image),
              helper.make_tensor_value_info("labels", TensorProto.INT32, ["batch"]),
              helper.make_tensor_value_info("guidance_scale", TensorProto.FLOAT, [])]
    if stochastic:
        inputs.append(helper.make_tensor_value_info("step_noise", TensorProto.FLOAT, [steps, *image]))
    graph = helper.make_graph(nodes, f"kgen_{sampler}_{steps}_sampler", inputs,
                              [helper.make_tensor_value_info(SAMPLER_OUTPUT, TensorProto.FLOAT, image)],
                              initializer=list(denoiser.graph.initializer) + constants)
    model = helper.make_model(graph, opset_imports=list(denoiser.opset_import),
                              producer_name="kgen", doc_string=f"kgen {sampler}-{steps} sampler")
    model.ir_version = denoiser.ir_version
    own = ("input_names", "output_names", "guidance_input", "sampling")  # the graph's inputs are its own
    sampler_metadata = {**{k: v for k, v in metadata.items() if k not in own},
                        "kind": "sampler", "sampler": sampler, "num_steps": steps, "eta": float(eta),
                        "input_names": [i.name for i in inputs], "output_names": [SAMPLER_OUTPUT]}
    entry = model.metadata_props.add()
    entry.key, entry.value = kgen_metadata.METADATA_KEY, json.dumps(sampler_metadata)
    onnx.checker.check_model(model)
    return model, sampler_metadata


def _constants(table, steps, metadata, guided):
    """The sampler's tables and scalars as initializers (those of the doubled batch only when `guided`)."""
    from onnx import numpy_helper

    constants = [numpy_helper.from_array(table["timesteps"].astype(np.int32), "sampler_timesteps")]
    # float32 arithmetic (what every runtime, onnxruntime-web included, runs fast). kgen.schedulers
    # steps in float64; the difference is of the order of the network's own rounding, which the
    # first steps amplify: 1e-6 on the initial noise moves a DDIM-10 sample of the MNIST model by 1e-4.
    for key in ("p", "q", "a", "b", "c", "sigma"):
        constants.append(numpy_helper.from_array(table[key].astype(np.float32), f"sampler_{key}"))
    constants += [numpy_helper.from_array(np.array(steps, np.int64), "sampler_steps"),
                  numpy_helper.from_array(np.array(True), "sampler_true"),
                  numpy_helper.from_array(np.array(-1.0, np.float32), "minus_one"),
                  numpy_helper.from_array(np.array(1.0, np.float32), "plus_one")]
    if guided:
        constants += [numpy_helper.from_array(np.array([0], np.int64), "zero_1d"),
                      numpy_helper.from_array(np.array([np.iinfo(np.int64).max], np.int64), "max_1d"),
                      numpy_helper.from_array(np.array(int(metadata.get("null_label") or 0), np.int32), "null_label")]
    return constants


def _step_nodes(denoiser, table, guided, stochastic, scale_input=False):
    """One iteration, `(i, cond_in, x, x0_prev) -> (cond_out, x_next, x0_next)`: the denoiser (twice the
    batch when guided: with and without labels; once, given the scale, for a student with
    `scale_input`), the guided output, and the solver's linear update."""
    from onnx import helper

    body = []
    for key in ("timesteps", "p", "q", "a", "b", "c", "sigma"):
        body.append(helper.make_node("Gather", [f"sampler_{key}", "i"], [f"{key}_i"], axis=0))
    body += [helper.make_node("Shape", ["x"], ["batch_1d"], start=0, end=1)]
    if guided:
        body += [
            helper.make_node("Concat", ["x", "x"], ["x2"], axis=0),
            helper.make_node("Shape", ["x2"], ["batch2_1d"], start=0, end=1),
            helper.make_node("Expand", ["timesteps_i", "batch2_1d"], ["t2"]),
            helper.make_node("Expand", ["null_label", "batch_1d"], ["nulls"]),
            helper.make_node("Concat", ["labels", "nulls"], ["labels2"], axis=0),
        ]
        rename = {"images": "x2", "timesteps": "t2", "labels": "labels2", "model_output": "both"}
    else:
        body += [helper.make_node("Expand", ["timesteps_i", "batch_1d"], ["t1"])]
        rename = {"images": "x", "timesteps": "t1", "labels": "labels", "model_output": "output"}
        if scale_input:
            body += [helper.make_node("Expand", ["guidance_scale", "batch_1d"], ["scales1"])]
            rename["guidance_scales"] = "scales1"
    body += _prefixed(denoiser.graph, "denoiser/", rename)
    if guided:
        body += [
            helper.make_node("Slice", ["both", "zero_1d", "batch_1d", "zero_1d"], ["cond"]),
            helper.make_node("Slice", ["both", "batch_1d", "max_1d", "zero_1d"], ["uncond"]),
            helper.make_node("Sub", ["cond", "uncond"], ["difference"]),
            helper.make_node("Mul", ["difference", "guidance_scale"], ["scaled"]),
            helper.make_node("Add", ["uncond", "scaled"], ["output"]),
        ]
    body += [
        helper.make_node("Mul", ["p_i", "x"], ["px"]),
        helper.make_node("Mul", ["q_i", "output"], ["qo"]),
        helper.make_node("Add", ["px", "qo"], ["x0_raw"]),
        helper.make_node("Clip", ["x0_raw", "minus_one", "plus_one"], ["x0"]) if table["clip_sample"]
        else helper.make_node("Identity", ["x0_raw"], ["x0"]),
        helper.make_node("Mul", ["a_i", "x"], ["ax"]),
        helper.make_node("Mul", ["b_i", "x0"], ["bx0"]),
        helper.make_node("Mul", ["c_i", "x0_prev"], ["cx0"]),
        helper.make_node("Add", ["ax", "bx0"], ["partial"]),
        helper.make_node("Add", ["partial", "cx0"], ["deterministic"]),
    ]
    if stochastic:
        body += [helper.make_node("Gather", ["step_noise", "i"], ["z_i"], axis=0),
                 helper.make_node("Mul", ["sigma_i", "z_i"], ["sz"]),
                 helper.make_node("Add", ["deterministic", "sz"], ["x_next"])]
    else:
        body += [helper.make_node("Identity", ["deterministic"], ["x_next"])]
    body += [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
             helper.make_node("Identity", ["x0"], ["x0_next"])]
    return body


DEFAULT_SAMPLER_TOLERANCE = 2e-3


def default_sampler_path(denoiser_path: str) -> str:
    """The sampler graph's file beside a denoiser: its name with `_sampler` for the last `_denoiser`.

    >>> default_sampler_path("exported/cifar10_denoiser_fast.onnx")
    'exported/cifar10_sampler_fast.onnx'
    >>> default_sampler_path("runs/a_denoiser_run/model.onnx")
    'runs/a_denoiser_run/model_sampler.onnx'
    """
    folder, name = os.path.split(os.path.splitext(denoiser_path)[0])
    head, found, tail = name.rpartition("_denoiser")
    return os.path.join(folder, (f"{head}_sampler{tail}" if found else f"{name}_sampler") + ".onnx")


def export_sampler(denoiser_path: str, sampler: str = "ddim", num_steps: Optional[int] = None, eta: float = 0.0,
                   output: Optional[str] = None, tolerance: float = DEFAULT_SAMPLER_TOLERANCE) -> dict:
    """Writes the sampler graph of an exported denoiser, after checking it against kgen's numpy sampler.

    Two samples (and, for a conditional model, guidance 3) are drawn by the
    graph in onnxruntime and by `kgen.infer`'s numpy sampler around the
    denoiser from the same noise; the file is written (atomically) only if
    they agree within `tolerance`.

    Args:
        denoiser_path: str. A denoiser `.onnx` from `kgen.export`.
        sampler: str. `"ddim"` or `"dpmsolver++"`. Defaults to `"ddim"`.
        num_steps: int or None. None: the steps a distilled denoiser was
            trained for (its metadata's), else 25. Defaults to `None`.
        eta: float. DDIM's eta. Defaults to `0.0`.
        output: str or None. Defaults to `<denoiser>_sampler.onnx` beside
            the denoiser, `_denoiser` read as `_sampler` (`mnist_denoiser.onnx`
            -> `mnist_sampler.onnx`, `cifar10_denoiser_fast.onnx` ->
            `cifar10_sampler_fast.onnx`).
        tolerance: float. Largest accepted |graph - numpy| in [-1, 1] images.
            Defaults to `2e-3`: the graph steps in float32 and kgen.schedulers in
            float64, and the first steps amplify rounding (measured on the shipped
            MNIST model over 3 seeds: up to 1.1e-3 with DDIM-10, 5e-4 with DDIM-25).

    Returns:
        dict: `path`, `max_abs_error`, `metadata`.
    """

    import onnx

    from kgen.export.model_card import write_card_files
    from kgen.infer import runtime
    from kgen.utils.atomic import atomic_path

    model = runtime.load(denoiser_path)
    model.require("denoiser")
    if num_steps is None:
        num_steps = model.metadata["sampling"]["num_steps"] if model.metadata.get("sampling") else 25
    steps_total = model.metadata["schedule"]["num_train_timesteps"]
    if not 1 <= int(num_steps) <= steps_total:
        raise ValueError(f"--steps must be in 1..{steps_total} (the model's T); got {num_steps}.")
    if not (np.isfinite(eta) and eta >= 0):
        raise ValueError(f"--eta must be a finite number >= 0; got {eta}.")
    if output is None:
        output = default_sampler_path(denoiser_path)
    if os.path.isdir(output):
        raise ValueError(f"output {output!r} is a folder; give a file name.")
    graph, metadata = build_sampler_graph(onnx.load(denoiser_path), model.metadata, sampler, int(num_steps), eta)
    with atomic_path(output) as tmp:
        onnx.save(graph, tmp)
        error = sampler_parity(tmp, model)
        if not error <= tolerance:
            raise ValueError(f"the sampler graph and kgen's numpy sampler differ by {error:.3g} > tolerance "
                             f"{tolerance:g}; nothing written to {output}.")
    card = {"file": os.path.basename(output), "kind": "sampler", "sampler": sampler, "num_steps": metadata["num_steps"],
            "eta": float(eta), "denoiser": os.path.basename(denoiser_path), "dataset": metadata.get("dataset"),
            "image_shape": metadata["image_shape"], "num_classes": metadata["num_classes"],
            "null_label": metadata.get("null_label"), "class_names": metadata.get("class_names"),
            "inputs": metadata["input_names"], "outputs": metadata["output_names"],
            "max_abs_error_vs_numpy_sampler": error, "size_bytes": os.path.getsize(output)}
    write_card_files(os.path.splitext(output)[0] + ".json", card)
    return {"path": output, "max_abs_error": error, "metadata": metadata}


def sampler_parity(path: str, denoiser: Any, seed: int = 0) -> float:
    """Largest |graph - numpy sampler| over two samples (guided, if conditional) of the graph at `path`."""
    import onnxruntime as ort

    from kgen.infer.sample import draw, sampler_inputs

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    metadata = json.loads(session.get_modelmeta().custom_metadata_map["kgen"])
    conditional = bool(metadata.get("num_classes"))
    labels = np.array([0, metadata["num_classes"] - 1] if conditional else [0, 0], np.int32)
    guidance = 3.0 if conditional else 1.0
    got = session.run([SAMPLER_OUTPUT], sampler_inputs(metadata, labels, seed, guidance))[0]
    want = draw(denoiser, 2, seed, labels if conditional else None, metadata["sampler"], metadata["num_steps"],
                metadata["eta"], guidance, progress=False)
    return float(np.abs(got - want).max())
