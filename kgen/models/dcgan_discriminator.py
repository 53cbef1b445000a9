"""DCGAN discriminator."""

import keras

from kgen.models import layout
from kgen.models.batch_normalization import BatchNormalization
from kgen.models.conv2d import Conv2D


@keras.saving.register_keras_serializable(package="kgen")
class DCGANDiscriminator(keras.Model):
    """DCGAN discriminator: image in [-1, 1] to one real/fake logit.

    Stride-2 convolutions with LeakyReLU(0.2), batch norm on every stage but
    the first, as in the DCGAN paper, then a dense logit. The stages mirror
    `DCGANGenerator` for the same `image_shape`.

    Args:
        image_shape: tuple of int. Input (height, width, channels).
            Defaults to `(28, 28, 1)`.
        width: int. Channels of the first stage, doubling per stage.
            Defaults to `64`.
        dropout: float. Dropout before the logit. Defaults to `0.0`.
        data_format: str or None. Layout used inside; None picks the
            fastest for the backend. Defaults to `None`.

    Example:
    >>> d = DCGANDiscriminator(image_shape=(32, 32, 3))
    >>> d(keras.ops.zeros((2, 32, 32, 3))).shape
    (2, 1)

    References:
        Radford et al., "Unsupervised Representation Learning with Deep
        Convolutional Generative Adversarial Networks", ICLR 2016.
    """

    def __init__(
        self,
        image_shape=(28, 28, 1),
        width=64,
        dropout=0.0,
        data_format=None,
        **kwargs,
    ):
        if int(width) < 1:
            raise ValueError(f"width must be positive; got {width}.")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout}.")
        fmt = layout.resolve_data_format(data_format)
        stages, _ = layout.halving_plan(image_shape)
        axis = layout.channel_axis(fmt)
        init = layout.dcgan_initializer()
        gamma_init = keras.initializers.RandomNormal(1.0, 0.02)

        images = keras.Input(tuple(image_shape), name="images")
        x = layout.to_internal(images, fmt)
        channels = width
        for i in range(stages):
            x = Conv2D(
                channels, 4, strides=2, padding="same", use_bias=i == 0,
                kernel_initializer=init, data_format=fmt, name=f"down{i}",
            )(x)
            if i > 0:
                x = BatchNormalization(
                    axis=axis, gamma_initializer=gamma_init, name=f"down{i}_bn"
                )(x)
            x = keras.layers.LeakyReLU(0.2)(x)
            channels *= 2
        # Flatten in channels-last order so the dense weights mean the same
        # thing whichever layout ran the convolutions.
        x = layout.to_external(x, fmt)
        x = keras.layers.Flatten()(x)
        if dropout:
            x = keras.layers.Dropout(dropout)(x)
        logits = keras.layers.Dense(
            1, kernel_initializer=init, dtype="float32", name="logit"
        )(x)
        super().__init__(inputs=images, outputs=logits, **kwargs)

        self.image_shape = tuple(int(d) for d in image_shape)
        self.width = int(width)
        self.dropout = float(dropout)
        self.data_format = data_format

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "image_shape": self.image_shape,
            "width": self.width,
            "dropout": self.dropout,
            "data_format": self.data_format,
        }
