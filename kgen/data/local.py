"""Readers for local image files: MNIST IDX, CIFAR-10 binary, image folders."""

import gzip
import os
import struct

import numpy as np

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")

ACCEPTED_FORMATS = (
    "a TFDS dataset name (e.g. 'mnist', 'cifar10'); "
    "a folder of MNIST IDX files (train-images-idx3-ubyte[.gz], ...); "
    "a folder of CIFAR-10 binary batches (data_batch_1.bin ... test_batch.bin, "
    "or its parent holding cifar-10-batches-bin/); "
    "or a folder of images (.png/.jpg/.jpeg/.bmp/.gif; one subfolder per class, "
    "optionally under train/ and test/)"
)

_MNIST_PREFIX = {"train": "train", "test": "t10k"}


def _find(folder, stem):
    for name in (stem, stem + ".gz"):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    return None


def detect_format(path: str) -> str:
    """Returns 'mnist', 'cifar10' or 'folder' for a local path, else raises."""
    if not os.path.isdir(path):
        raise ValueError(f"{path!r} is not a folder. Accepted: {ACCEPTED_FORMATS}.")
    if _find(path, "train-images-idx3-ubyte") or _find(path, "t10k-images-idx3-ubyte"):
        return "mnist"
    if _cifar_folder(path):
        return "cifar10"
    for _, _, files in os.walk(path):
        if any(f.lower().endswith(IMAGE_EXTENSIONS) for f in files):
            return "folder"
    raise ValueError(
        f"found no dataset in {path!r}. Accepted: {ACCEPTED_FORMATS}."
    )


def _cifar_folder(path):
    for folder in (path, os.path.join(path, "cifar-10-batches-bin")):
        if os.path.isfile(os.path.join(folder, "data_batch_1.bin")) or os.path.isfile(
            os.path.join(folder, "test_batch.bin")
        ):
            return folder
    return None


def _read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4:
        raise ValueError(f"{path!r} is too short to be an IDX file.")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(
            f"{path!r} is not an unsigned-byte IDX file (magic {data[:4].hex()}; "
            "expected 0000080N)."
        )
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(
            f"{path!r} is truncated: header says {dims}, found {body.size} values."
        )
    return body.reshape(dims)


def read_mnist(folder: str, split: str) -> tuple:
    """MNIST-format IDX files: uint8 images (N, H, W, 1) and int32 labels."""
    if split not in _MNIST_PREFIX:
        raise ValueError(f"split must be 'train' or 'test' for IDX files; got {split!r}.")
    prefix = _MNIST_PREFIX[split]
    images_path = _find(folder, f"{prefix}-images-idx3-ubyte")
    labels_path = _find(folder, f"{prefix}-labels-idx1-ubyte")
    if images_path is None or labels_path is None:
        raise ValueError(
            f"{folder!r} lacks {prefix}-images-idx3-ubyte[.gz] or "
            f"{prefix}-labels-idx1-ubyte[.gz] for split {split!r}."
        )
    images = _read_idx(images_path)
    labels = _read_idx(labels_path).astype(np.int32)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(
            f"IDX shapes do not match: images {images.shape}, labels {labels.shape}."
        )
    return images[..., None], labels, [str(i) for i in range(10)]


def read_cifar10(path: str, split: str) -> tuple:
    """CIFAR-10 binary batches: uint8 images (N, 32, 32, 3), int32 labels."""
    folder = _cifar_folder(path)
    names = {
        "train": [f"data_batch_{i}.bin" for i in range(1, 6)],
        "test": ["test_batch.bin"],
    }
    if split not in names:
        raise ValueError(f"split must be 'train' or 'test' for CIFAR-10; got {split!r}.")
    record = 1 + 32 * 32 * 3
    images, labels = [], []
    for name in names[split]:
        file = os.path.join(folder, name)
        if not os.path.isfile(file):
            raise ValueError(f"missing CIFAR-10 batch {file!r} for split {split!r}.")
        raw = np.fromfile(file, np.uint8)
        if raw.size % record:
            raise ValueError(
                f"{file!r} is not a CIFAR-10 binary batch: {raw.size} bytes is "
                f"not a multiple of the {record}-byte record."
            )
        raw = raw.reshape(-1, record)
        labels.append(raw[:, 0].astype(np.int32))
        images.append(raw[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    meta = os.path.join(folder, "batches.meta.txt")
    if os.path.isfile(meta):
        with open(meta) as f:
            class_names = [line.strip() for line in f if line.strip()]
    else:
        class_names = [str(i) for i in range(10)]
    return np.concatenate(images), np.concatenate(labels), class_names


def list_image_folder(path: str, split: str) -> tuple:
    """Image files and class labels; a class is a first-level subfolder."""
    root = os.path.join(path, split) if os.path.isdir(os.path.join(path, split)) else path
    files, classes = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if name.lower().endswith(IMAGE_EXTENSIONS):
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, root)
                files.append(full)
                classes.append(rel.split(os.sep)[0] if os.sep in rel else "")
    if not files:
        raise ValueError(f"no image files in {root!r}. Accepted: {ACCEPTED_FORMATS}.")
    class_names = sorted(set(classes))
    index = {c: i for i, c in enumerate(class_names)}
    labels = np.array([index[c] for c in classes], np.int32)
    return files, labels, [c or "all" for c in class_names]
