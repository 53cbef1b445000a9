"""Torch kernels for ops that Keras' torch backend runs slower than it must.

Only imported under the torch backend, by the layers in `kgen.models` that
need them. Each function computes what the Keras op computes, up to the
rounding of its output dtype (the tests compare them), or returns None when
its fast case does not apply.
"""

import os
from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F

# KGEN_TORCH_FAST_PATHS=0 turns these kernels off (benchmarks compare both).
ENABLED = os.environ.get("KGEN_TORCH_FAST_PATHS", "1") != "0"
# KGEN_TORCH_CHANNELS_LAST_GROUP_NORM=0 leaves every group norm to torch's kernel (benchmarks/bench_train.py).
CHANNELS_LAST_GROUP_NORM = os.environ.get("KGEN_TORCH_CHANNELS_LAST_GROUP_NORM", "1") != "0"
# Feature-map sizes (H * W) from which torch's channels_last group norm reads whole rows:
# its forward from 1,024 positions, its backward from 2,048 (aten/src/ATen/native/cpu/group_norm_kernel.cpp).
TORCH_CONTIGUOUS_FORWARD, TORCH_CONTIGUOUS_BACKWARD = 1024, 2048
# Smallest activation (elements) ChannelsLastGroupNorm takes: between the crossover's two measured sizes.
MIN_ELEMENTS = 160_000


def conv_transpose_2d_same(inputs: torch.Tensor, kernel: torch.Tensor, strides: Sequence[int], data_format: str,
                           bias: Optional[torch.Tensor] = None) -> Optional[torch.Tensor]:
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




def conv_2d(inputs: torch.Tensor, kernel: torch.Tensor, bias: Optional[torch.Tensor], strides: Sequence[int],
            padding: str) -> Optional[torch.Tensor]:
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


def batch_norm_train(layer: Any, inputs: torch.Tensor) -> Optional[torch.Tensor]:
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


def group_norm(layer: Any, inputs: torch.Tensor) -> Optional[torch.Tensor]:
    """`keras.layers.GroupNormalization` with torch's fused kernel.

    Keras builds group norm from reshapes, moments and elementwise ops, all
    recorded by autograd (a profile of the UNet's training step put them
    above the convolutions); torch's `group_norm` is one kernel forward and
    one backward. The output has the layer's compute dtype, as in Keras.

    Under a mixed policy the inputs stay bfloat16 and the
    weights float32: torch's kernel accumulates the statistics in float32
    (what Keras' upcast is for) without two casting passes over the
    activations; the result differs from Keras' by the output's rounding.
    bfloat16 activations in torch's `channels_last` memory format with
    fewer than 16 channels per group, where torch's kernel is slowest, go to
    `ChannelsLastGroupNorm` instead (sizes: `_narrow_groups_channels_last`).

    Returns None (use the Keras path) unless the channels are on axis 1.
    """
    x = inputs
    if not ENABLED or x.ndim < 3 or layer.axis % x.ndim != 1:
        return None
    weight = layer.gamma.value if layer.scale else None
    bias = layer.beta.value if layer.center else None
    if x.dtype not in (torch.float32, torch.bfloat16):
        x = x.float()
    if _narrow_groups_channels_last(x, layer.groups):
        y = ChannelsLastGroupNorm.apply(x, layer.groups, weight, bias, layer.epsilon)
    else:
        y = F.group_norm(x, layer.groups, weight, bias, layer.epsilon)
    return y.to(getattr(torch, layer.compute_dtype))


def _narrow_groups_channels_last(x, groups):
    """True where `ChannelsLastGroupNorm` beats torch's kernel (measured, docs/performance.md).

    Below 2,048 positions per feature map (1,024 for the forward), torch's CPU
    group norm reads a channels_last tensor group by group: a strided column
    of channels-per-group values in every row. In bfloat16 with fewer than 16
    channels per group that column is under 32 bytes, and forward plus
    backward ran 1.4-6.6x slower than `ChannelsLastGroupNorm` from 200,704
    elements on; at 131,072 and below the fixed cost of its dozen small ops
    made it the slower (`python benchmarks/bench_torch_layouts.py --dtype
    bfloat16 ...`, which also checks this choice; docs/performance.md).
    """
    return (CHANNELS_LAST_GROUP_NORM and x.dtype == torch.bfloat16 and x.ndim == 4 and x.shape[1] // groups < 16
            and x.shape[2] * x.shape[3] < TORCH_CONTIGUOUS_BACKWARD and x.numel() >= MIN_ELEMENTS
            and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous())


def _wide_rows(x, *per_channel, width=512):
    """`x` (N, L, C) as (N, L / k, kC), and each (N, C) of `per_channel` as (N, 1, kC); kC <= `width`.

    The same broadcast of one value per sample and channel, over rows k times
    wider: torch's elementwise loops run along the last axis, and at 16-64
    channels its broadcasts were 2-3x slower than over wide rows.
    """
    n, length, channels = x.shape
    k = 1
    while 2 * k * channels <= width and length % (2 * k) == 0:
        k *= 2
    return (x.view(n, length // k, k * channels),) + tuple(v.to(x.dtype).repeat(1, k).unsqueeze(1) for v in per_channel)


def _scale_shift(x, scale, shift):
    """x * scale + shift, `x` (N, L, C) in its dtype, `scale` and `shift` (N, C)."""
    rows, scale_rows, shift_rows = _wide_rows(x, scale, shift)
    return torch.addcmul(shift_rows, rows, scale_rows).view(x.shape)


def _centre(x, mean):
    """`x` (N, L, C) minus `mean` (N, C, float32) rounded to x's dtype, and the float32 remainder (N, C)."""
    rough = mean.to(x.dtype)
    rows, rough_rows = _wide_rows(x, rough)
    return (rows - rough_rows).view(x.shape), mean - rough.float()


class ChannelsLastGroupNorm(torch.autograd.Function):
    """Group norm of a bfloat16 `channels_last` tensor from reductions over its rows.

    The (N, C, H, W) input is the (N, H*W, C) buffer Keras hands torch; every
    pass below runs along its contiguous rows. Statistics are float32: the
    per-channel sums (accumulated in float32 by torch, rounded to bfloat16 on
    output) give a rough mean, rounded to bfloat16 and subtracted from the
    input (`centred`); the sums of the centred values and of their squares then
    give the exact offset of the rough mean and the variance, without the
    cancellation of E[x^2] - E[x]^2 when the mean is large against the spread.
    The backward reuses `centred`: with A and B the sums over a group of
    gamma * dy and gamma * dy * (x - mean),
    dx = rstd gamma dy - rstd A / M - rstd^3 B (x - mean) / M, M = H W C / G.
    Outputs and gradients agree with torch's kernel to bfloat16 rounding (tests).
    """

    @staticmethod
    def forward(ctx, inputs, groups, weight, bias, epsilon):
        n, channels, height, width = inputs.shape
        ctx.groups, ctx.has_bias = groups, bias is not None
        x = inputs.permute(0, 2, 3, 1).reshape(n, height * width, channels)  # a view, no copy
        if height * width >= TORCH_CONTIGUOUS_FORWARD:
            # torch's forward reads whole rows at this size: use it, centre in the backward.
            y, mean, rstd = torch.native_group_norm(inputs, weight, bias, n, channels, height * width, groups, epsilon)
            ctx.centred = False
            ctx.save_for_backward(x, weight, mean, rstd)
            return y
        rstd, centred, offset = _centred_moments(x, groups, epsilon)
        per_group = channels // groups
        rstd_c = rstd.repeat_interleave(per_group, 1)
        scale = rstd_c * weight if weight is not None else rstd_c
        shift = -scale * offset + (bias if bias is not None else 0.0)
        y = _scale_shift(centred, scale, shift)
        ctx.centred = True
        ctx.save_for_backward(centred, weight, offset, rstd)
        return y.view(n, height, width, channels).permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, grad):
        saved, weight, third, rstd = ctx.saved_tensors
        n, length, channels = saved.shape
        groups = ctx.groups
        per_group = channels // groups
        count = length * per_group
        if ctx.centred:
            centred, offset = saved, third
        else:  # torch's forward ran: `saved` is the input, `third` the group means
            centred, offset = _centre(saved, third.repeat_interleave(per_group, 1))
        dy = grad.permute(0, 2, 3, 1).reshape(n, length, channels)
        db = dy.sum(1).float()  # (N, C)
        ds = torch.linalg.vecdot(dy, centred, dim=1).float() - offset * db  # sum of dy * (x - mean)
        gamma = weight if weight is not None else torch.ones_like(db[0])
        rstd_c = rstd.repeat_interleave(per_group, 1)
        a = _group_sums(db * gamma, groups)
        b = _group_sums(ds * gamma, groups)
        coef_x = (-rstd.pow(3) * b / count).repeat_interleave(per_group, 1)
        coef_1 = (-rstd * a / count).repeat_interleave(per_group, 1) - coef_x * offset
        dx = _scale_shift(centred, coef_x, coef_1)
        dy_rows, scale_rows = _wide_rows(dy, rstd_c * gamma)
        dx.view(dy_rows.shape).addcmul_(dy_rows, scale_rows)
        grad_weight = (ds * rstd_c).sum(0).to(weight.dtype) if weight is not None else None
        grad_bias = db.sum(0).to(weight.dtype if weight is not None else db.dtype) if ctx.has_bias else None
        height, width = grad.shape[2:]
        return dx.view(n, height, width, channels).permute(0, 3, 1, 2), None, grad_weight, grad_bias, None


def _centred_moments(x, groups, epsilon):
    """1 / std per group (N, G) of `x` (N, L, C), and `x` centred on its rounded group means.

    Returns (rstd, centred, offset): `centred` = x - the group means rounded
    to x's dtype, `offset` (N, C) the float32 mean minus that rounded mean.
    """
    n, length, channels = x.shape
    per_group = channels // groups
    count = length * per_group
    rough = _group_sums(x.sum(1).float(), groups) / count  # from bfloat16-rounded channel sums
    centred, _ = _centre(x, rough.repeat_interleave(per_group, 1))
    offset = _group_sums(centred.sum(1).float(), groups) / count  # the mean minus the one subtracted, measured
    squares = _group_sums(torch.linalg.vecdot(centred, centred, dim=1).float(), groups) / count
    rstd = ((squares - offset.square()).clamp_min_(0.0) + epsilon).rsqrt_()
    return rstd, centred, offset.repeat_interleave(per_group, 1)


def _group_sums(per_channel, groups):
    """(N, C) to (N, G): sum over each group's channels."""
    return per_channel.view(per_channel.shape[0], groups, -1).sum(-1)


class _AllReduceSum(torch.autograd.Function):
    """The sum over the processes, differentiable: the gradient of a sum is the sum of the processes' gradients."""

    @staticmethod
    def forward(ctx, x):
        import torch.distributed as dist

        total = x.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad):
        import torch.distributed as dist

        total = grad.clone()
        dist.all_reduce(total)
        return total


def global_moments(x: torch.Tensor, axes: Sequence[int]) -> tuple:
    """Mean and variance over `axes` of the global batch, the processes' sums all-reduced.

    The all-reduce is differentiable (`_AllReduceSum`), so the statistics
    are differentiated as one process's statistics of the whole batch are
    (what torch's SyncBatchNorm does). Variance as Keras' torch `moments`
    computes it, E[x^2] - E[x]^2.
    """
    import torch.distributed as dist

    axes = tuple(axes)
    count = 1
    for axis in axes:
        count *= x.shape[axis]
    x32 = x.float()
    sums = _AllReduceSum.apply(torch.stack([x32.sum(dim=axes), x32.square().sum(dim=axes)]))
    total = count * dist.get_world_size()
    mean = sums[0] / total
    variance = sums[1] / total - mean.square()
    return mean.to(x.dtype), variance.to(x.dtype)
