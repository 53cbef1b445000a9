"""Names for annotations: what a parameter holds, where Python's types cannot say it."""

from typing import Any

# A tensor of the Keras backend in use (tf.Tensor, jax.Array, torch.Tensor), or anything `keras.ops` accepts
# in its place (a numpy array, a Python number).
Tensor = Any
