"""Conv2D with a faster torch path."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kgen")
class Conv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D`, computed faster under torch.

    Same arguments, weights and outputs as the Keras layer (and the same
    class name, so `.keras` files written with either load into both). Under
    the torch backend, channels-first inputs go to torch's convolution with
    the bias inside it (Keras adds the bias as a separate op, one more pass
    over the output forward and a reduction backward) and with "same"
    padding as torch's own padding where it is symmetric (see
    `kgen/models/torch_ops.py`); every other case, and every other backend,
    calls the Keras layer.

    Example:
    >>> layer = Conv2D(8, 3, padding="same", data_format="channels_first")
    >>> layer(keras.ops.zeros((1, 3, 7, 7))).shape
    (1, 8, 7, 7)
    """

    def call(self, inputs):
        if (
            keras.backend.backend() == "torch"
            and self.data_format == "channels_first"
            and self.groups == 1
            and tuple(self.dilation_rate) == (1, 1)
        ):
            from kgen.models import torch_ops

            outputs = torch_ops.conv_2d(
                ops.convert_to_tensor(inputs),
                ops.convert_to_tensor(self.kernel),
                ops.convert_to_tensor(self.bias) if self.use_bias else None,
                tuple(self.strides),
                self.padding,
            )
            if outputs is not None:
                return self.activation(outputs) if self.activation is not None else outputs
        return super().call(inputs)
