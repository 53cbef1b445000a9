"""`python -m kgen.infer denoise --t 10 IMAGE...`: partial denoising of real images."""

import argparse
import os
import sys
from typing import Any

import numpy as np

from kgen import metadata as kgen_metadata
from kgen.infer import image_io, runtime
from kgen.infer.sample import check_guidance_scale
from kgen.metrics.image_quality import psnr, ssim
from kgen.schedulers import SAMPLERS, make_scheduler, partial_denoise


def add_parser(subparsers: Any, default_model: str) -> None:
    p = subparsers.add_parser("denoise", help="noise images for t steps with q(x_t|x_0), then denoise them")
    p.add_argument("images", nargs="+", help="image files or folders (any size or mode)")
    p.add_argument("--t", type=int, required=True, help="noising steps, 1..T of the model")
    p.add_argument("--model", default=default_model, help="denoiser .onnx (kgen.export) or DDPM .keras")
    p.add_argument("--sampler", default="ddpm", choices=SAMPLERS, help="ddpm (t steps), ddim or dpmsolver++")
    p.add_argument("--steps", type=int, help="DDIM / DPM-Solver++ steps (default t)")
    p.add_argument("--eta", type=float, default=0.0, help="DDIM eta")
    p.add_argument("--label", type=int, help="class to condition on (default: none)")
    p.add_argument("--guidance-scale", type=float, default=1.0, help="classifier-free guidance (needs --label)")
    p.add_argument("--background", default="white", choices=("white", "black"),
                   help="what transparent pixels are composited onto")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise (same seed, same images)")
    image_io.add_fit_argument(p)
    image_io.add_output_dir_argument(p, "denoised")
    runtime.add_engine_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    model = runtime.load(args.model, **runtime.engine_options(args)).require("denoiser")
    meta = model.metadata
    steps = meta["schedule"]["num_train_timesteps"]
    if not 1 <= args.t <= steps:
        raise ValueError(f"--t must be in 1..{steps} (the model's T); got {args.t}.")
    image_io.require_finite(guidance_scale=args.guidance_scale, eta=args.eta)
    check_guidance_scale(args.guidance_scale)
    if args.guidance_scale != 1.0 and args.label is None:
        raise ValueError("--guidance-scale needs --label (guidance mixes the labelled and unlabelled outputs).")
    if args.steps is not None and not 1 <= args.steps <= args.t:
        raise ValueError(f"--steps must be in 1..--t ({args.t}); got {args.steps}.")
    files = image_io.expand_inputs(args.images)
    notes = []
    images = np.stack([image_io.read_image(f, model.image_shape, args.background, notes, args.fit) for f in files])
    # All inputs read and checked, and the output folder chosen, before any compute or write.
    args.output_dir = image_io.prepare_output_dir(args.output_dir, args.overwrite, args.default_output_dir)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    labels = None
    if args.label is not None:
        if not 0 <= args.label < (meta.get("num_classes") or 0):
            raise ValueError(f"--label must be in 0..{(meta.get('num_classes') or 0) - 1}; got {args.label}.")
        labels = np.full(len(images), args.label, np.int32)
    schedule = kgen_metadata.schedule_config(meta)
    scheduler = make_scheduler(args.sampler, schedule, args.eta)
    noised, denoised = partial_denoise(
        model.denoiser_predict(), scheduler, images, args.t, labels, meta.get("null_label"),
        args.guidance_scale, args.steps, np.random.default_rng(args.seed), progress=True,
        guidance_input=model.guidance_input,
    )
    p_noised, p_denoised = psnr(images, noised), psnr(images, denoised)
    s_noised, s_denoised = ssim(images, noised), ssim(images, denoised)
    stems = image_io.output_stems(files)
    with image_io.staged_output(args.output_dir, created_empty=not os.listdir(args.output_dir)) as staging:
        for i, stem in enumerate(stems):
            out = os.path.join(staging, f"{stem}_t{args.t}")
            image_io.write_png(denoised[i], out + "_denoised.png")
            image_io.write_png(np.stack([images[i], noised[i], denoised[i]]), out + "_comparison.png", scale=4)
    for i, (path, stem) in enumerate(zip(files, stems)):
        out = os.path.join(args.output_dir, f"{stem}_t{args.t}")
        print(f"{path}: PSNR noised {p_noised[i]:.2f} dB -> denoised {p_denoised[i]:.2f} dB; "
              f"SSIM {s_noised[i]:.3f} -> {s_denoised[i]:.3f}  ({out}_denoised.png, _comparison.png)")
    return 0
