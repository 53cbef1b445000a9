"""`load_images`: one call from a dataset name or path to a tf.data pipeline."""

import dataclasses
import os
from typing import Optional, Union

import tensorflow as tf

from kgen.data import local

DATA_DIR_ENV = "KGEN_DATA_DIR"


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a pipeline yields.

    Args:
        name: str. Dataset name or path as given.
        source: str. 'tfds', 'mnist' (IDX files), 'cifar10' (binary batches)
            or 'folder'.
        location: str. TFDS name or resolved local path.
        split: str. Split read.
        image_shape: tuple of int. (height, width, channels) of the images.
        class_names: list of str. Label `i` is `class_names[i]`.
        num_examples: int or None. Examples in the split (after `limit`).
    """

    name: str
    source: str
    location: str
    split: str
    image_shape: tuple
    class_names: list
    num_examples: int

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def resolve_source(data: str, data_dir: Optional[str] = None) -> tuple:
    """Returns `(source, location)` for a dataset name or path.

    A path is read from local files. A name is looked up first as a folder
    under `data_dir` (or the `KGEN_DATA_DIR` environment variable), then as a
    TFDS dataset.
    """
    if not isinstance(data, str) or not data:
        raise ValueError(f"data must be a dataset name or a path; got {data!r}.")
    if os.path.exists(data):
        return local.detect_format(data), data
    if os.sep in data or data.startswith("."):
        raise ValueError(f"path {data!r} does not exist. Accepted: {local.ACCEPTED_FORMATS}.")
    root = data_dir or os.environ.get(DATA_DIR_ENV)
    named = "data_dir" if data_dir else DATA_DIR_ENV
    if root:  # local data was asked for: never a silent download instead
        if not os.path.isdir(root):
            raise ValueError(f"{named}={root} is not a folder; point it at the folder holding {data}/, or unset "
                             "it to download with TFDS.")
        path = os.path.join(root, data)
        if not os.path.isdir(path):
            present = sorted(n for n in os.listdir(root) if os.path.isdir(os.path.join(root, n)))
            raise ValueError(f"{named}={root} holds no {data}/ (it holds: {', '.join(present) or 'no folders'}); "
                             "unset it to download with TFDS.")
        return local.detect_format(path), path
    return "tfds", data


def _check_network(name, host="storage.googleapis.com"):
    """Refuses at once, in one line, a download without a network (TFDS would retry for minutes)."""
    import socket

    try:
        socket.create_connection((host, 443), timeout=5).close()
    except OSError as error:
        raise ValueError(f"{name!r} is not on this machine and TFDS cannot download it ({host}: "
                         f"{error.strerror or error}); point --data at local files or set {DATA_DIR_ENV} to a "
                         f"folder holding {name}/.") from None


def _tfds_examples(name, split, data_dir):
    import tensorflow_datasets as tfds

    def load(download):
        return tfds.load(name, split=split, with_info=True, data_dir=data_dir, shuffle_files=False, download=download)

    try:
        try:
            ds, info = load(download=False)  # prepared already: no network needed
        except tfds.core.registered.DatasetNotFoundError:
            raise
        except Exception:
            _check_network(name)
            ds, info = load(download=True)
    except tfds.core.registered.DatasetNotFoundError:
        raise ValueError(
            f"{name!r} is neither an existing path nor a TFDS dataset. "
            f"Accepted: {local.ACCEPTED_FORMATS}."
        ) from None
    except ValueError:
        raise
    except Exception as error:  # download or preparation failed
        raise ValueError(
            f"TFDS could not load {name!r} split {split!r} ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}). Without internet, "
            f"point --data at local files or set {DATA_DIR_ENV} to a folder "
            f"holding {name}/."
        ) from None
    features = info.features
    if "image" not in features:
        raise ValueError(f"TFDS dataset {name!r} has no 'image' feature.")
    shape = tuple(features["image"].shape)
    if "label" in features:
        class_names = list(features["label"].names)
        ds = ds.map(lambda ex: (ex["image"], tf.cast(ex["label"], tf.int32)))
    else:
        class_names = ["all"]
        ds = ds.map(lambda ex: (ex["image"], tf.zeros((), tf.int32)))
    num = info.splits[split].num_examples if split in info.splits else None
    return ds, shape, class_names, num


def _decode_file(path, channels):
    raw = tf.io.read_file(path)
    image = tf.io.decode_image(raw, channels=channels or 0, expand_animations=False)
    return image


def load_images(
    data: str = "mnist",
    split: str = "train",
    batch_size: int = 128,
    image_size: Union[int, tuple, None] = None,
    channels: Optional[int] = None,
    augment: bool = False,
    cache: bool = True,
    shuffle: bool = True,
    seed: int = 0,
    limit: Optional[int] = None,
    drop_remainder: bool = True,
    data_dir: Optional[str] = None,
    with_info: bool = False,
) -> Union[tf.data.Dataset, tuple]:
    """Batched `(images, labels)` with images in [-1, 1], channels last.

    Args:
        data: str. A TFDS name ('mnist', 'cifar10', ...), a folder of MNIST
            IDX files, of CIFAR-10 binary batches, or of images, or a name
            found under `data_dir`. Defaults to `"mnist"`.
        split: str. 'train' or 'test' (any TFDS split for TFDS).
            Defaults to `"train"`.
        batch_size: int. Defaults to `128`.
        image_size: int, (height, width) or None. Resize to this size;
            None keeps the data's size. Defaults to `None`.
        channels: int or None. 1 (grey) or 3 (RGB); None keeps the data's.
            Defaults to `None`.
        augment: bool. Random horizontal flips (for natural images, not
            digits). Defaults to `False`.
        cache: bool. Cache decoded images in memory (local arrays always
            live in memory). Defaults to `True`.
        shuffle: bool. Reshuffle every epoch. Defaults to `True`.
        seed: int. Seed of shuffling and augmentation. Defaults to `0`.
        limit: int or None. Use only the first `limit` examples.
            Defaults to `None`.
        drop_remainder: bool. Drop the last incomplete batch, so every batch
            has a static shape. Defaults to `True`.
        data_dir: str or None. Folder holding local datasets by name, or the
            TFDS data folder; falls back to `$KGEN_DATA_DIR`. Defaults to `None`.
        with_info: bool. Also return a `DatasetInfo`. Defaults to `False`.

    Returns:
        `tf.data.Dataset`, or `(dataset, info)` if `with_info`.

    Example:
    >>> ds = load_images("mnist", batch_size=64)   # or a path
    >>> images, labels = next(iter(ds))            # (64, 28, 28, 1), (64,)
    """
    image_size = _check_arguments(batch_size, channels, image_size, limit)
    source, location = resolve_source(data, data_dir)
    ds, shape, class_names, num = _examples(data, source, location, split, channels, limit, data_dir)
    in_memory = source in ("mnist", "cifar10")
    if not in_memory:  # decoded by tf.data: resized per example, then cached
        if image_size is None and (None in shape[:2] or source == "folder"):
            image_size = tuple(shape[:2])
            if None in image_size:
                raise ValueError(f"{data!r} has images of varying size; pass image_size.")
        if image_size is not None:
            size = tuple(image_size)
            ds = ds.map(lambda x, y: (tf.image.resize(x, size, antialias=True), y),
                        num_parallel_calls=tf.data.AUTOTUNE)
        if cache:
            ds = ds.cache()
    out_hw = tuple(image_size) if image_size is not None else tuple(shape[:2])
    in_channels = int(shape[2]) if len(shape) == 3 and shape[2] else (channels or 3)
    out_channels = channels or in_channels
    if shuffle:
        ds = ds.shuffle(min(num or 10_000, 60_000), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(int(batch_size), drop_remainder=drop_remainder)
    resize = in_memory and image_size is not None and tuple(image_size) != tuple(shape[:2])
    ds = _converted(ds, out_hw, resize, in_channels, out_channels, augment, seed)
    if not with_info:
        return ds
    info = DatasetInfo(name=data, source=source, location=location, split=split,
                       image_shape=(*out_hw, out_channels), class_names=list(class_names), num_examples=num)
    return ds, info


def _check_arguments(batch_size, channels, image_size, limit):
    """Refuses bad `load_images` arguments before any data is read; returns `image_size` as a pair or None."""
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size}.")
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1, 3 or None; got {channels!r}.")
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    if image_size is not None and (len(image_size) != 2 or min(image_size) < 1):
        raise ValueError(f"image_size must be an int or (height, width); got {image_size!r}.")
    if limit is not None and int(limit) < 1:
        raise ValueError(f"limit must be a positive integer or None; got {limit!r}.")
    return image_size


def _examples(data, source, location, split, channels, limit, data_dir):
    """`(dataset of (image, label), image shape, class names, count)` of one split, before batching.

    Local MNIST and CIFAR-10 files are arrays in memory (uint8); image
    folders and TFDS are decoded by tf.data.
    """
    if source in ("mnist", "cifar10"):
        reader = local.read_mnist if source == "mnist" else local.read_cifar10
        images, labels, class_names = reader(location, split)
        if limit:
            images, labels = images[:limit], labels[:limit]
        return tf.data.Dataset.from_tensor_slices((images, labels)), images.shape[1:], class_names, len(images)
    if source == "folder":
        files, labels, class_names = local.list_image_folder(location, split)
        if limit:
            files, labels = files[:limit], labels[:limit]
        shape = tuple(_decode_file(files[0], channels).shape)
        ds = tf.data.Dataset.from_tensor_slices((files, labels))
        ds = ds.map(lambda f, y: (_decode_file(f, channels), y), num_parallel_calls=tf.data.AUTOTUNE)
        return ds, shape, class_names, len(files)
    ds, shape, class_names, num = _tfds_examples(data, split, data_dir)
    if limit:
        ds, num = ds.take(limit), min(num or limit, limit)
    return ds, shape, class_names, num


def _converted(batches, out_hw, resize, in_channels, out_channels, augment, seed):
    """Batches as float32 in [-1, 1] of size `out_hw` (resized if `resize`), channel-converted, flipped if `augment`.

    Per batch rather than per example: cheaper. Flips draw from stateless
    random ops seeded from `seed`, so the same seed gives the same stream.
    """

    def convert(x, y, flip_seed):
        x = tf.cast(x, tf.float32)
        if resize:
            x = tf.image.resize(x, out_hw, antialias=True)
        if out_channels == 3 and in_channels == 1:
            x = tf.tile(x, [1, 1, 1, 3])
        elif out_channels == 1 and in_channels == 3:
            x = tf.image.rgb_to_grayscale(x)
        x = x / 127.5 - 1.0
        if augment:
            coin = tf.random.stateless_uniform([tf.shape(x)[0], 1, 1, 1], seed=flip_seed)
            x = tf.where(coin < 0.5, tf.reverse(x, axis=[2]), x)
        x = tf.clip_by_value(x, -1.0, 1.0)
        x = tf.ensure_shape(x, (None, *out_hw, out_channels))
        return x, tf.cast(y, tf.int32)

    seeds = tf.data.Dataset.random(seed=seed).batch(2, drop_remainder=True)
    ds = tf.data.Dataset.zip(batches, seeds).map(lambda batch, s: convert(batch[0], batch[1], s),
                                                 num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
