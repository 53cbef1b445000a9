"""BatchNormalization with a fused torch path."""

import keras


@keras.saving.register_keras_serializable(package="kgen")
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization`, computed faster under torch.

    Same arguments, weights, outputs and moving statistics as the Keras
    layer. In training mode under the torch backend, channels-first and 2D
    float32 inputs use torch's fused kernel (`kgen/models/torch_ops.py`);
    everything else calls the Keras layer.

    Example:
    >>> bn = BatchNormalization(axis=1)
    >>> bn(keras.ops.ones((4, 3, 2, 2)), training=True).shape
    (4, 3, 2, 2)
    """

    def call(self, inputs, training=None, mask=None):
        if training and mask is None and keras.backend.backend() == "torch" and not self.synchronized:
            from kgen.models import torch_ops

            outputs = torch_ops.batch_norm_train(self, keras.ops.convert_to_tensor(inputs))
            if outputs is not None:
                return outputs
        return super().call(inputs, training=training, mask=mask)
