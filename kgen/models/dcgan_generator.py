"""DCGAN generator."""

import keras

from kgen.models import layout
from kgen.models.batch_normalization import BatchNormalization
from kgen.models.conv2d_transpose import Conv2DTranspose


@keras.saving.register_keras_serializable(package="kgen")
class DCGANGenerator(keras.Model):
    """DCGAN generator: latent vector to image in [-1, 1].

    A dense projection to the smallest feature map, then stride-2 transposed
    convolutions with batch norm and ReLU, ending in tanh, as in the DCGAN
    paper. The number of stages follows from `image_shape` (28x28: 7 -> 14 ->
    28; 32x32: 4 -> 8 -> 16 -> 32), and the widths halve at each stage down
    to `width`.

    Args:
        image_shape: tuple of int. Output (height, width, channels).
            Defaults to `(28, 28, 1)`.
        latent_dim: int. Size of the latent vector. Defaults to `100`.
        width: int. Channels of the last hidden stage. Defaults to `64`.
        data_format: str or None. Layout used inside; None picks the
            fastest for the backend. Inputs and outputs are always
            channels-last. Defaults to `None`.

    Example:
    >>> g = DCGANGenerator(image_shape=(28, 28, 1), latent_dim=64)
    >>> g(keras.random.normal((2, 64))).shape
    (2, 28, 28, 1)

    References:
        Radford et al., "Unsupervised Representation Learning with Deep
        Convolutional Generative Adversarial Networks", ICLR 2016.
    """

    def __init__(
        self,
        image_shape=(28, 28, 1),
        latent_dim=100,
        width=64,
        data_format=None,
        **kwargs,
    ):
        if int(latent_dim) < 1 or int(width) < 1:
            raise ValueError(
                f"latent_dim and width must be positive; got {latent_dim}, {width}."
            )
        fmt = layout.resolve_data_format(data_format)
        stages, (height, w) = layout.halving_plan(image_shape)
        axis = layout.channel_axis(fmt)
        init = layout.dcgan_initializer()
        gamma_init = keras.initializers.RandomNormal(1.0, 0.02)

        z = keras.Input((latent_dim,), name="latent")
        channels = width * 2 ** (stages - 1)
        x = keras.layers.Dense(
            height * w * channels, use_bias=False, kernel_initializer=init,
            name="project",
        )(z)
        x = BatchNormalization(gamma_initializer=gamma_init, name="project_bn")(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.Reshape((height, w, channels))(x)
        x = layout.to_internal(x, fmt)
        for i in range(stages - 1):
            channels //= 2
            x = Conv2DTranspose(
                channels, 4, strides=2, padding="same", use_bias=False,
                kernel_initializer=init, data_format=fmt, name=f"up{i}",
            )(x)
            x = BatchNormalization(
                axis=axis, gamma_initializer=gamma_init, name=f"up{i}_bn"
            )(x)
            x = keras.layers.ReLU()(x)
        x = Conv2DTranspose(
            int(image_shape[-1]), 4, strides=2, padding="same",
            kernel_initializer=init, data_format=fmt, name="to_image",
        )(x)
        x = keras.layers.Activation("tanh", dtype="float32")(x)
        images = layout.to_external(x, fmt)
        super().__init__(inputs=z, outputs=images, **kwargs)

        self.image_shape = tuple(int(d) for d in image_shape)
        self.latent_dim = int(latent_dim)
        self.width = int(width)
        self.data_format = data_format

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "image_shape": self.image_shape,
            "latent_dim": self.latent_dim,
            "width": self.width,
            "data_format": self.data_format,
        }
