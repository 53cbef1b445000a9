"""Torch kernels for ops that Keras' torch backend runs slower than it must.

Only imported under the torch backend, by the layers in `kgen.models` that
need them. Each function computes exactly what the Keras op computes (the
tests compare them) or returns None when its fast case does not apply.
"""

import os

import torch
import torch.nn.functional as F

# KGEN_TORCH_FAST_PATHS=0 turns these kernels off (benchmarks compare both).
ENABLED = os.environ.get("KGEN_TORCH_FAST_PATHS", "1") != "0"


def conv_transpose_2d_same(inputs, kernel, strides, data_format, bias=None):
    """`keras.ops.conv_transpose(..., padding="same")` with symmetric padding.

    Keras 3.15's torch backend runs every transposed convolution with
    `padding=0` and crops the larger result (docs/performance.md measures
    the cost). When the
    "same" padding is symmetric (kernel - stride even in both dimensions),
    torch can apply it directly and produce the same output.

    Args:
        inputs: tensor, (N, H, W, C) or (N, C, H, W) per `data_format`.
        kernel: tensor, Keras layout (kh, kw, out_channels, in_channels).
        strides: tuple of 2 ints.
        data_format: "channels_last" or "channels_first".
        bias: tensor (out_channels,) or None; added inside torch's kernel.

    Returns:
        The output tensor in `data_format`, or None if the padding is not
        symmetric.
    """
    if not ENABLED:
        return None
    kh, kw = kernel.shape[0], kernel.shape[1]
    sh, sw = strides
    if (kh - sh) % 2 or (kw - sw) % 2 or kh < sh or kw < sw:
        return None
    x = inputs.permute(0, 3, 1, 2) if data_format == "channels_last" else inputs
    weight = kernel.permute(3, 2, 0, 1)  # (in, out, kh, kw)
    y = F.conv_transpose2d(
        x, weight, bias, stride=(sh, sw), padding=((kh - sh) // 2, (kw - sw) // 2)
    )
    return y.permute(0, 2, 3, 1) if data_format == "channels_last" else y




def conv_2d(inputs, kernel, bias, strides, padding):
    """`keras.layers.Conv2D` on channels-first inputs, the bias inside torch's kernel.

    "valid" padding is torch's 0; "same" is Keras' (TensorFlow's) rule: a
    total padding of max((ceil(size / stride) - 1) * stride + kernel - size, 0)
    per dimension, the odd pixel after. Symmetric totals go to torch's
    `padding`; others are padded first, as Keras does.

    Args:
        inputs: tensor (N, C, H, W).
        kernel: tensor, Keras layout (kh, kw, in_channels, out_channels).
        bias: tensor (out_channels,) or None.
        strides: tuple of 2 ints.
        padding: "valid" or "same".

    Returns:
        The output (N, out_channels, H', W'), or None when disabled.
    """
    if not ENABLED or inputs.ndim != 4:
        return None
    weight = kernel.permute(3, 2, 0, 1)
    pads = []
    for size, k, s in zip(inputs.shape[2:], kernel.shape[:2], strides):
        total = max((-(-size // s) - 1) * s + k - size, 0) if padding == "same" else 0
        pads.append((total // 2, total - total // 2))
    if all(before == after for before, after in pads):
        return F.conv2d(inputs, weight, bias, stride=strides, padding=(pads[0][0], pads[1][0]))
    x = F.pad(inputs, (*pads[1], *pads[0]))
    return F.conv2d(x, weight, bias, stride=strides)


def batch_norm_train(layer, inputs):
    """Training-mode `keras.layers.BatchNormalization` with torch's fused kernel.

    Keras computes batch norm from separate ops (moments, subtract, scale),
    whose backward is several passes over the activations; torch's fused
    kernel is faster (docs/performance.md measures both paths). The output is
    the same function; the moving statistics are updated as Keras does
    (momentum-weighted, biased batch variance), outside the graph.

    Returns None (use the Keras path) unless the inputs are float32, 2D or
    4D, and normalised over axis 1.
    """
    x = inputs
    if not ENABLED or x.dtype != torch.float32 or x.ndim not in (2, 4):
        return None
    if layer.axis % x.ndim != 1:
        return None
    weight = layer.gamma.value if layer.scale else None
    bias = layer.beta.value if layer.center else None
    # native_batch_norm also returns the batch mean and 1/sqrt(var + eps) it
    # computed, so the moving statistics cost no extra pass over `x`.
    y, mean, inv_std = torch.native_batch_norm(x, weight, bias, None, None, True, 0.0, layer.epsilon)
    with torch.no_grad():
        variance = inv_std.pow(-2) - layer.epsilon
        m = layer.momentum
        layer.moving_mean.assign(layer.moving_mean.value * m + mean * (1.0 - m))
        layer.moving_variance.assign(layer.moving_variance.value * m + variance * (1.0 - m))
    return y


def group_norm(layer, inputs):
    """`keras.layers.GroupNormalization` with torch's fused kernel.

    Keras builds group norm from reshapes, moments and elementwise ops, all
    recorded by autograd (a profile of the UNet's training step put them
    above the convolutions); torch's `group_norm` is one kernel forward and
    one backward. The output has the layer's compute dtype, as in Keras.

    Under a mixed policy the inputs stay bfloat16 and the
    weights float32: torch's kernel accumulates the statistics in float32
    (what Keras' upcast is for) without two casting passes over the
    activations; the result differs from Keras' by the output's rounding.

    Returns None (use the Keras path) unless the channels are on axis 1.
    """
    x = inputs
    if not ENABLED or x.ndim < 3 or layer.axis % x.ndim != 1:
        return None
    weight = layer.gamma.value if layer.scale else None
    bias = layer.beta.value if layer.center else None
    if x.dtype not in (torch.float32, torch.bfloat16):
        x = x.float()
    y = F.group_norm(x, layer.groups, weight, bias, layer.epsilon)
    return y.to(getattr(torch, layer.compute_dtype))
