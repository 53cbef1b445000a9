"""Convolutional building blocks shared by kgen's networks (functional API).

An "hourglass" is the encoder-decoder of the VAE study: stride-2 stages down
to a bottleneck, then stride-2 stages back up to the input resolution. The
VAE variants are compositions of these same blocks.
"""

from typing import Sequence

import keras

from kgen.models import layout
from kgen.models.batch_normalization import BatchNormalization
from kgen.models.conv2d import Conv2D
from kgen.models.conv2d_transpose import Conv2DTranspose


def down(x: keras.KerasTensor, width: int, data_format: str, name: str) -> keras.KerasTensor:
    """Stride-2 4x4 convolution, batch norm, LeakyReLU(0.2): halves H and W."""
    x = Conv2D(width, 4, strides=2, padding="same", use_bias=False,
               data_format=data_format, name=name)(x)
    x = BatchNormalization(axis=layout.channel_axis(data_format), name=f"{name}_bn")(x)
    return keras.layers.LeakyReLU(0.2)(x)


def up(x: keras.KerasTensor, width: int, data_format: str, name: str) -> keras.KerasTensor:
    """Stride-2 4x4 transposed convolution, batch norm, ReLU: doubles H and W."""
    x = Conv2DTranspose(width, 4, strides=2, padding="same", use_bias=False,
                        data_format=data_format, name=name)(x)
    x = BatchNormalization(axis=layout.channel_axis(data_format), name=f"{name}_bn")(x)
    return keras.layers.ReLU()(x)


def hourglass(x: keras.KerasTensor, widths: Sequence[int], data_format: str, name: str) -> keras.KerasTensor:
    """Down through `widths`, then up through them reversed: same H and W out.

    The output has `widths[0]` channels; there are no skip connections, so
    everything passes through the bottleneck (which would make it a UNet).
    """
    for i, width in enumerate(widths):
        x = down(x, width, data_format, f"{name}_down{i}")
    ups = list(reversed(widths[:-1])) + [widths[0]]
    for i, width in enumerate(ups):
        x = up(x, width, data_format, f"{name}_up{i}")
    return x
