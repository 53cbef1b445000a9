"""Partial denoising of test images by a trained DDPM: noise for t steps, denoise back, PSNR/SSIM.

    python recipes/partial_denoising.py ~/kgen-runs/cifar10_ddpm/checkpoints/last.keras --t 50,10,5

Takes the first `--images` test images of the checkpoint's dataset, noises
each with q(x_t | x_0) and runs t DDPM steps back, for every t; reports the
mean PSNR and SSIM of the noised and the denoised images against the
originals (`--json`) and draws the figure (`--figure`). The same study runs
inside `recipes/diffusion_study.py`; this command scores any DDPM checkpoint,
e.g. a long run between chunks. This file is intentionally short.
"""

import dataclasses
import os
import sys
from typing import Optional

import kgen.utils.quiet_start  # noqa: F401  (first: hides TensorFlow's start-up lines)
from kgen.evaluate import load_split
from kgen.runs import RunFolder
from kgen.studies import markdown_table, partial_denoising
from kgen.trainers import load_trainer
from kgen.utils.atomic import write_json
from kgen.utils.cli import ArgumentParser, exit_on_bad_input, require
from kgen.utils.plots import plot_image_rows


@dataclasses.dataclass(frozen=True)
class DenoisingConfig:
    checkpoint: str
    t: tuple[int, ...]
    images: int
    data: Optional[str]
    seed: int
    json: Optional[str]
    figure: Optional[str]

    def __post_init__(self):
        require(self.checkpoint.endswith(".keras") and os.path.isfile(self.checkpoint),
                f"{self.checkpoint!r} is not a .keras checkpoint.")
        require(self.t and all(t >= 1 for t in self.t), f"--t must be positive steps; got {self.t}.")
        require(1 <= self.images <= 10_000, f"--images must be in 1..10000; got {self.images}.")
        for path in (self.json, self.figure):
            require(path is None or not os.path.isdir(path), f"{path!r} is a folder; give a file name.")


def parse(argv=None):
    parser = ArgumentParser(prog="python recipes/partial_denoising.py", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="DDPM .keras checkpoint")
    parser.add_argument("--t", default="50,10,5", help="comma-separated noising steps")
    parser.add_argument("--images", type=int, default=100, help="test images scored (the figure shows 8)")
    parser.add_argument("--data", help="dataset (default: the run's own)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise")
    parser.add_argument("--json", help="write the measures here")
    parser.add_argument("--figure", help="write the figure (PNG) here")
    args = parser.parse_args(argv)
    try:
        steps = tuple(int(t) for t in args.t.split(","))
    except ValueError:
        raise ValueError(f"--t must be comma-separated integers; got {args.t!r}.") from None
    return DenoisingConfig(args.checkpoint, steps, args.images, args.data, args.seed, args.json, args.figure)


@exit_on_bad_input
def main(argv=None):
    config = parse(argv)
    model = load_trainer(config.checkpoint)
    require(hasattr(model, "denoise"), f"{config.checkpoint} is a {type(model).__name__}, not a diffusion model.")
    require(max(config.t) <= model.num_train_timesteps,
            f"--t must be at most the model's T = {model.num_train_timesteps}; got {max(config.t)}.")
    data = config.data or RunFolder.of_checkpoint(config.checkpoint).names()[0]
    require(data, f"{config.checkpoint} names no dataset; pass --data.")
    images, _ = load_split(data, binarize=False, limit=config.images)
    measures, rows = partial_denoising(model, images, config.t, seed=config.seed)
    print(markdown_table(["t", "PSNR noised (dB)", "PSNR denoised (dB)", "SSIM noised", "SSIM denoised"],
                         [[t, f"{m['psnr_noised']:.2f}", f"{m['psnr_denoised']:.2f}", f"{m['ssim_noised']:.4f}",
                           f"{m['ssim_denoised']:.4f}"] for t, m in measures.items()]))
    print(f"({len(images)} {data}:test images, seed {config.seed})")
    if config.json:
        write_json(config.json, {"checkpoint": config.checkpoint, "data": data, "seed": config.seed,
                                 "t": {str(t): m for t, m in measures.items()}})
    if config.figure:
        plot_image_rows(rows, config.figure, "test images noised for t steps with q(x_t|x_0), "
                                             "then denoised with t DDPM steps")


if __name__ == "__main__":
    sys.exit(main())
