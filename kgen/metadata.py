"""The metadata an exported model carries: one schema, shared by export and inference.

An ONNX file from `kgen.export` holds one metadata entry, key `kgen`, whose
value is JSON: the model kind, image shape, value range, dataset, class
names, and for denoisers the noise schedule with its `alphas_cumprod` table
(so a runtime in any language can sample without re-deriving it). This
module imports numpy only.
"""

import json

METADATA_KEY = "kgen"
KINDS = ("generator", "vae_decoder", "vae_encoder", "denoiser", "sampler")
# Fields each kind must carry, besides `kind` and `image_shape`.
REQUIRED = {
    "generator": ("latent_dim", "input_names", "output_names"),
    "vae_decoder": ("latent_dim", "input_names", "output_names"),
    "vae_encoder": ("input_names", "output_names"),
    "denoiser": ("schedule", "num_classes", "input_names", "output_names"),
    # A whole sampler (kgen.export --sampler): noise, labels, guidance scale in; images out.
    "sampler": ("schedule", "num_classes", "sampler", "num_steps", "eta", "input_names", "output_names"),
}
SCHEDULE_FIELDS = ("num_train_timesteps", "beta_schedule", "prediction_type")
SCHEDULE_OPTIONAL = ("clip_sample",)


def schedule_entry(schedule):
    """The `schedule` metadata of a `NoiseSchedule`: its config and its alpha-bar table."""
    return {**schedule.get_config(), "alphas_cumprod": [float(a) for a in schedule.alphas_cumprod]}


def schedule_config(metadata):
    """The `NoiseSchedule` / scheduler constructor arguments stored in a denoiser's metadata."""
    schedule = metadata["schedule"]
    return {key: schedule[key] for key in SCHEDULE_FIELDS + SCHEDULE_OPTIONAL if key in schedule}


def parse(raw, path):
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
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(d, int) and d > 0 for d in shape)):
        raise ValueError(f"{path}: its kgen metadata has a bad image_shape {shape!r}; expected [height, width, "
                         "channels].")
    return metadata
