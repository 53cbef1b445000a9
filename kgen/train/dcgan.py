"""`kgen.train dcgan`: a DCGAN on MNIST, CIFAR-10, a TFDS dataset or local images.

    kgen.train dcgan                                    # MNIST, defaults below
    kgen.train dcgan --data cifar10 --epochs 20 --augment true
    kgen.train dcgan --learning-rate 1e-4 --discriminator-learning-rate 4e-4   # TTUR
    KERAS_BACKEND=jax kgen.train dcgan                  # any Keras backend

Rerunning with the same --output-dir resumes from the last commit.
"""

import dataclasses
from typing import Optional, Sequence

from kgen.runs.options import TrainingRunOptions, default_of
from kgen.train.session import training_command
from kgen.utils.cli import finite, option, parse_config, require


@dataclasses.dataclass(frozen=True)
class DCGANConfig(TrainingRunOptions):
    """Train a DCGAN on MNIST, CIFAR-10, a TFDS dataset or local images."""

    learning_rate: float = default_of("learning_rate", 2e-4)
    output_dir: str = default_of("output_dir", "runs/dcgan")
    discriminator_learning_rate: Optional[float] = option(
        None, "Adam learning rate of the discriminator (default: --learning-rate, as in the DCGAN paper); the "
              "two time-scale update rule (TTUR, Heusel et al. 2017) gives it a larger one, e.g. 4e-4 with "
              "--learning-rate 1e-4")
    beta_1: float = option(0.5, "Adam beta_1 of both networks")
    latent_dim: int = option(100, "size of the latent vector")
    generator_width: int = option(64, "channels of the generator's last hidden stage")
    discriminator_width: int = option(64, "channels of the discriminator's first stage")
    real_label: float = option(0.9, "discriminator target for real images (one-sided smoothing)")
    image_size: Optional[int] = option(None, "resize images to this size (default: keep)")
    augment: bool = option(False, "random horizontal flips (natural images only)")
    ema_decay: Optional[float] = option(None, "keep an exponential moving average of the generator's weights with "
                                              "this decay (e.g. 0.999); samples and exports use it (default: none)")
    probe_images: int = option(1000, "after every epoch, D's mean output on this many training and as many "
                                     "test-split images (train_d_real, test_d_real: the overfitting check); 0: off")

    def __post_init__(self):
        super().__post_init__()
        require(self.discriminator_learning_rate is None
                or (finite(self.discriminator_learning_rate) and self.discriminator_learning_rate > 0),
                f"discriminator_learning_rate must be a finite number > 0; got {self.discriminator_learning_rate}.")
        require(finite(self.beta_1) and 0 <= self.beta_1 < 1, f"beta_1 must be in [0, 1); got {self.beta_1}.")
        require(min(self.latent_dim, self.generator_width, self.discriminator_width) >= 1,
                "latent_dim, generator_width and discriminator_width must be >= 1.")
        require(finite(self.real_label) and 0 < self.real_label <= 1,
                f"real_label must be in (0, 1]; got {self.real_label}.")
        require(self.image_size is None or 8 <= self.image_size <= 4096,
                f"image_size must be in 8..4096; got {self.image_size}.")
        require(self.ema_decay is None or (finite(self.ema_decay) and 0 < self.ema_decay < 1),
                f"ema_decay must be in (0, 1); got {self.ema_decay}.")
        require(0 <= self.probe_images <= 100_000, f"probe_images must be in 0..100000; got {self.probe_images}.")


def optimizers(config: DCGANConfig) -> dict:
    """`DCGAN.compile`'s arguments: Adam for each network, at its own learning rate (TTUR) when one is given."""
    import keras

    d_rate = config.discriminator_learning_rate or config.learning_rate
    return {"d_optimizer": keras.optimizers.Adam(d_rate, beta_1=config.beta_1),
            "g_optimizer": keras.optimizers.Adam(config.learning_rate, beta_1=config.beta_1)}


@training_command
def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    """Parses the flags, trains, and returns the exit status."""
    config = parse_config(DCGANConfig, argv, prog=prog)
    from kgen.train.session import prepare

    folder = prepare(config)

    import keras
    import numpy as np

    from kgen.callbacks import GeneralizationProbe
    from kgen.data import load_images
    from kgen.models import DCGANDiscriminator, DCGANGenerator
    from kgen.runs import FitStatus, RunRecorder, run_record
    from kgen.train.session import train
    from kgen.trainers import DCGAN

    dataset, info = load_images(
        config.data, batch_size=config.batch_size, image_size=config.image_size,
        augment=config.augment, limit=config.limit, seed=config.seed, with_info=True,
    )
    generator = DCGANGenerator(info.image_shape, config.latent_dim, config.generator_width)
    discriminator = DCGANDiscriminator(info.image_shape, config.discriminator_width)
    gan = DCGAN(generator, discriminator, real_label=config.real_label, seed=config.seed, ema_decay=config.ema_decay)
    gan.compile(**optimizers(config))
    probe = (GeneralizationProbe.from_data(config.data, min(config.probe_images, config.limit or config.probe_images),
                                             image_size=config.image_size)
             if config.probe_images else None)
    fixed_latents = np.random.default_rng(config.seed).normal(size=(64, config.latent_dim)).astype("float32")
    recorder = RunRecorder(
        folder, sample_fn=lambda model: model.generate(fixed_latents), batch_size=config.batch_size,
        checkpoint_every=config.checkpoint_every, time_budget=config.time_budget, epoch_measures=probe,
        config=run_record(config, info, parameters=generator.count_params() + discriminator.count_params()),
    )
    description = (f"DCGAN on {info.name} {info.image_shape}, {info.num_examples} images, "
                   f"backend {keras.backend.backend()}.")
    status = train(gan, dataset, recorder, config, description, "dcgan")
    if status in (FitStatus.FINISHED, FitStatus.TIME_BUDGET):
        losses = recorder.summary()["losses"]
        print("Lowest per-step losses: " + ", ".join(f"{k} {v['min_step_value']:.4f} (step {v['min_step']})"
                                                      for k, v in losses.items() if v["min_step"] is not None))
    return status.exit_status
