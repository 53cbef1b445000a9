"""GroupNormalization with a fused torch path."""

import keras


@keras.saving.register_keras_serializable(package="kgen")
class GroupNormalization(keras.layers.GroupNormalization):
    """`keras.layers.GroupNormalization`, computed faster under torch.

    Same arguments, weights and outputs as the Keras layer (the class name is
    the same too, so `.keras` files written with either load into both).
    Under the torch backend, channels-first inputs use torch's fused
    `group_norm` kernel (`kgen/models/torch_ops.py`), whose backward is one
    pass where Keras' composed ops take several; everything else calls the
    Keras layer. As in Keras, the statistics are computed in float32 under a
    mixed policy.

    Example:
    >>> gn = GroupNormalization(4, axis=1)
    >>> gn(keras.ops.ones((2, 8, 3, 3))).shape
    (2, 8, 3, 3)
    """

    def call(self, inputs):
        if keras.backend.backend() == "torch":
            from kgen.models import torch_ops

            outputs = torch_ops.group_norm(self, keras.ops.convert_to_tensor(inputs))
            if outputs is not None:
                return outputs
        return super().call(inputs)
