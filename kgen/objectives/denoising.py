"""The denoising objective of diffusion models (Ho et al., 2020), in `keras.ops`.

The schedule's float64 tables come from `kgen.schedulers` and are gathered
here per example, so training and sampling use the same numbers.
"""

from typing import Optional

import numpy as np
from keras import ops

from kgen.utils.types import Tensor


def _gather(table, t, ndim):
    values = ops.take(ops.convert_to_tensor(table, "float32"), ops.cast(t, "int32"), axis=0)
    return ops.reshape(values, (-1,) + (1,) * (ndim - 1))


def add_noise(x0: Tensor, noise: Tensor, t: Tensor, alphas_cumprod: Tensor) -> Tensor:
    """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) noise, per example."""
    ab = _gather(alphas_cumprod, t, len(x0.shape))
    return ops.sqrt(ab) * x0 + ops.sqrt(1.0 - ab) * noise


def regression_target(x0: Tensor, noise: Tensor, t: Tensor, alphas_cumprod: Tensor,
                      prediction_type: str = "epsilon") -> Tensor:
    """What the network learns to output: the noise, or v = sqrt(ab) noise - sqrt(1 - ab) x_0."""
    if prediction_type == "epsilon":
        return noise
    ab = _gather(alphas_cumprod, t, len(x0.shape))
    return ops.sqrt(ab) * noise - ops.sqrt(1.0 - ab) * x0


def denoising_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean squared error over pixels and batch (the "simple" loss of Ho et al.)."""
    return ops.mean(ops.square(ops.cast(prediction, "float32") - ops.cast(target, "float32")))


def snr_loss_weight(t: Tensor, alphas_cumprod: np.ndarray, prediction_type: str = "epsilon",
                    snr_gamma: Optional[float] = None) -> Tensor:
    """Per-example weight of the Min-SNR-gamma strategy (Hang et al., 2023).

    With SNR(t) = alpha_bar_t / (1 - alpha_bar_t), the x_0-space weight
    min(SNR, gamma) becomes min(SNR, gamma) / SNR on the noise target and
    min(SNR, gamma) / (SNR + 1) on the v target: easy low-noise steps stop
    dominating the gradient, which is what speeds up convergence.
    `snr_gamma=None` gives weight 1 everywhere (the "simple" loss).
    """
    if snr_gamma is None:
        return ops.ones_like(ops.cast(t, "float32"))
    # The table is computed in float64: 1 - alpha_bar at small t is lost in float32.
    ab = np.asarray(alphas_cumprod, np.float64)
    snr = ab / (1.0 - ab)
    table = np.minimum(snr, float(snr_gamma)) / (snr if prediction_type == "epsilon" else snr + 1.0)
    return ops.take(ops.convert_to_tensor(table.astype(np.float32)), ops.cast(t, "int32"), axis=0)


def weighted_denoising_loss(prediction: Tensor, target: Tensor, weights: Tensor) -> Tensor:
    """Mean over the batch of per-example `weights` x the mean squared error over pixels."""
    error = ops.square(ops.cast(prediction, "float32") - ops.cast(target, "float32"))
    per_example = ops.mean(ops.reshape(error, (ops.shape(error)[0], -1)), axis=-1)
    return ops.mean(ops.cast(weights, "float32") * per_example)
