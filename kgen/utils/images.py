"""Image grids and PNG output with numpy and Pillow only (usable by kgen.infer)."""

from typing import Optional

import numpy as np

from kgen.utils.atomic import atomic_path


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Maps images in [-1, 1] to uint8 in [0, 255]."""
    images = np.asarray(images, dtype=np.float32)
    return np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def make_grid(images: np.ndarray, ncols: Optional[int] = None, padding: int = 2, pad_value: int = 255) -> np.ndarray:
    """Tiles (N, H, W, C) uint8 images into one (rows*H, cols*W, C) array."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must be (N, H, W, 1 or 3); got shape {images.shape}.")
    n, h, w, c = images.shape
    ncols = ncols or int(np.ceil(np.sqrt(n)))
    nrows = int(np.ceil(n / ncols))
    grid = np.full(
        (nrows * (h + padding) + padding, ncols * (w + padding) + padding, c),
        pad_value,
        dtype=images.dtype,
    )
    for i in range(n):
        r, col = divmod(i, ncols)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        grid[y : y + h, x : x + w] = images[i]
    return grid


def save_image(array: np.ndarray, path: str, scale: int = 1) -> None:
    """Writes an (H, W, 1|3) uint8 array as PNG, atomically, upscaled by `scale`."""
    from PIL import Image

    array = np.asarray(array)
    image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def save_grid(images: np.ndarray, path: str, ncols: Optional[int] = None, scale: int = 2) -> None:
    """Saves images in [-1, 1] as one PNG grid."""
    save_image(make_grid(to_uint8(images), ncols=ncols), path, scale=scale)
