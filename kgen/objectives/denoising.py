"""The denoising objective of diffusion models (Ho et al., 2020), in `keras.ops`.

The schedule's float64 tables come from `kgen.schedulers` and are gathered
here per example, so training and sampling use the same numbers.
"""

from keras import ops


def _gather(table, t, ndim):
    values = ops.take(ops.convert_to_tensor(table, "float32"), ops.cast(t, "int32"), axis=0)
    return ops.reshape(values, (-1,) + (1,) * (ndim - 1))


def add_noise(x0, noise, t, alphas_cumprod):
    """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) noise, per example."""
    ab = _gather(alphas_cumprod, t, len(x0.shape))
    return ops.sqrt(ab) * x0 + ops.sqrt(1.0 - ab) * noise


def regression_target(x0, noise, t, alphas_cumprod, prediction_type="epsilon"):
    """What the network learns to output: the noise, or v = sqrt(ab) noise - sqrt(1 - ab) x_0."""
    if prediction_type == "epsilon":
        return noise
    ab = _gather(alphas_cumprod, t, len(x0.shape))
    return ops.sqrt(ab) * noise - ops.sqrt(1.0 - ab) * x0


def denoising_loss(prediction, target):
    """Mean squared error over pixels and batch (the "simple" loss of Ho et al.)."""
    return ops.mean(ops.square(ops.cast(prediction, "float32") - ops.cast(target, "float32")))
