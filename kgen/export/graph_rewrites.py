"""Rewrites of tf2onnx's graphs that onnxruntime runs faster, each checked against the graph it replaces.

tf2onnx writes Keras' `GroupNormalization` as the TensorFlow ops it traced:
a reshape to (N, H, W, G, C/G), two `ReduceMean`s and about ten element-wise
nodes, each a pass over the activations. `benchmarks/profile_onnx.py` found
them to be 38% (CIFAR-10 UNet) and 54% (MNIST UNet) of onnxruntime's kernel
time. `fuse_group_norms` replaces each with ONNX's `InstanceNormalization` on
the (N, G, C/G * H * W) view, then the per-channel scale and shift:

    NHWC -> Transpose(NCHW) -> Reshape(N, G, -1) -> InstanceNormalization
         -> Reshape(NCHW) [-> Mul gamma -> Add beta] -> Transpose(NHWC)

The transposes cancel against the ones tf2onnx put around the convolutions
(onnxruntime's transpose optimiser). Only the numbers of the original
subgraph are read (groups from its reshape, epsilon from its `Add`, gamma and
beta from its initializers); a subgraph of another shape is left as it was.
"""

from typing import TYPE_CHECKING, Optional

import numpy as np

if TYPE_CHECKING:
    import onnx

FUSED_SCOPE = "kgen_fused_group_norm"  # the node-name part that marks a rewritten norm


def _scope(node_name):
    """`u_net_1/down0_res0_norm1_1/moments/mean` -> `u_net_1/down0_res0_norm1_1`."""
    return node_name.rsplit("/moments/", 1)[0]


def _constant(initializers, name):
    if name not in initializers:
        return None
    from onnx import numpy_helper

    return numpy_helper.to_array(initializers[name])


def _norm_parameters(scope, inside, initializers):
    """`(input, groups, epsilon, gamma, beta)` of one traced group norm, or None if it is not one."""
    by_name = {n.name: n for n in inside}
    first = by_name.get(f"{scope}/Reshape")
    add = by_name.get(f"{scope}/add")
    if first is None or add is None or first.op_type != "Reshape" or add.op_type != "Add":
        return None
    shape = _constant(initializers, first.input[1])
    epsilon = next((_constant(initializers, i) for i in add.input if i in initializers), None)
    if shape is None or shape.ndim != 1 or len(shape) != 5 or epsilon is None or epsilon.size != 1:
        return None
    groups = int(shape[3])
    affine = {}
    for node_name, key in ((f"{scope}/mul", "gamma"), (f"{scope}/add_1", "beta")):
        node = by_name.get(node_name)
        values = [_constant(initializers, i) for i in node.input if i in initializers] if node is not None else []
        if len(values) == 1 and values[0].ndim == 5 and values[0].shape[3] == groups:
            affine[key] = values[0].reshape(-1).astype(np.float32)
    if len(affine) == 1:
        return None  # scale without centre or the reverse: not a pattern this rewrite knows
    return first.input[0], groups, float(epsilon.reshape(())), affine.get("gamma"), affine.get("beta")


def fuse_group_norms(model: "onnx.ModelProto") -> int:
    """Rewrites `model` (an ONNX `ModelProto` from tf2onnx) in place; returns how many group norms it fused."""
    from onnx import helper, numpy_helper

    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    scopes = list(dict.fromkeys(_scope(n.name) for n in graph.node
                                if n.op_type == "ReduceMean" and n.name.endswith("/moments/mean")
                                and FUSED_SCOPE not in n.name))
    nodes = list(graph.node)
    added = []
    fused = 0
    for scope in scopes:
        inside = [n for n in nodes if n.name.startswith(scope + "/")]
        parameters = _norm_parameters(scope, inside, initializers)
        if parameters is None:
            continue
        x, groups, epsilon, gamma, beta = parameters
        ids = {id(n) for n in inside}
        produced = {o for n in inside for o in n.output}
        read_outside = {i for n in nodes if id(n) not in ids for i in n.input} | {o.name for o in graph.output}
        outputs = [o for n in inside for o in n.output if o in read_outside]
        if len(outputs) != 1 or x in produced:
            continue
        p = f"{scope}/{FUSED_SCOPE}"
        constants = {f"{p}/groups": np.array([0, groups, -1], np.int64),
                     f"{p}/ones": np.ones(groups, np.float32), f"{p}/zeros": np.zeros(groups, np.float32)}
        new = [helper.make_node("Transpose", [x], [f"{p}/nchw"], name=f"{p}/to_nchw", perm=[0, 3, 1, 2]),
               helper.make_node("Shape", [f"{p}/nchw"], [f"{p}/shape"], name=f"{p}/shape"),
               helper.make_node("Reshape", [f"{p}/nchw", f"{p}/groups"], [f"{p}/grouped"], name=f"{p}/group"),
               helper.make_node("InstanceNormalization", [f"{p}/grouped", f"{p}/ones", f"{p}/zeros"],
                                [f"{p}/normalized"], name=f"{p}/normalize", epsilon=epsilon),
               helper.make_node("Reshape", [f"{p}/normalized", f"{p}/shape"], [f"{p}/ungrouped"],
                                name=f"{p}/ungroup")]
        last = f"{p}/ungrouped"
        if gamma is not None:
            constants[f"{p}/gamma"], constants[f"{p}/beta"] = gamma.reshape(-1, 1, 1), beta.reshape(-1, 1, 1)
            new += [helper.make_node("Mul", [last, f"{p}/gamma"], [f"{p}/scaled"], name=f"{p}/mul"),
                    helper.make_node("Add", [f"{p}/scaled", f"{p}/beta"], [f"{p}/shifted"], name=f"{p}/add")]
            last = f"{p}/shifted"
        new.append(helper.make_node("Transpose", [last], outputs, name=f"{p}/to_nhwc", perm=[0, 2, 3, 1]))
        added += [numpy_helper.from_array(value, name) for name, value in constants.items()]
        position = min(i for i, n in enumerate(nodes) if id(n) in ids)
        nodes = nodes[:position] + new + [n for n in nodes[position:] if id(n) not in ids]
        fused += 1
    if not fused:
        return 0
    while True:  # drop what only the replaced subgraphs read (their shape computations)
        read = {i for n in nodes for i in n.input} | {o.name for o in graph.output}
        kept = [n for n in nodes if any(o in read for o in n.output)]
        if len(kept) == len(nodes):
            break
        nodes = kept
    del graph.node[:]
    graph.node.extend(nodes)
    read = {i for n in nodes for i in n.input}
    kept = [i for i in list(graph.initializer) + added if i.name in read]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return fused



def fuse_file(path: str, output: Optional[str] = None, tolerance: float = 1e-3) -> dict:
    """Fuses the group norms of an exported kgen file (one written before export did it).

    The rewritten graph must match the original on random inputs (batches 1
    and 3, onnxruntime) within `tolerance`; only then is it written, to
    `output` (default: in place), with its card (`.json`) updated.

    Returns:
        dict with `path`, `fused` (group norms), `max_abs_error`.
    """
    import json
    import os

    import onnx
    import onnxruntime as ort

    from kgen.export.model_card import write_card_files
    from kgen.export.onnx_files import max_difference, read_onnx_metadata, session_runner
    from kgen.utils.atomic import atomic_path

    model, metadata = read_onnx_metadata(path)
    original = model.SerializeToString()
    fused = fuse_group_norms(model)
    if not fused:
        raise ValueError(f"{path} has no unfused group norm (fused already, or none): nothing to do.")
    onnx.checker.check_model(model)
    output = output or path
    with atomic_path(output) as tmp:
        onnx.save(model, tmp)
        before = ort.InferenceSession(original, providers=["CPUExecutionProvider"])
        after = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
        error = max_difference(metadata, session_runner(before, metadata), session_runner(after, metadata))
        if not error <= tolerance:
            raise ValueError(f"the fused graph differs from {path} by {error:.3g} > tolerance {tolerance:g}; "
                             "nothing written.")
    card_path = os.path.splitext(path)[0] + ".json"
    if os.path.isfile(card_path):
        with open(card_path) as f:
            card = json.load(f)
        card["file"] = os.path.basename(output)
        card.setdefault("export", {}).update(group_norms_fused=fused, max_abs_error_vs_unfused=error,
                                             size_bytes=os.path.getsize(output))
        write_card_files(os.path.splitext(output)[0] + ".json", card)
    return {"path": output, "fused": fused, "max_abs_error": error}
