"""Input pipelines: the only part of kgen that uses TensorFlow for data.

`load_images` returns a `tf.data.Dataset` of `(images, labels)` batches with
images in [-1, 1], shape (batch, height, width, channels), which `fit()`
consumes on every Keras backend.
"""

from kgen.data.pipeline import DATA_DIR_ENV, DatasetInfo, load_images, resolve_source
from kgen.data.processes import shard_for_processes

__all__ = ["DATA_DIR_ENV", "DatasetInfo", "load_images", "resolve_source", "shard_for_processes"]
