"""Weights back out of a kgen ONNX export, to warm-start a run whose checkpoints are gone.

tf2onnx moves each Keras weight into an initializer of the graph, transposed
(convolution kernels), reshaped (group norm scales) or shared with an equal
one (constant deduplication), under names that depend on the tracing. Rather
than encode those rules, `part_weights` converts the same network again with
every weight element set to a distinct marker value (a "probe"): each marker
found in a probe initializer says which weight element that initializer
element is. A probe initializer is paired with the file's by the Keras layer
that reads it (the node's name scope), then by reader and shape, so a file
written by an earlier version of a layer (another op, the same weights)
still reads back. The recovered network is then run against the file with
onnxruntime, and only a match within tolerance is returned.

A batch normalization traces folded (`x * scale + shift`, its four weights
gone: into a `Mul` and an `Add` of per-channel constants, or into the kernel
and bias of the layer before it). The probe's batch norms have mean 0 and a
variance that makes the folded scale exactly gamma, so gamma's and beta's
markers survive (and a second probe with gamma 1 finds a kernel it was folded
into); `_unfold_batch_norms` and `_calibrate_batch_norms` then give each such
layer weights that compute exactly the file's function at inference, with
moving statistics measured on the round-trip check's random inputs (a
latent's prior), so that training mode, which normalises by the batch's
statistics, continues from the same function."""

import json
import re
from typing import Any

import numpy as np

from kgen.export.graph_rewrites import FUSED_SCOPE
from kgen.export.onnx_export import to_onnx_proto
from kgen.export.onnx_files import DEFAULT_TOLERANCE, max_difference, read_onnx_metadata, session_runner
from kgen.infer.runtime import keras_runner

_MARKER_SIGN = np.uint32(0x80000000)
_MANTISSA_BITS = 23


def _markers(count):
    """`count` distinct float32 values, one per weight element: negative, at least 2 in magnitude.

    Element k has mantissa k + 1 (never 0: -2.0, -4.0... could be a graph's
    own constants) in binade k // (2**23 - 1), so any number of elements fit.
    """
    k = np.arange(count, dtype=np.uint64)
    per_binade = (1 << _MANTISSA_BITS) - 1
    exponent = (128 + k // per_binade).astype(np.uint32)
    mantissa = (k % per_binade + 1).astype(np.uint32)
    return (_MARKER_SIGN | (exponent << _MANTISSA_BITS) | mantissa).view(np.float32)


def _layer_key(node_name):
    """The Keras layer scope of a node, without the trace's numeric suffixes.

    `u_net_1/up2_res0_conv1_1/BiasAdd` -> `up2_res0_conv1`: the outer model's
    name and the op's name are dropped, and `_1`, `_2`... (added by tracing
    the same name twice) are removed from each part; from an enclosing
    model's scope every such suffix (`dcgan_generator_1_1`: the second model
    of its class in the process, traced twice).
    """
    parts = [part for part in node_name.split("/")[1:-1] if part != FUSED_SCOPE]
    return "/".join(re.sub(r"(_\d+)+$" if i < len(parts) - 1 else r"_\d+$", "", part) for i, part in enumerate(parts))


def _weights_by_layer(graph):
    """`{layer key: [((op_type, input slot), initializer), ...]}` of the float32 initializers nodes read."""
    initializers = {init.name: init for init in graph.initializer if init.data_type == 1}
    found = {}
    for node in graph.node:
        for slot, name in enumerate(node.input):
            if name in initializers:
                found.setdefault(_layer_key(node.name), []).append(((node.op_type, slot), initializers[name]))
    return found


def _take_match(candidates, user, dims):
    """Removes and returns the values of the file's weight that corresponds to a probe weight, or None.

    The same reader (op type and input slot) with the same shape first, then
    the same shape, then the same size (a group norm's scale, fused or not:
    (1, 1, 1, G, C/G) or (C, 1, 1), channels in the same order); the first
    in graph order each time.
    """
    from onnx import numpy_helper

    size = int(np.prod(dims))
    tests = (lambda u, d: u == user and d == list(dims), lambda u, d: d == list(dims),
             lambda u, d: int(np.prod(d)) == size)
    for test in tests:
        for i, (their_user, init) in enumerate(candidates):
            if test(their_user, list(init.dims)):
                del candidates[i]
                return numpy_helper.to_array(init)
    return None


def _float32_config(config):
    """A serialized Keras object with every dtype policy replaced by float32 (mixed ones included)."""
    if isinstance(config, list):
        return [_float32_config(c) for c in config]
    if not isinstance(config, dict):
        return config
    if str(config.get("class_name", "")).endswith("DTypePolicy"):
        return {**config, "class_name": "DTypePolicy", "config": {**config.get("config", {}), "name": "float32"}}
    return {k: ("float32" if k == "dtype" and v in ("mixed_bfloat16", "mixed_float16", "bfloat16") else
                _float32_config(v)) for k, v in config.items()}


def _float32_clone(network):
    """The same architecture, its own variables, computing in float32 (the policy an export traces)."""
    import keras

    from kgen.utils.saving import float32_policy

    with float32_policy():
        return keras.saving.deserialize_keras_object(_float32_config(keras.saving.serialize_keras_object(network)))


def part_weights(trainer: Any, part: str, path: str, tolerance: float = DEFAULT_TOLERANCE) -> tuple:
    """`(weights, error)`: the weights of `trainer`'s part `part` (as `get_weights()`) read from the export `path`.

    The part's network may compute under any dtype policy and in any layout;
    it is left as it was. The probe runs under the TensorFlow backend (the
    exporter's), in a subprocess under the other backends, which rebuilds
    the trainer from its config.

    Raises:
        ValueError: not a kgen export, another architecture, a weight the
            file does not hold, or outputs that differ beyond `tolerance`
            (`error`: the largest absolute difference, on random inputs).
    """
    import keras

    if keras.backend.backend() == "tensorflow":
        network, _ = trainer.inference_parts()[part]()
        return _read_weights(_float32_clone(network), path, tolerance)
    import os
    import tempfile

    from kgen.export.tensorflow_subprocess import run_under_tensorflow

    with tempfile.TemporaryDirectory() as folder:
        config, result = os.path.join(folder, "trainer.json"), os.path.join(folder, "weights.npz")
        with open(config, "w") as f:
            json.dump(keras.saving.serialize_keras_object(trainer), f)
        run_under_tensorflow("kgen.export.onnx_import", [config, part, path, result, tolerance],
                             failure=f"cannot read weights from {path}.")
        with np.load(result) as saved:
            return [saved[f"w{i}"] for i in range(len(saved.files) - 1)], float(saved["error"])


def _read_weights(network, path, tolerance):
    """`part_weights` on a float32 network of the TensorFlow backend, whose weights it changes."""
    import onnxruntime as ort

    model, metadata = read_onnx_metadata(path)
    flat = _probe_matches(network, model, metadata)
    statistics = _batch_norm_weights(network)
    if statistics and any(np.isnan(flat[w]).any() for w in range(len(flat)) if w not in statistics):
        # A batch norm folded into the kernel before it: probe again with gamma 1, which leaves that kernel's markers.
        # (Without batch norms that probe would be the same trace: a missing weight is missing.)
        again = _probe_matches(network, model, metadata, unit_gamma=True)
        for w, values in enumerate(again):
            if w not in statistics or statistics[w][0] == "gamma":
                flat[w] = np.where(np.isnan(flat[w]), values, flat[w])
    unfolded = _unfold_batch_norms(network, flat)
    missing = [network.weights[w].path for w, f in enumerate(flat) if np.isnan(f).any()]
    if missing:
        raise ValueError(f"{path} does not hold every weight of this network; missing: {', '.join(missing[:5])}"
                         + (" ..." if len(missing) > 5 else "") + ".")
    weights = [f.reshape(w.shape) for f, w in zip(flat, network.weights)]

    network.set_weights(weights)
    if unfolded:
        weights = _calibrate_batch_norms(network, unfolded, metadata)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    error = max_difference(metadata, session_runner(session, metadata), keras_runner(network, metadata))
    if not error <= tolerance:
        raise ValueError(f"the weights read from {path} do not reproduce it: outputs differ by {error:.3g} "
                         f"> tolerance {tolerance:g}.")
    return weights, error


def _probe_matches(network, model, metadata, unit_gamma=False):
    """Each weight element of `network` found in the file `model` (flat float32 arrays, NaN where not found).

    Every batch normalization of the probe has mean 0 and variance
    `_unit_variance` (a folded scale of exactly gamma, a shift of exactly
    beta: both keep their markers, while moving statistics never survive a
    trace); with `unit_gamma` also gamma 1, so that the kernel of a layer it
    is folded into keeps its markers.
    """
    from onnx import numpy_helper

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    shapes = [tuple(w.shape) for w in network.weights]
    sizes = [int(np.prod(s)) for s in shapes]
    owner = np.repeat(np.arange(len(shapes)), sizes)  # weight index of each marker
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    markers = _markers(int(offsets[-1]))
    values = [markers[a:b].reshape(s) for a, b, s in zip(offsets[:-1], offsets[1:], shapes)]
    for w, (role, layer) in _batch_norm_weights(network).items():
        fixed = {"moving_mean": 0.0, "moving_variance": _unit_variance(layer.epsilon),
                 "gamma": 1.0 if unit_gamma else None}
        if fixed.get(role) is not None:
            values[w] = np.full(shapes[w], fixed[role], np.float32)
    network.set_weights(values)
    probe = to_onnx_proto(network, metadata, opset)

    order = np.argsort(markers.view(np.uint32))
    sorted_bits = markers.view(np.uint32)[order]
    flat = [np.full(size, np.nan, np.float32) for size in sizes]
    stored = _weights_by_layer(model.graph)
    for key, entries in _weights_by_layer(probe.graph).items():
        for user, init in entries:
            bits = numpy_helper.to_array(init).astype(np.float32).ravel().view(np.uint32)
            where = np.minimum(np.searchsorted(sorted_bits, bits), len(sorted_bits) - 1)
            found = sorted_bits[where] == bits
            if not found.any():
                continue  # a constant of the graph, not a weight
            stored_values = _take_match(stored.get(key, []), user, init.dims)
            if stored_values is None:
                continue  # reported as a missing weight
            element = order[where[found]]
            for w in np.unique(owner[element]):
                mine = owner[element] == w
                flat[w][element[mine] - offsets[w]] = stored_values.ravel()[found][mine]
    return flat


def _unit_variance(epsilon):
    """A float32 variance v with float32(v + epsilon) == 1 exactly: a folded scale of exactly gamma."""
    v = np.float32(1.0) - np.float32(epsilon)
    while np.float32(v + np.float32(epsilon)) != np.float32(1.0):
        v = np.nextafter(v, np.float32(2.0) if v + np.float32(epsilon) < 1 else np.float32(0.0))
    return v


def _batch_norms(network):
    import keras

    return [layer for layer in network._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.BatchNormalization)]


def _batch_norm_weights(network):
    """`{weight index: (role, layer)}` of the batch norms' weights (role: gamma, beta, moving_mean or
    moving_variance)."""
    index = {id(v): i for i, v in enumerate(network.weights)}
    return {index[id(getattr(layer, role))]: (role, layer) for layer in _batch_norms(network)
            for role in ("gamma", "beta", "moving_mean", "moving_variance")}


def _unfold_batch_norms(network, flat):
    """Fills the statistics (and a gamma folded into a kernel) of each batch norm; returns
    `[(layer, (gamma, beta, mean, variance) indices)]`.

    After `_probe_matches`, beta holds the file's folded shift and gamma its
    scale, or nothing when the scale went into the kernel before (read as
    that kernel): gamma 1 then. Mean 0 and variance `_unit_variance` give the
    file's inference output; `_calibrate_batch_norms` measures real statistics.
    """
    index = {id(v): i for i, v in enumerate(network.weights)}
    unfolded = []
    for layer in _batch_norms(network):
        w = [index[id(v)] for v in (layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance)]
        if np.isnan(flat[w[1]]).any():
            continue  # reported as missing
        if np.isnan(flat[w[0]]).all():
            flat[w[0]] = np.ones_like(flat[w[0]])
        flat[w[2]] = np.zeros_like(flat[w[2]])
        flat[w[3]] = np.full_like(flat[w[3]], _unit_variance(layer.epsilon))
        unfolded.append((layer, w))
    return unfolded


def _calibrate_batch_norms(network, unfolded, metadata, batch=512):
    """Moving statistics of the unfolded layers measured on `batch` random inputs; returns all weights.

    Each layer's input is recorded in inference mode (exact: its folded
    output does not depend on the statistics chosen), then its gamma and beta
    are rewritten so that `(x - mean) / sqrt(variance + eps) * gamma + beta`
    is still `x * scale + shift`.
    """
    import keras

    from kgen.export.onnx_files import random_inputs

    recorded = {}
    for layer, _ in unfolded:  # each layer's input, recorded as the network runs
        def record(x, *args, _layer=layer, _call=layer.call, **kwargs):
            recorded[id(_layer)] = x
            return _call(x, *args, **kwargs)

        layer.call = record
    try:
        inputs = random_inputs(metadata, batch, seed=1)
        keras_runner(network, metadata)(inputs)
    finally:
        for layer, _ in unfolded:
            del layer.call
    weights = network.get_weights()
    for layer, (g, b, m, v) in unfolded:
        x = keras.ops.convert_to_numpy(recorded[id(layer)]).astype(np.float64)
        axis = layer.axis if layer.axis >= 0 else x.ndim + layer.axis
        x = np.moveaxis(x, axis, -1).reshape(-1, x.shape[axis])
        scale, shift = weights[g].astype(np.float64), weights[b].astype(np.float64)
        mean, variance = x.mean(0), x.var(0)
        weights[g] = (scale * np.sqrt(variance + layer.epsilon)).astype(np.float32)
        weights[b] = (shift + mean * scale).astype(np.float32)
        weights[m], weights[v] = mean.astype(np.float32), variance.astype(np.float32)
    network.set_weights(weights)
    return weights


def _main(argv):
    """`python -m kgen.export.onnx_import TRAINER.json PART FILE.onnx OUT.npz TOLERANCE` (`part_weights`)."""
    import keras

    import kgen.trainers  # noqa: F401  (registers kgen's classes)

    config, part, path, result, tolerance = argv
    with open(config) as f:
        trainer = keras.saving.deserialize_keras_object(_float32_config(json.load(f)))
    weights, error = part_weights(trainer, part, path, float(tolerance))
    np.savez(result, error=error, **{f"w{i}": w for i, w in enumerate(weights)})


if __name__ == "__main__":
    import sys

    _main(sys.argv[1:])
