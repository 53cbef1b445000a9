"""A Gaussian decoder's log-scale shared by every pixel of a channel (the σ-VAE)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kgen")
class SharedLogScale(keras.layers.Layer):
    """Appends one learned log-scale per channel to a map of Gaussian means.

    A decoder whose last convolution predicts a log-scale per pixel can
    explain edges and texture as noise (large scales there) and keep a
    smooth mean; one scale per channel makes every pixel's squared error
    count alike, the calibrated decoder of Rybkin et al. Its output has the
    layout of the per-pixel decoder's (mean first, then log-scale, channels
    last), so the ELBO, the likelihood bound and the export are unchanged.

    Args:
        **kwargs: `keras.layers.Layer` arguments.

    Example:
    >>> SharedLogScale()(keras.ops.zeros((2, 4, 4, 3))).shape
    (2, 4, 4, 6)

    References:
        Rybkin, Daniilidis, Levine. Simple and Effective VAE Training with
        Calibrated Decoders. ICML 2021.
    """

    def build(self, input_shape):
        self.log_scale = self.add_weight(shape=(int(input_shape[-1]),), initializer="zeros", name="log_scale")

    def call(self, mean):
        log_scale = ops.zeros_like(mean) + ops.cast(self.log_scale, mean.dtype)
        return ops.concatenate([mean, log_scale], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 2 * input_shape[-1])
