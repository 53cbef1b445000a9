"""`kgen.train vae`: a convolutional VAE (vanilla or an hourglass variant) on the ELBO.

    kgen.train vae                                   # MNIST, vanilla
    kgen.train vae --variant hourglass_both --beta 4
    kgen.train vae --data cifar10 --widths 32,64,128   # Gaussian likelihood
    kgen.train vae --iwae-samples 5                   # the IWAE bound, 5 latents per image

Grey images use a Bernoulli likelihood on binarised pixels, colour images a
Gaussian one. Rerunning with the same --output-dir resumes.
"""

import dataclasses
from typing import Optional, Sequence

from kgen.runs.options import TrainingRunOptions, default_of
from kgen.train.session import training_command
from kgen.utils.cli import finite, option, parse_config, require

VARIANTS = {  # (hourglass encoder, hourglass decoder)
    "vanilla": (False, False),
    "hourglass_encoder": (True, False),
    "hourglass_decoder": (False, True),
    "hourglass_both": (True, True),
}


@dataclasses.dataclass(frozen=True)
class VAEConfig(TrainingRunOptions):
    """Train a convolutional VAE on the ELBO."""

    epochs: int = default_of("epochs", 20)
    output_dir: str = default_of("output_dir", "runs/vae")
    variant: str = option("vanilla", "vanilla, hourglass_encoder, hourglass_decoder or hourglass_both")
    latent_dim: int = option(16, "size of the latent vector")
    widths: tuple[int, ...] = option((32, 64), "channels per stride-2 stage, comma-separated")
    beta: float = option(1.0, "weight of the KL term")
    kl_warmup_steps: int = option(0, "steps of linear KL warm-up")
    iwae_samples: int = option(1, "latent samples per image of the training bound: 1 is the ELBO, k > 1 the "
                                "importance-weighted (IWAE) bound, k decoder passes per image")
    gaussian_scale: str = option("per_pixel", "colour images' Gaussian log-scale: per_pixel (predicted by the "
                                              "decoder) or shared (one learned value per channel, the σ-VAE)")

    def __post_init__(self):
        super().__post_init__()
        require(self.variant in VARIANTS, f"variant must be one of {', '.join(VARIANTS)}; got {self.variant!r}.")
        require(self.latent_dim >= 1, f"latent_dim must be >= 1; got {self.latent_dim}.")
        require(finite(self.beta) and self.beta >= 0, f"beta must be a finite number >= 0; got {self.beta}.")
        require(self.kl_warmup_steps >= 0, f"kl_warmup_steps must be >= 0; got {self.kl_warmup_steps}.")
        require(self.iwae_samples >= 1, f"iwae_samples must be >= 1; got {self.iwae_samples}.")
        require(self.iwae_samples == 1 or (self.beta == 1.0 and self.kl_warmup_steps == 0),
                f"iwae_samples > 1 trains the IWAE bound, which has no separate KL term: it needs --beta 1 and "
                f"--kl-warmup-steps 0; got --beta {self.beta:g} --kl-warmup-steps {self.kl_warmup_steps}.")
        require(self.gaussian_scale in ("per_pixel", "shared"),
                f"gaussian_scale must be per_pixel or shared; got {self.gaussian_scale!r}.")


@training_command
def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    """Parses the flags, trains, and returns the exit status."""
    config = parse_config(VAEConfig, argv, prog=prog)
    from kgen.train.session import prepare

    folder = prepare(config)

    import keras
    import numpy as np

    from kgen.data import load_images
    from kgen.models import VAEDecoder, VAEEncoder
    from kgen.runs import RunRecorder, run_record
    from kgen.train.session import train
    from kgen.trainers import VAE

    dataset, info = load_images(config.data, batch_size=config.batch_size, limit=config.limit, seed=config.seed,
                                with_info=True)
    likelihood = "bernoulli" if info.image_shape[-1] == 1 else "gaussian"
    hourglass_encoder, hourglass_decoder = VARIANTS[config.variant]
    vae = VAE(
        VAEEncoder(info.image_shape, config.latent_dim, config.widths, hourglass=hourglass_encoder),
        VAEDecoder(info.image_shape, config.latent_dim, config.widths, hourglass=hourglass_decoder,
                   likelihood=likelihood, scale=config.gaussian_scale),
        beta=config.beta, kl_warmup_steps=config.kl_warmup_steps, seed=config.seed, iwae_samples=config.iwae_samples,
    )
    vae.compile(keras.optimizers.Adam(config.learning_rate))
    latents = np.random.default_rng(config.seed).normal(size=(64, config.latent_dim)).astype("float32")
    recorder = RunRecorder(
        folder, sample_fn=lambda model: model.generate(latents), batch_size=config.batch_size,
        checkpoint_every=config.checkpoint_every, time_budget=config.time_budget,
        config=run_record(config, info, likelihood=likelihood, parameters=vae.count_params()),
    )
    description = (f"VAE ({config.variant}, {likelihood}) on {info.name} {info.image_shape}, "
                   f"{vae.count_params()} parameters, backend {keras.backend.backend()}.")
    return train(vae, dataset, recorder, config, description, "vae").exit_status
