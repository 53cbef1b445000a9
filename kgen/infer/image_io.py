"""Reading images of any size and mode into a model's shape, writing PNGs (Pillow + numpy)."""

import argparse
import contextlib
import os
from typing import Iterator, Optional, Sequence

import numpy as np

from kgen.utils.images import make_grid, save_image, to_uint8

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def expand_inputs(paths: Sequence[str]) -> list:
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


FITS = ("auto", "crop", "pad")
MIN_CROP_SHARE = 0.5  # `fit="auto"` crops when the crop keeps at least this share of the image, else pads


def read_image(path: str, image_shape: Sequence[int], background: str = "white", notes: Optional[list] = None,
               fit: str = "auto") -> np.ndarray:
    """An image file as float32 (H, W, C) in [-1, 1], converted to the model's shape.

    Grey or colour as the model needs; resized with Lanczos filtering to the
    model's size by `fit`: `"crop"` takes the largest centred crop with the
    model's aspect ratio, `"pad"` fits the whole image and fills the rest
    with `background`, `"auto"` crops unless the crop would keep less than
    half of the image (a strip of 1x4000 pixels is padded, not cut to one
    pixel; a note says so). EXIF orientation applied, CMYK and palette
    images converted. 16-bit images keep their tones (scaled to 8 bits);
    transparent pixels are composited onto `background` ("white" or
    "black"). Lines about what was done are appended to `notes` (a list)
    when given.
    """
    if fit not in FITS:
        raise ValueError(f"fit must be one of {', '.join(FITS)}; got {fit!r}.")
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
    crop_w, crop_h = max(1, round(width * scale)), max(1, round(height * scale))
    share = crop_w * crop_h / (image.width * image.height)
    if fit == "pad" or (fit == "auto" and share < MIN_CROP_SHARE):
        if fit == "auto" and notes is not None:
            notes.append(f"{path}: {image.width}x{image.height} padded onto {background} (a {width}x{height} crop "
                         f"would keep {share:.1%} of it)")
        image = _padded(image, width, height, background)
    else:
        left, top = (image.width - crop_w) // 2, (image.height - crop_h) // 2
        image = image.resize((width, height), Image.LANCZOS, box=(left, top, left + crop_w, top + crop_h))
    array = np.asarray(image, np.float32).reshape(height, width, channels)
    return array / 127.5 - 1.0


def _padded(image, width, height, background):
    """`image` scaled to fit inside width x height (aspect kept), centred on a `background` canvas."""
    from PIL import Image

    scale = min(width / image.width, height / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    canvas = Image.new(image.mode, (width, height), 255 if background == "white" else 0)
    if image.mode == "RGB":
        canvas = Image.new("RGB", (width, height), (255,) * 3 if background == "white" else (0,) * 3)
    canvas.paste(image.resize(size, Image.LANCZOS), ((width - size[0]) // 2, (height - size[1]) // 2))
    return canvas


def require_finite(**values: Optional[float]) -> None:
    """ValueError naming the first option whose value is nan or infinite."""
    for name, value in values.items():
        if value is not None and not np.isfinite(value):
            raise ValueError(f"--{name.replace('_', '-')} must be a finite number; got {value}.")


def add_output_dir_argument(parser: argparse.ArgumentParser, default: str) -> None:
    """`--output-dir` (default: `default`, or `default_2`, `_3`, ... when that is taken) and `--overwrite`."""
    parser.add_argument("--output-dir", help=f"folder for the outputs (default: {default}/, or {default}_2/, ... "
                                             "if that holds files); an existing non-empty folder needs --overwrite")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a non-empty --output-dir (files of the same name are replaced)")
    parser.set_defaults(default_output_dir=default)


def add_fit_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fit", default="auto", choices=FITS,
                        help="how an image of another aspect ratio meets the model's: crop (the largest centred "
                             "crop), pad (the whole image on --background), auto (crop unless it keeps under half)")


def prepare_output_dir(path: Optional[str], overwrite: bool = False, default: Optional[str] = None) -> str:
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


class OutputWriteError(RuntimeError):
    """The outputs could not be written (disk full, permissions); none of them were left behind."""

    exit_status = 1


@contextlib.contextmanager
def staged_output(folder: str, created_empty: bool = False) -> Iterator[str]:
    """Yields a staging folder inside `folder`; its files move into `folder` only when the block succeeds.

    A failure (an exception, a full disk) removes the staging folder, and
    `folder` too if `created_empty` (it was made for this run), so no partial
    set of outputs is left; an `OSError` becomes one `OutputWriteError` line.
    """
    import shutil

    staging = os.path.join(folder, f".kgen-staging-{os.getpid()}")
    try:
        os.makedirs(staging)
        yield staging
        for name in sorted(os.listdir(staging)):
            os.replace(os.path.join(staging, name), os.path.join(folder, name))
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if created_empty and os.path.isdir(folder) and not os.listdir(folder):
            os.rmdir(folder)
        if isinstance(error, OSError):
            raise OutputWriteError(f"cannot write the outputs to {folder} ({error.strerror or error}); nothing was "
                                   "left there.") from None
        raise
    shutil.rmtree(staging, ignore_errors=True)


def output_stems(files: Sequence[str]) -> list:
    """One output name per input: the file's stem, plus its extension where two inputs share a stem."""
    stems = [os.path.splitext(os.path.basename(f))[0] for f in files]
    names = [f"{stem}_{os.path.splitext(f)[1].lstrip('.').lower()}" if stems.count(stem) > 1 else stem
             for stem, f in zip(stems, files)]
    if len(set(names)) != len(names):  # same name in two folders: number them
        names = [f"{i:03d}_{name}" for i, name in enumerate(names)]
    return names


def write_png(images: np.ndarray, path: str, scale: int = 1) -> None:
    """One image (H, W, C) or a row of images (N, H, W, C) in [-1, 1] as a PNG."""
    images = np.asarray(images)
    array = to_uint8(images) if images.ndim == 3 else make_grid(to_uint8(images), ncols=len(images))
    save_image(array, path, scale=scale)

