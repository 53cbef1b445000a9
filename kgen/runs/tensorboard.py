"""The run folder's TensorBoard view: losses, metrics and sample grids as event files in `<run>/tensorboard/`.

Written with `tf.summary` (TensorFlow is part of every training install: tf.data feeds every backend);
read with TensorBoard: `tensorboard --logdir runs/`.
"""

import numpy as np


class TensorBoardLog:
    """Writes scalars and images to `folder` (created on first write); `close()` flushes and closes.

    Args:
        folder: str. The event files' folder.
        enabled: bool. False writes nothing (a training process other than the chief). Defaults to `True`.
    """

    def __init__(self, folder, enabled=True):
        self.folder = folder
        self.enabled = enabled
        self._writer = None

    def _write(self, fn):
        if not self.enabled:
            return
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.folder)
        with self._writer.as_default():
            fn(tf)

    def scalars(self, values: dict, step: int, prefix: str = "") -> None:
        """One scalar per key of `values` (finite floats only) at `step`."""
        finite = {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and np.isfinite(v)}
        self._write(lambda tf: [tf.summary.scalar(prefix + key, value, step=step) for key, value in finite.items()])

    def image(self, name: str, array: np.ndarray, step: int) -> None:
        """An (H, W, C) uint8 image, e.g. the epoch's sample grid."""
        array = np.asarray(array, np.uint8)
        self._write(lambda tf: tf.summary.image(name, array[None], step=step))

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
