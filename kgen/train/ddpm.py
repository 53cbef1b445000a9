"""`kgen.train ddpm`: a class-conditional DDPM (UNet denoiser).

    kgen.train ddpm                                  # MNIST, cosine, T=1000
    kgen.train ddpm --data cifar10 --widths 32,64,128 --epochs 10
    kgen.train ddpm --beta-schedule linear --timesteps 500 --learning-rate 2e-4

Each epoch's grid (samples/epoch_NNN.png) holds one column per class, drawn
with DDIM from the EMA weights. Rerunning with the same --output-dir resumes.
"""

import dataclasses
from typing import Optional, Sequence

from kgen.runs.options import TrainingRunOptions, default_of
from kgen.schedulers import BETA_SCHEDULES, PREDICTION_TYPES
from kgen.train.session import training_command
from kgen.utils.cli import finite, option, parse_config, require


@dataclasses.dataclass(frozen=True)
class DDPMConfig(TrainingRunOptions):
    """Train a class-conditional denoising diffusion model."""

    epochs: int = default_of("epochs", 5)
    output_dir: str = default_of("output_dir", "runs/ddpm")
    widths: tuple[int, ...] = option((16, 32, 64), "UNet channels per level, comma-separated")
    num_res_blocks: int = option(1, "residual blocks per UNet level")
    attention_resolution: int = option(8, "self-attention at levels of at most this side")
    adaptive_norm: bool = option(True, "condition the residual blocks by scale and shift of their norm (AdaGN)")
    timesteps: int = option(1000, "T, the number of noising steps")
    beta_schedule: str = option("cosine", f"noise schedule: {', '.join(BETA_SCHEDULES)}")
    prediction_type: str = option("epsilon", f"network target: {', '.join(PREDICTION_TYPES)}")
    snr_gamma: float = option(5.0, "Min-SNR-gamma loss weighting; 0: the unweighted loss")
    label_dropout: float = option(0.1, "probability of the null label (classifier-free guidance)")
    ema_decay: float = option(0.999, "decay of the weights' moving average used for sampling")
    augment: bool = option(False, "random horizontal flips (natural images, not digits)")
    sample_steps: int = option(25, "DDIM steps of the per-epoch sample grid")
    guidance_scale: float = option(2.0, "guidance of the per-epoch sample grid")

    def __post_init__(self):
        super().__post_init__()
        require(self.num_res_blocks >= 1 and self.attention_resolution >= 1,
                "num_res_blocks and attention_resolution must be >= 1.")
        require(self.timesteps >= 2, f"timesteps must be >= 2; got {self.timesteps}.")
        require(self.beta_schedule in BETA_SCHEDULES,
                f"beta_schedule must be one of {', '.join(BETA_SCHEDULES)}; got {self.beta_schedule!r}.")
        require(self.prediction_type in PREDICTION_TYPES,
                f"prediction_type must be one of {', '.join(PREDICTION_TYPES)}; got {self.prediction_type!r}.")
        require(finite(self.snr_gamma) and self.snr_gamma >= 0,
                f"snr_gamma must be a finite number >= 0; got {self.snr_gamma}.")
        require(0 <= self.label_dropout < 1, f"label_dropout must be in [0, 1); got {self.label_dropout}.")
        require(0 <= self.ema_decay < 1, f"ema_decay must be in [0, 1); got {self.ema_decay}.")
        require(1 <= self.sample_steps <= self.timesteps,
                f"sample_steps must be in 1..timesteps ({self.timesteps}); got {self.sample_steps}.")
        require(finite(self.guidance_scale), f"guidance_scale must be a finite number; got {self.guidance_scale}.")


@training_command
def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    """Parses the flags, trains, and returns the exit status."""
    config = parse_config(DDPMConfig, argv, prog=prog)
    from kgen.train.session import prepare

    folder = prepare(config)

    import keras
    import numpy as np

    from kgen.data import load_images
    from kgen.models import UNet
    from kgen.runs import RunRecorder, run_record
    from kgen.train.session import train
    from kgen.trainers import DDPM

    dataset, info = load_images(config.data, batch_size=config.batch_size, limit=config.limit, seed=config.seed,
                                augment=config.augment, with_info=True)
    num_classes = len(info.class_names)
    ddpm = DDPM(
        UNet(info.image_shape, config.widths, config.num_res_blocks,
             config.attention_resolution, num_classes=num_classes, adaptive_norm=config.adaptive_norm),
        num_train_timesteps=config.timesteps, beta_schedule=config.beta_schedule,
        prediction_type=config.prediction_type, label_dropout=config.label_dropout,
        ema_decay=config.ema_decay, seed=config.seed, snr_gamma=config.snr_gamma or None,
    )
    ddpm.compile(keras.optimizers.Adam(config.learning_rate))
    grid_labels = np.tile(np.arange(num_classes), num_classes)  # one column per class

    def sample_grid(model):
        return model.sample(labels=grid_labels, num_steps=config.sample_steps,
                            guidance_scale=config.guidance_scale, seed=config.seed)

    recorder = RunRecorder(
        folder, sample_fn=sample_grid, batch_size=config.batch_size,
        checkpoint_every=config.checkpoint_every, time_budget=config.time_budget,
        config=run_record(config, info, parameters=ddpm.denoiser.count_params()),
    )
    description = (f"DDPM ({config.beta_schedule}, T={config.timesteps}, {config.prediction_type}) on "
                   f"{info.name} {info.image_shape}, {num_classes} classes, "
                   f"{ddpm.denoiser.count_params()} parameters, backend {keras.backend.backend()}.")
    return train(ddpm, dataset, recorder, config, description, "ddpm").exit_status
