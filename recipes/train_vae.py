"""Train a VAE (vanilla or an hourglass variant) and write a run folder.

    python recipes/train_vae.py                                   # MNIST, vanilla
    python recipes/train_vae.py --variant hourglass_both --beta 4
    python recipes/train_vae.py --data cifar10 --widths 32,64,128   # Gaussian likelihood

Variants: vanilla, hourglass_encoder, hourglass_decoder, hourglass_both.
Grey images use a Bernoulli likelihood on binarised pixels, colour images a
Gaussian one. Rerunning with the same --output-dir resumes.
This file is intentionally short: the logic lives in kgen and is tested there.
"""

import dataclasses
import sys

import kgen  # noqa: F401  (first: quiets TensorFlow's start-up logs)

# isort: split
import keras
import numpy as np

from kgen.backend.distribution import use_devices
from kgen.data import load_images
from kgen.export.warm_start import warm_starter
from kgen.models import VAEDecoder, VAEEncoder
from kgen.runs import (
    RunRecorder,
    TrainingRunOptions,
    apply_training_options,
    fit_resumable,
    open_run,
    run_record,
)
from kgen.trainers import VAE
from kgen.utils.cli import (
    command_line,
    exit_on_bad_input,
    finite,
    option,
    parse_config,
    require,
)

VARIANTS = {
    "vanilla": (False, False),
    "hourglass_encoder": (True, False),
    "hourglass_decoder": (False, True),
    "hourglass_both": (True, True),
}


@dataclasses.dataclass(frozen=True)
class VAEConfig(TrainingRunOptions):
    """Train a convolutional VAE on the ELBO."""

    data: str = option("mnist", "TFDS name or path; names are first looked up under $KGEN_DATA_DIR")
    variant: str = option("vanilla", "vanilla, hourglass_encoder, hourglass_decoder or hourglass_both")
    latent_dim: int = option(16, "size of the latent vector")
    widths: tuple[int, ...] = option((32, 64), "channels per stride-2 stage, comma-separated")
    beta: float = option(1.0, "weight of the KL term")
    kl_warmup_steps: int = option(0, "steps of linear KL warm-up")
    epochs: int = option(20, "epochs to train (in total, counting resumed ones)")
    batch_size: int = option(128, "images per step")
    learning_rate: float = option(1e-3, "Adam learning rate")
    seed: int = option(0, "seed of weights, noise and data order")
    output_dir: str = option("runs/vae", "run folder")

    def __post_init__(self):
        super().__post_init__()
        require(self.variant in VARIANTS, f"variant must be one of {', '.join(VARIANTS)}; got {self.variant!r}.")
        require(self.latent_dim >= 1, f"latent_dim must be >= 1; got {self.latent_dim}.")
        require(finite(self.beta) and self.beta >= 0, f"beta must be a finite number >= 0; got {self.beta}.")
        require(self.kl_warmup_steps >= 0, f"kl_warmup_steps must be >= 0; got {self.kl_warmup_steps}.")


@exit_on_bad_input
def main(argv=None):
    config = parse_config(VAEConfig, argv)
    folder = open_run(config)  # locked, and a resume's flags checked, before any data or model
    apply_training_options(config)
    use_devices(config.devices)
    keras.utils.set_random_seed(config.seed)
    dataset, info = load_images(config.data, batch_size=config.batch_size, seed=config.seed, with_info=True)
    widths = config.widths
    likelihood = "bernoulli" if info.image_shape[-1] == 1 else "gaussian"
    enc_hg, dec_hg = VARIANTS[config.variant]
    vae = VAE(
        VAEEncoder(info.image_shape, config.latent_dim, widths, hourglass=enc_hg),
        VAEDecoder(info.image_shape, config.latent_dim, widths, hourglass=dec_hg, likelihood=likelihood),
        beta=config.beta, kl_warmup_steps=config.kl_warmup_steps, seed=config.seed,
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
    status = fit_resumable(vae, dataset, recorder, config.epochs, description,
                           warm_start=warm_starter(config.init_from) if config.init_from else None,
                           continue_command=command_line(__file__, config))
    return status.exit_status


if __name__ == "__main__":
    sys.exit(main())
