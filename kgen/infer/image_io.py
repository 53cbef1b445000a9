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


def _to_8_bit(image):
    """16-bit and 32-bit grey modes scaled to 8 bits (Pillow's convert("L") clips them to white)."""
    from PIL import Image

    array = np.asarray(image)
    if image.mode == "F":
        low, high = float(np.nanmin(array)), float(np.nanmax(array))
        scaled = (array - low) / (high - low or 1.0) * 255.0  # float images have no fixed range
    else:  # I;16* and I hold up to 16 significant bits in practice
        scaled = array.astype(np.float64) / (65535.0 if array.max() > 255 or image.mode.startswith("I;16") else 255.0)
        scaled = scaled * (255.0 if scaled.max() <= 1.0 else 1.0)
    return Image.fromarray(np.clip(np.round(scaled), 0, 255).astype(np.uint8), "L")


def _flatten(image, background):
    """An image with transparency composited onto a white or black background."""
    from PIL import Image

    rgba = image.convert("RGBA")
    base = Image.new("RGBA", rgba.size, (255, 255, 255, 255) if background == "white" else (0, 0, 0, 255))
    return Image.alpha_composite(base, rgba).convert("RGB")


def read_image(path, image_shape, background="white", notes=None):
    """An image file as float32 (H, W, C) in [-1, 1], converted to the model's shape.

    Grey or colour as the model needs; the largest centred crop with the
    model's aspect ratio, resized with Lanczos filtering; EXIF orientation
    applied, CMYK and palette images converted. 16-bit images keep
    their tones (scaled to 8 bits); transparent pixels are composited onto
    `background` ("white" or "black"), and a line saying so is appended to
    `notes` (a list) when given.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    height, width, channels = image_shape
    try:
        with Image.open(path) as image:
            image.load()
            image = ImageOps.exif_transpose(image)  # camera photos: rotate as the EXIF orientation says
            if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
                image = _to_8_bit(image)
            if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
                alpha = np.asarray(image.convert("RGBA"))[..., 3]
                if alpha.min() < 255:
                    if notes is not None:
                        notes.append(f"{path}: transparent pixels composited onto {background}")
                    image = _flatten(image, background)
            image = image.convert("L" if channels == 1 else "RGB")
    except Image.DecompressionBombError as error:
        raise ValueError(f"{path!r} is too large to decode safely ({error}); accepted: images up to "
                         f"{Image.MAX_IMAGE_PIXELS:,} pixels.") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise ValueError(f"cannot read {path!r} as an image ({error}); accepted: files Pillow opens "
                         "(PNG, JPEG, BMP, GIF, TIFF, WebP, ...).") from None
    scale = min(image.width / width, image.height / height)
    crop_w, crop_h = round(width * scale), round(height * scale)
    left, top = (image.width - crop_w) // 2, (image.height - crop_h) // 2
    image = image.resize((width, height), Image.LANCZOS, box=(left, top, left + crop_w, top + crop_h))
    array = np.asarray(image, np.float32).reshape(height, width, channels)
    return array / 127.5 - 1.0


def require_finite(**values):
    """ValueError naming the first option whose value is nan or infinite."""
    for name, value in values.items():
        if value is not None and not np.isfinite(value):
            raise ValueError(f"--{name.replace('_', '-')} must be a finite number; got {value}.")


def add_output_dir_argument(parser, default):
    """`--output-dir` (default: `default`, or `default_2`, `_3`, ... when that is taken) and `--overwrite`."""
    parser.add_argument("--output-dir", help=f"folder for the outputs (default: {default}/, or {default}_2/, ... "
                                             "if that holds files); an existing non-empty folder needs --overwrite")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a non-empty --output-dir (files of the same name are replaced)")
    parser.set_defaults(default_output_dir=default)


def prepare_output_dir(path, overwrite=False, default=None):
    """The output folder, created and checked writable before any compute; ValueError if not usable.

    `path` None picks `default`, or the first of `default_2`, `default_3`, ...
    that is absent or empty, so a second run never mixes its files with the
    first's. A given `path` that already holds files is refused unless
    `overwrite`.
    """
    if path is None:
        path, n = default, 1
        while os.path.isdir(path) and os.listdir(path):
            n += 1
            path = f"{default}_{n}"
    elif os.path.isdir(path) and os.listdir(path) and not overwrite:
        raise ValueError(f"--output-dir {path!r} already holds files; give a new folder, or --overwrite to write "
                         "into it.")
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"--output-dir {path!r} is an existing file; give a folder.")
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".kgen-write-test")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as error:
        raise ValueError(f"cannot write to --output-dir {path!r} ({error.strerror}).") from None
    return path


def output_stems(files):
    """One output name per input: the file's stem, plus its extension where two inputs share a stem."""
    stems = [os.path.splitext(os.path.basename(f))[0] for f in files]
    names = [f"{stem}_{os.path.splitext(f)[1].lstrip('.').lower()}" if stems.count(stem) > 1 else stem
             for stem, f in zip(stems, files)]
    if len(set(names)) != len(names):  # same name in two folders: number them
        names = [f"{i:03d}_{name}" for i, name in enumerate(names)]
    return names


def write_png(images, path, scale=1):
    """One image (H, W, C) or a row of images (N, H, W, C) in [-1, 1] as a PNG."""
    images = np.asarray(images)
    array = to_uint8(images) if images.ndim == 3 else make_grid(to_uint8(images), ncols=len(images))
    save_image(array, path, scale=scale)

