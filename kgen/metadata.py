"""The metadata an exported model carries: one schema, shared by export and inference.

An ONNX file from `kgen.export` holds one metadata entry, key `kgen`, whose
value is JSON: the model kind, image shape, value range, dataset, class
names, and for denoisers the noise schedule with its `alphas_cumprod` table
(so a runtime in any language can sample without re-deriving it). This
module imports numpy only.
"""

import json
from typing import Any, Union

METADATA_KEY = "kgen"
KINDS = ("generator", "vae_decoder", "vae_encoder", "denoiser", "sampler", "discriminator")
# Fields each kind must carry, besides `kind` and `image_shape`.
REQUIRED = {
    "generator": ("latent_dim", "input_names", "output_names"),
    "vae_decoder": ("latent_dim", "input_names", "output_names"),
    "vae_encoder": ("input_names", "output_names"),
    # A GAN's discriminator (images in, real/fake logits out): saved so that a later run continues the GAN.
    "discriminator": ("input_names", "output_names"),
    "denoiser": ("schedule", "num_classes", "input_names", "output_names"),
    # A whole sampler (kgen.export --sampler): noise, labels, guidance scale in; images out.
    "sampler": ("schedule", "num_classes", "sampler", "num_steps", "eta", "input_names", "output_names"),
}
SCHEDULE_FIELDS = ("num_train_timesteps", "beta_schedule", "prediction_type")
SCHEDULE_OPTIONAL = ("clip_sample", "timestep_spacing")


def schedule_entry(schedule: Any) -> dict:
    """The `schedule` metadata of a `NoiseSchedule`: its config and its alpha-bar table."""
    return {**schedule.get_config(), "alphas_cumprod": [float(a) for a in schedule.alphas_cumprod]}


def schedule_config(metadata: dict) -> dict:
    """The `NoiseSchedule` / scheduler constructor arguments stored in a denoiser's metadata."""
    schedule = metadata["schedule"]
    return {key: schedule[key] for key in SCHEDULE_FIELDS + SCHEDULE_OPTIONAL if key in schedule}


def default_sampling(metadata: dict) -> tuple:
    """`(sampler, num_steps)` a denoiser samples with when none are given: its own (a student's), else DDIM-50."""
    own = metadata.get("sampling") or {}
    return own.get("sampler", "ddim"), int(own.get("num_steps", 50))


def parse(raw: Union[str, bytes], path: str) -> dict:
    """Checks the JSON text of a `kgen` metadata entry; returns it as a dict.

    Raises `ValueError` naming the file and the missing or bad field.
    """
    try:
        metadata = json.loads(raw)
    except ValueError:
        raise ValueError(f"{path}: its kgen metadata is not JSON; re-export it with `python -m kgen.export`.") from None
    if not isinstance(metadata, dict) or metadata.get("kind") not in KINDS:
        kind = metadata.get("kind") if isinstance(metadata, dict) else None
        raise ValueError(f"{path}: unknown kgen model kind {kind!r}; accepted: {', '.join(KINDS)}.")
    kind = metadata["kind"]
    missing = [f for f in ("image_shape", *REQUIRED[kind]) if f not in metadata]
    if kind in ("denoiser", "sampler") and "schedule" in metadata:
        missing += [f"schedule.{f}" for f in SCHEDULE_FIELDS if f not in (metadata["schedule"] or {})]
    if missing:
        raise ValueError(f"{path}: its kgen metadata ({kind}) lacks {', '.join(missing)}; "
                         "re-export it with `python -m kgen.export`.")
    shape = metadata["image_shape"]
    if not (isinstance(shape, list) and len(shape) == 3 and all(_is_int(d) for d in shape)
            and 1 <= shape[0] <= MAX_SIDE and 1 <= shape[1] <= MAX_SIDE and shape[2] in (1, 3)):
        raise ValueError(f"{path}: its kgen metadata has a bad image_shape {shape!r}; expected [height, width, "
                         f"channels] with sides 1..{MAX_SIDE} and 1 or 3 channels.")
    for field, low, high in (("latent_dim", 1, 1_000_000), ("num_classes", 0, 1_000_000),
                             ("num_steps", 1, 1_000_000)):
        if field in metadata and not (_is_int(metadata[field]) and low <= metadata[field] <= high):
            raise ValueError(f"{path}: its kgen metadata has a bad {field} {metadata[field]!r}; expected an integer "
                             f"in {low}..{high}.")
    if "schedule" in metadata:
        _check_schedule(metadata["schedule"], path)
    return metadata


MAX_SIDE = 4096  # the largest image side kgen models describe


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_schedule(schedule, path):
    import numpy as np

    steps = schedule["num_train_timesteps"]
    if not (_is_int(steps) and 1 <= steps <= 100_000):
        raise ValueError(f"{path}: its kgen metadata has a bad schedule.num_train_timesteps {steps!r}; expected an "
                         "integer in 1..100000.")
    table = schedule.get("alphas_cumprod")
    if table is not None:
        try:
            values = np.asarray(table, np.float64)
        except (TypeError, ValueError):
            values = np.array([np.nan])
        if (values.shape != (steps,) or not np.isfinite(values).all() or values.min() <= 0 or values.max() > 1
                or (np.diff(values) >= 0).any()):
            raise ValueError(f"{path}: its kgen metadata has a bad schedule.alphas_cumprod; expected {steps} finite "
                             "values in (0, 1], strictly decreasing.")
