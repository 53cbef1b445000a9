"""What of a kgen checkpoint is exported, and the metadata that travels with it."""

import json
import os

import keras

DEFAULT_PART = {"DCGAN": "generator", "VAE": "vae_decoder", "DDPM": "denoiser"}
PARTS = {"DCGAN": ("generator",), "VAE": ("vae_decoder", "vae_encoder"), "DDPM": ("denoiser",)}


def run_config(checkpoint):
    """The recipe's config.json of the run a checkpoint belongs to (`<run>/checkpoints/x.keras`), or {}."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(checkpoint))), "config.json")
    if os.path.isfile(path):
        with open(path) as f:
            return json.load(f)
    return {}


def inference_network(model, part=None, dataset=None, class_names=None):
    """`(network, metadata)`: a functional model with named inputs, and its description.

    Args:
        model: a kgen trainer (`DCGAN`, `VAE` or `DDPM`).
        part: str or None. `generator`, `vae_decoder`, `vae_encoder` or
            `denoiser`; None is the model's main part.
        dataset: str or None. Training data name, for the metadata.
        class_names: list of str or None.
    """
    kind = type(model).__name__
    if kind not in PARTS:
        raise ValueError(f"cannot export a {kind}; accepted: a DCGAN, VAE or DDPM checkpoint.")
    part = part or DEFAULT_PART[kind]
    if part not in PARTS[kind]:
        raise ValueError(f"a {kind} has no part {part!r}; accepted: {', '.join(PARTS[kind])}.")
    metadata = {"kind": part, "value_range": [-1.0, 1.0], "dataset": dataset,
                "class_names": list(class_names or []), "trainer": kind, "format_version": 1}
    if part == "generator":
        latents = keras.Input((model.latent_dim,), name="latents")
        network = keras.Model(latents, model.generator(latents, training=False), name="generator")
        metadata.update(latent_dim=int(model.latent_dim), input_names=["latents"], output_names=["images"],
                        image_shape=list(model.generator.outputs[0].shape[1:]))
    elif part == "vae_decoder":
        latents = keras.Input((model.latent_dim,), name="latents")
        network = keras.Model(latents, model.decoded_mean(model.decoder(latents, training=False)),
                              name="vae_decoder")
        metadata.update(latent_dim=int(model.latent_dim), input_names=["latents"], output_names=["images"],
                        image_shape=list(model.encoder.inputs[0].shape[1:]), likelihood=model.likelihood)
    elif part == "vae_encoder":
        images = keras.Input(tuple(model.encoder.inputs[0].shape[1:]), name="images")
        network = keras.Model(images, list(model.encoder(images, training=False)), name="vae_encoder")
        metadata.update(latent_dim=int(model.latent_dim), input_names=["images"],
                        output_names=["mean", "log_var"], image_shape=list(images.shape[1:]))
    else:
        network = model.ema_denoiser
        schedule = model.schedule
        metadata.update(
            input_names=["images", "timesteps", "labels"], output_names=["model_output"],
            image_shape=list(model.image_shape), num_classes=model.num_classes, null_label=model.null_label,
            weights="ema", schedule={**schedule.get_config(),
                                     "alphas_cumprod": [float(a) for a in schedule.alphas_cumprod]},
        )
    metadata["image_shape"] = [int(d) for d in metadata["image_shape"]]
    return network, metadata


def describe_checkpoint(path, part=None, dataset=None, class_names=None):
    """Loads a `.keras` checkpoint: `inference_network` with names from its run's config."""
    import kgen.trainers  # noqa: F401  (registers kgen's classes)

    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises several types for foreign or damaged files
        raise ValueError(f"cannot load {path} as a kgen checkpoint ({type(error).__name__}: {error}).") from None
    config = run_config(path)
    info = config.get("dataset") if isinstance(config.get("dataset"), dict) else {}
    dataset = dataset or info.get("name") or config.get("dataset") or config.get("data")
    return inference_network(model, part, dataset, class_names or config.get("class_names") or info.get("class_names"))
