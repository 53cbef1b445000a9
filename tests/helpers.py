"""Shared test helpers: tiny datasets written to disk, and numeric comparisons."""

import gzip
import os
import struct

import keras
import numpy as np
import pytest

# Backend-independent tests (numpy, onnxruntime, Pillow, subprocess CLIs, study plumbing) run once,
# under tensorflow; the backend-dependent ones (training steps, layers, checkpoints) run under each.
once = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                          reason="backend-independent; runs once, under tensorflow")


def is_tensorflow_log(line):
    """Whether a stderr line is TensorFlow's C++ start-up logging (absl), which TF_CPP_MIN_LOG_LEVEL does not stop."""
    return line.startswith(("WARNING: All log messages before absl", "I0000 ", "W0000 ", "E0000 ")) or (
        line.startswith("To enable the following instructions"))


def to_numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def weights_of(model):
    return [to_numpy(v).copy() for v in model.weights]


def write_idx(path, array, compress):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    opener = gzip.open if compress else open
    with opener(path + (".gz" if compress else ""), "wb") as f:
        f.write(data)


def make_mnist_dir(root, n_train=40, n_test=20, compress=True, seed=0):
    """IDX files like the MNIST distribution, with a known pattern."""
    rng = np.random.default_rng(seed)
    os.makedirs(root, exist_ok=True)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(os.path.join(root, f"{prefix}-images-idx3-ubyte"), images, compress)
        write_idx(os.path.join(root, f"{prefix}-labels-idx1-ubyte"), labels, compress)
        arrays[prefix] = (images, labels)
    return arrays


def make_cifar_dir(root, per_batch=8, seed=0):
    """CIFAR-10 binary batches: 1 label byte + 3072 planar RGB bytes per record."""
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, "cifar-10-batches-bin")
    os.makedirs(folder, exist_ok=True)
    arrays = {}
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for name in names:
        labels = rng.integers(0, 10, per_batch, dtype=np.uint8)
        planar = rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8)
        records = np.concatenate([labels[:, None], planar.reshape(per_batch, -1)], axis=1)
        records.tofile(os.path.join(folder, name))
        arrays[name] = (planar.transpose(0, 2, 3, 1), labels)
    with open(os.path.join(folder, "batches.meta.txt"), "w") as f:
        names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
        f.write("\n".join(names) + "\n\n")
    return arrays


def make_image_folder(root, classes=("cats", "dogs"), per_class=3, size=(20, 24), seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c in classes:
        os.makedirs(os.path.join(root, c), exist_ok=True)
        for i in range(per_class):
            array = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            Image.fromarray(array).save(os.path.join(root, c, f"{i}.png"))


def save_tiny_classifier(path):
    """A barely trained MNIST-shaped ImageClassifier saved to `path`: the evaluate tests' dataset classifier."""
    from kgen.models import ImageClassifier

    clf = ImageClassifier((28, 28, 1), 10, widths=(4, 8), feature_dim=16, translate=0.0)
    clf.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    clf.fit(np.random.uniform(-1, 1, (32, 28, 28, 1)).astype("float32"), np.arange(32) % 10, verbose=0)
    clf.save(str(path))
    return path


class AtStep(keras.callbacks.Callback):
    """Calls `fn(model)` once, when training step `step` (1-based) begins, or ends with `at_end`: a fault at a
    chosen moment (weights poisoned, a statistic made infinite)."""

    def __init__(self, step, fn, at_end=False):
        super().__init__()
        self.step, self.fn, self.at_end, self.seen = step, fn, at_end, 0

    def _tick(self, at_end):
        if at_end == self.at_end:
            self.seen += 1
            if self.seen == self.step:
                self.fn(self.model)

    def on_train_batch_begin(self, batch, logs=None):
        self._tick(False)

    def on_train_batch_end(self, batch, logs=None):
        self._tick(True)
