"""BatchNormalization with a fused torch path and global-batch statistics under tf.distribute."""

import keras

from kgen.backend.distribution import replicas_in_sync


@keras.saving.register_keras_serializable(package="kgen")
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization`, computed faster under torch.

    Same arguments, weights, outputs and moving statistics as the Keras
    layer. In training mode under the torch backend, channels-first and 2D
    float32 inputs use torch's fused kernel (`kgen/models/torch_ops.py`);
    everything else calls the Keras layer.

    Built under a TensorFlow strategy with several replicas
    (`kgen.backend.distribution.use_devices`), it computes the statistics of
    the global batch (Keras' `synchronized=True`), as on one device. That is a
    property of the run, not of the model: the config never records it, so the
    checkpoint loads on every backend.

    Example:
    >>> bn = BatchNormalization(axis=1)
    >>> bn(keras.ops.ones((4, 3, 2, 2)), training=True).shape
    (4, 3, 2, 2)
    """

    def __init__(self, *args, synchronized=False, **kwargs):
        super().__init__(*args, synchronized=synchronized or replicas_in_sync() > 1, **kwargs)

    def get_config(self):
        return {**super().get_config(), "synchronized": False}

    def call(self, inputs, training=None, mask=None):
        if training and mask is None and keras.backend.backend() == "torch" and not self.synchronized:
            from kgen.models import torch_ops

            outputs = torch_ops.batch_norm_train(self, keras.ops.convert_to_tensor(inputs))
            if outputs is not None:
                return outputs
        return super().call(inputs, training=training, mask=mask)
