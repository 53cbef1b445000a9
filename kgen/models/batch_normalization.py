"""BatchNormalization with a fused torch path and global-batch statistics under tf.distribute."""

import keras

from kgen.backend.distribution import replicas_in_sync
from kgen.backend.processes import current_launch


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
    checkpoint loads on every backend. Under torch on several processes
    (`kgen.backend.processes`) the same statistics come from a differentiable
    all-reduce of the per-process sums (`torch_ops.global_moments`).

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
        if (training and mask is None and keras.backend.backend() == "torch" and not self.synchronized
                and not current_launch().several):
            from kgen.models import torch_ops

            outputs = torch_ops.batch_norm_train(self, keras.ops.convert_to_tensor(inputs))
            if outputs is not None:
                return outputs
        return super().call(inputs, training=training, mask=mask)

    def _moments(self, inputs, mask):
        if mask is None and keras.backend.backend() == "torch" and current_launch().several:
            from kgen.models import torch_ops

            return torch_ops.global_moments(inputs, self._reduction_axes)
        return super()._moments(inputs, mask)
