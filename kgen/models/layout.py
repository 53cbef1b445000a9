"""Image layout helpers shared by the networks.

Every kgen network takes and returns images as (batch, height, width,
channels). Inside, convolutions run in the layout that the active backend
runs fastest on CPU (`benchmarks/bench_dcgan.py --layouts` measures it), so
the choice is invisible to users and `.keras` files stay portable: weights
do not depend on the layout, and the layout is resolved again on load.
"""

import functools
from typing import Optional, Sequence

import keras

_FASTEST = {"tensorflow": "channels_last", "jax": "channels_last", "torch": "channels_first"}


def resolve_data_format(data_format: Optional[str] = None) -> str:
    """Returns `data_format`, or the active backend's fastest one if None.

    Raises ValueError for a layout this machine's backend cannot run
    (`channels_first_runs`), before any network is built.
    """
    if data_format is None:
        return _FASTEST.get(keras.backend.backend(), "channels_last")
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(
            "data_format must be 'channels_last', 'channels_first' or None "
            f"(fastest for the backend); got {data_format!r}."
        )
    if data_format == "channels_first" and not channels_first_runs():
        raise ValueError(
            "data_format='channels_first' does not run here: TensorFlow's CPU convolutions take channels-first "
            "inputs only with its oneDNN kernels, which are off on this machine (TensorFlow turns them on by "
            "default only on CPUs with neural-network instructions such as AVX-512; TF_ENABLE_ONEDNN_OPTS=1 "
            "forces them). Use 'channels_last' or None (the fastest layout for the backend)."
        )
    return data_format


@functools.lru_cache(maxsize=None)
def channels_first_runs(backend: Optional[str] = None) -> bool:
    """Whether `backend` (default: the active one) runs channels-first convolutions on this machine.

    Only TensorFlow on CPU can refuse them (without oneDNN its Conv2D kernel
    is NHWC-only); a 1x1 convolution on a 2x2 image finds out.
    """
    if (backend or keras.backend.backend()) != "tensorflow":
        return True
    try:
        keras.ops.conv(keras.ops.zeros((1, 1, 2, 2)), keras.ops.zeros((1, 1, 1, 1)), data_format="channels_first")
    except Exception:  # TensorFlow's UnimplementedError; its type is not importable here
        return False
    return True


def to_internal(x: keras.KerasTensor, data_format: str) -> keras.KerasTensor:
    """(B, H, W, C) input to the internal layout."""
    if data_format == "channels_first":
        return keras.layers.Permute((3, 1, 2))(x)
    return x


def to_external(x: keras.KerasTensor, data_format: str) -> keras.KerasTensor:
    """Internal layout back to (B, H, W, C)."""
    if data_format == "channels_first":
        return keras.layers.Permute((2, 3, 1))(x)
    return x


def channel_axis(data_format: str) -> int:
    return 1 if data_format == "channels_first" else -1


def halving_plan(image_shape: Sequence[int], min_size: int = 4) -> tuple:
    """Number of stride-2 stages and the smallest feature-map size.

    Halves height and width together while both stay even and at least
    `min_size`: 28x28 -> 2 stages down to 7x7; 32x32 -> 3 stages to 4x4.
    """
    if len(image_shape) != 3:
        raise ValueError(
            f"image_shape must be (height, width, channels); got {image_shape!r}."
        )
    height, width, channels = (int(d) for d in image_shape)
    if min(height, width, channels) < 1:
        raise ValueError(f"image_shape must be positive; got {image_shape!r}.")
    stages = 0
    while (
        height % 2 == 0
        and width % 2 == 0
        and height // 2 >= min_size
        and width // 2 >= min_size
    ):
        height, width, stages = height // 2, width // 2, stages + 1
    if stages == 0:
        raise ValueError(
            f"image_shape {tuple(image_shape)} cannot be halved even once while "
            f"staying at least {min_size}x{min_size}; use even sizes such as "
            "28x28 or 32x32."
        )
    return stages, (height, width)


def dcgan_initializer(seed: Optional[int] = None) -> keras.initializers.Initializer:
    # DCGAN paper: all weights from N(0, 0.02).
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02, seed=seed)
