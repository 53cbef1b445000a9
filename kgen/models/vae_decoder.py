"""VAE decoder."""

import keras

from kgen.models import blocks, layout
from kgen.models.conv2d import Conv2D
from kgen.models.shared_log_scale import SharedLogScale
from kgen.models.vae_encoder import _check


@keras.saving.register_keras_serializable(package="kgen")
class VAEDecoder(keras.Model):
    """Latent vector to the parameters of p(x|z), one map per image channel.

    Vanilla: a dense projection to the smallest feature map, then stride-2
    stages up (`widths` reversed). With `hourglass=True` the projection goes
    to a full-resolution map with `widths[0]` channels, and an hourglass
    (down to a bottleneck, back up) replaces the upsampling stages. Both end
    in a 3x3 convolution to the output: Bernoulli logits (C channels) for
    `likelihood="bernoulli"`, or a mean and a log-scale per pixel (2C
    channels, mean first) for `likelihood="gaussian"`; with `scale="shared"`
    the convolution predicts the mean only and one learned log-scale per
    channel serves every pixel (`SharedLogScale`, the calibrated σ-VAE).

    Args:
        image_shape: tuple of int. Defaults to `(28, 28, 1)`.
        latent_dim: int. Defaults to `16`.
        widths: tuple of int. Channels per stage, as in `VAEEncoder`.
            Defaults to `(32, 64)`.
        hourglass: bool. Use the hourglass variant. Defaults to `False`.
        likelihood: str. "bernoulli" or "gaussian". Defaults to `"bernoulli"`.
        scale: str. The Gaussian's log-scale: "per_pixel" (predicted) or
            "shared" (one learned value per channel). Defaults to
            `"per_pixel"`.
        data_format: str or None. Layout inside. Defaults to `None`.

    Example:
    >>> VAEDecoder((28, 28, 1), latent_dim=8)(keras.ops.zeros((2, 8))).shape
    (2, 28, 28, 1)
    """

    def __init__(self, image_shape=(28, 28, 1), latent_dim=16, widths=(32, 64), hourglass=False,
                 likelihood="bernoulli", scale="per_pixel", data_format=None, **kwargs):
        _check(image_shape, latent_dim, widths)
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian'; got {likelihood!r}.")
        if scale not in ("per_pixel", "shared"):
            raise ValueError(f"scale must be 'per_pixel' or 'shared'; got {scale!r}.")
        fmt = layout.resolve_data_format(data_format)
        height, width, channels = (int(d) for d in image_shape)
        z = keras.Input((latent_dim,), name="latent")
        if hourglass:
            x = keras.layers.Dense(height * width * widths[0], activation="relu", name="project")(z)
            x = layout.to_internal(keras.layers.Reshape((height, width, widths[0]))(x), fmt)
            x = blocks.hourglass(x, widths, fmt, "hourglass")
        else:
            factor = 2 ** len(widths)
            small = (height // factor, width // factor, widths[-1])
            x = keras.layers.Dense(small[0] * small[1] * small[2], activation="relu", name="project")(z)
            x = layout.to_internal(keras.layers.Reshape(small)(x), fmt)
            for i, w in enumerate(reversed(widths)):
                x = blocks.up(x, w, fmt, f"up{i}")
        shared = likelihood == "gaussian" and scale == "shared"
        out_channels = channels * (1 if likelihood == "bernoulli" or shared else 2)
        x = Conv2D(out_channels, 3, padding="same", dtype="float32", data_format=fmt, name="to_params")(x)
        params = layout.to_external(x, fmt)
        if shared:
            params = SharedLogScale(dtype="float32", name="log_scale")(params)
        super().__init__(inputs=z, outputs=params, **kwargs)
        self.image_shape = (height, width, channels)
        self.latent_dim = int(latent_dim)
        self.widths = tuple(int(w) for w in widths)
        self.hourglass = bool(hourglass)
        self.likelihood = likelihood
        self.scale = scale
        self.data_format = data_format

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "image_shape": self.image_shape,
                "latent_dim": self.latent_dim, "widths": self.widths, "hourglass": self.hourglass,
                "likelihood": self.likelihood, "scale": self.scale, "data_format": self.data_format}
