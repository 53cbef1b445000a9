"""VAE encoder."""

import keras

from kgen.models import blocks, layout


@keras.saving.register_keras_serializable(package="kgen")
class VAEEncoder(keras.Model):
    """Image to the mean and log-variance of a diagonal Gaussian q(z|x).

    Vanilla: stride-2 stages (`widths`), then flatten and a dense projection.
    With `hourglass=True` the convolutional part is replaced by an hourglass
    (down through `widths` to a bottleneck and back up to full resolution),
    followed by the same projection. Its full-resolution map is average-pooled
    by 2^len(widths) before the projection (`pool_before_projection`), to the
    vanilla encoder's feature count: projecting H x W x widths[0] features
    directly lets one Adam step move the log-variance by tens of nats, which
    diverged on CIFAR-10 within 10 steps.

    Args:
        image_shape: tuple of int. Defaults to `(28, 28, 1)`.
        latent_dim: int. Defaults to `16`.
        widths: tuple of int. Channels per stride-2 stage. Defaults to `(32, 64)`.
        hourglass: bool. Use the hourglass variant. Defaults to `False`.
        pool_before_projection: bool. Average-pool the hourglass output
            before the projection (no effect without `hourglass`).
            Defaults to `True`; checkpoints saved without the option load
            as `False`, the architecture they were trained with.
        data_format: str or None. Layout inside. Defaults to `None`.

    Example:
    >>> mean, log_var = VAEEncoder((28, 28, 1), latent_dim=8)(keras.ops.zeros((2, 28, 28, 1)))

    References:
        Kingma and Welling, "Auto-Encoding Variational Bayes", ICLR 2014.
    """

    def __init__(self, image_shape=(28, 28, 1), latent_dim=16, widths=(32, 64), hourglass=False,
                 data_format=None, pool_before_projection=True, **kwargs):
        _check(image_shape, latent_dim, widths)
        fmt = layout.resolve_data_format(data_format)
        images = keras.Input(tuple(image_shape), name="images")
        x = layout.to_internal(images, fmt)
        if hourglass:
            x = blocks.hourglass(x, widths, fmt, "hourglass")
            if pool_before_projection:
                x = keras.layers.AveragePooling2D(2 ** len(widths), data_format=fmt, name="projection_pool")(x)
        else:
            for i, width in enumerate(widths):
                x = blocks.down(x, width, fmt, f"down{i}")
        x = keras.layers.Flatten()(layout.to_external(x, fmt))
        mean = keras.layers.Dense(latent_dim, dtype="float32", name="mean")(x)
        log_var = keras.layers.Dense(latent_dim, dtype="float32", name="log_var")(x)
        super().__init__(inputs=images, outputs=[mean, log_var], **kwargs)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.latent_dim = int(latent_dim)
        self.widths = tuple(int(w) for w in widths)
        self.hourglass = bool(hourglass)
        self.data_format = data_format
        self.pool_before_projection = bool(pool_before_projection)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "image_shape": self.image_shape,
                "latent_dim": self.latent_dim, "widths": self.widths, "hourglass": self.hourglass,
                "data_format": self.data_format, "pool_before_projection": self.pool_before_projection}

    @classmethod
    def from_config(cls, config):
        return cls(**{"pool_before_projection": False, **config})


def _check(image_shape, latent_dim, widths):
    if int(latent_dim) < 1:
        raise ValueError(f"latent_dim must be positive; got {latent_dim}.")
    if not widths or min(widths) < 1:
        raise ValueError(f"widths must be positive channel counts; got {widths!r}.")
    height, width = int(image_shape[0]), int(image_shape[1])
    factor = 2 ** len(widths)
    if height % factor or width % factor:
        raise ValueError(
            f"image size {height}x{width} must be divisible by 2^len(widths) = {factor}; "
            f"use fewer stages (widths={tuple(widths)})."
        )
