"""Reading images of any size and mode into a model's shape, writing PNGs (Pillow + numpy)."""

import os

import numpy as np

from kgen.utils.images import make_grid, save_image, to_uint8

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def expand_inputs(paths):
    """Files as given, folders expanded to the images inside (sorted)."""
    files = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(os.path.join(path, f) for f in os.listdir(path) if f.lower().endswith(IMAGE_SUFFIXES))
            if not found:
                raise ValueError(f"folder {path!r} holds no images ({', '.join(IMAGE_SUFFIXES)}).")
            files += found
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise ValueError(f"{path!r} is neither an image file nor a folder.")
    if not files:
        raise ValueError("no input images given.")
    return files


def read_image(path, image_shape):
    """An image file as float32 (H, W, C) in [-1, 1], converted to the model's shape.

    Grey or colour as the model needs; the largest centred crop with the
    model's aspect ratio, resized with Lanczos filtering.
    """
    from PIL import Image, UnidentifiedImageError

    height, width, channels = image_shape
    try:
        with Image.open(path) as image:
            image.load()
            image = image.convert("L" if channels == 1 else "RGB")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise ValueError(f"cannot read {path!r} as an image ({error}); accepted: files Pillow opens "
                         "(PNG, JPEG, BMP, GIF, TIFF, WebP, ...).") from None
    scale = min(image.width / width, image.height / height)
    crop_w, crop_h = round(width * scale), round(height * scale)
    left, top = (image.width - crop_w) // 2, (image.height - crop_h) // 2
    image = image.resize((width, height), Image.LANCZOS, box=(left, top, left + crop_w, top + crop_h))
    array = np.asarray(image, np.float32).reshape(height, width, channels)
    return array / 127.5 - 1.0


def write_png(images, path, scale=1):
    """One image (H, W, C) or a row of images (N, H, W, C) in [-1, 1] as a PNG."""
    images = np.asarray(images)
    array = to_uint8(images) if images.ndim == 3 else make_grid(to_uint8(images), ncols=len(images))
    save_image(array, path, scale=scale)


def write_grid(images, path, ncols=None, scale=2):
    save_image(make_grid(to_uint8(images), ncols=ncols), path, scale=scale)
