"""Conv2DTranspose with a faster torch path."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kgen")
class Conv2DTranspose(keras.layers.Conv2DTranspose):
    """`keras.layers.Conv2DTranspose`, computed faster under torch.

    Same arguments, weights and outputs as the Keras layer. Under the torch
    backend, "same" padding that is symmetric (kernel minus stride even, as
    for the DCGAN's 4x4 kernels at stride 2) goes to torch directly, the bias
    inside torch's kernel, instead of Keras' compute-then-crop path and a
    separate bias add (see `kgen/models/torch_ops.py`); every
    other case, and every other backend, calls the Keras op.

    Example:
    >>> layer = Conv2DTranspose(8, 4, strides=2, padding="same")
    >>> layer(keras.ops.zeros((1, 7, 7, 3))).shape
    (1, 14, 14, 8)
    """

    def call(self, inputs):
        if (
            keras.backend.backend() == "torch"
            and self.padding == "same"
            and self.output_padding is None
            and tuple(self.dilation_rate) == (1, 1)
        ):
            from kgen.models import torch_ops

            outputs = torch_ops.conv_transpose_2d_same(
                ops.convert_to_tensor(inputs),
                ops.convert_to_tensor(self.kernel),
                tuple(self.strides),
                self.data_format,
                ops.convert_to_tensor(self.bias) if self.use_bias else None,
            )
            if outputs is not None:  # the bias was added inside torch's kernel
                return self.activation(outputs) if self.activation is not None else outputs
        outputs = ops.conv_transpose(
            inputs,
            self.kernel,
            strides=list(self.strides),
            padding=self.padding,
            output_padding=self.output_padding,
            dilation_rate=self.dilation_rate,
            data_format=self.data_format,
        )
        if self.use_bias:
            if self.data_format == "channels_last":
                shape = (1, 1, 1, self.filters)
            else:
                shape = (1, self.filters, 1, 1)
            outputs = ops.add(outputs, ops.reshape(self.bias, shape))
        if self.activation is not None:
            return self.activation(outputs)
        return outputs
