"""`python -m kgen.infer sample`: images from a GAN generator, VAE decoder or denoiser."""

import os

import numpy as np

from kgen import metadata as kgen_metadata
from kgen.infer import image_io, runtime
from kgen.schedulers import SAMPLERS, denoise_loop, make_scheduler
from kgen.utils.images import save_grid

MAX_COUNT = 10_000  # images per call: a bound on memory and on files written


def add_parser(subparsers, default_model):
    p = subparsers.add_parser("sample", help="draw new images")
    p.add_argument("--model", default=default_model, help=".onnx (kgen.export) or .keras checkpoint")
    p.add_argument("--count", type=int, default=16, help="images (ignored with --labels)")
    p.add_argument("--labels", help="denoisers: comma-separated class ids, or 'all' for one per class")
    p.add_argument("--guidance-scale", type=float, default=2.0, help="classifier-free guidance weight")
    p.add_argument("--sampler", default="ddim", choices=SAMPLERS, help="ddim, dpmsolver++ (2M; 15-20 steps) or ddpm")
    p.add_argument("--steps", type=int, default=50, help="sampling steps (DDPM: up to T)")
    p.add_argument("--eta", type=float, default=0.0, help="DDIM eta")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output-dir", default="samples")
    p.set_defaults(run=run)


def parse_labels(text, model):
    if text is None:
        return None
    num_classes = model.metadata.get("num_classes") or 0
    if num_classes == 0:
        raise ValueError(f"{model.path} is unconditional; drop --labels.")
    if text == "all":
        return np.arange(num_classes, dtype=np.int32)
    try:
        labels = np.array([int(v) for v in text.split(",")], np.int32)
    except ValueError:
        raise ValueError(f"--labels must be 'all' or comma-separated integers; got {text!r}.") from None
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"--labels must be in 0..{num_classes - 1}; got {text!r}.")
    return labels


def draw(model, count, seed, labels=None, sampler="ddim", steps=50, eta=0.0, guidance_scale=2.0, progress=True):
    """Samples in [-1, 1] from any sampling-capable model kind."""
    rng = np.random.default_rng(seed)
    if model.kind in ("generator", "vae_decoder"):
        if labels is not None:
            raise ValueError(f"a {model.kind} is unconditional; drop --labels.")
        latents = rng.standard_normal((count, model.metadata["latent_dim"])).astype(np.float32)
        return np.clip(np.concatenate([model.run(latents=latents[i:i + 256])[0]
                                       for i in range(0, count, 256)]), -1, 1)
    model.require("denoiser")
    schedule = kgen_metadata.schedule_config(model.metadata)
    scheduler = make_scheduler(sampler, schedule, eta)
    scheduler.set_timesteps(steps)
    n = len(labels) if labels is not None else count
    x = rng.standard_normal((n, *model.image_shape)).astype(np.float32)
    return denoise_loop(model.denoiser_predict(), scheduler, x, labels, model.metadata.get("null_label"),
                        guidance_scale, rng, progress)


def run(args):
    model = runtime.load(args.model)
    if model.kind == "vae_encoder":
        raise ValueError(f"{args.model} is a VAE encoder; sample from the decoder (vae_decoder) instead.")
    image_io.require_finite(guidance_scale=args.guidance_scale, eta=args.eta)
    if not 1 <= args.count <= MAX_COUNT:
        raise ValueError(f"--count must be in 1..{MAX_COUNT:,}; got {args.count}.")
    labels = parse_labels(args.labels, model) if model.kind == "denoiser" else None
    if args.labels and model.kind != "denoiser":
        raise ValueError(f"{args.model} is a {model.kind}, which is unconditional; drop --labels.")
    if labels is not None and len(labels) > MAX_COUNT:
        raise ValueError(f"--labels asks for {len(labels):,} images; at most {MAX_COUNT:,}.")
    if model.kind == "denoiser":
        steps = model.metadata["schedule"]["num_train_timesteps"]
        if not 1 <= args.steps <= steps:
            raise ValueError(f"--steps must be in 1..{steps} (the model's T); got {args.steps}.")
    image_io.prepare_output_dir(args.output_dir)
    images = draw(model, args.count, args.seed, labels, args.sampler, args.steps, args.eta, args.guidance_scale)
    names = model.class_names
    for i, image in enumerate(images):
        tag = f"_{names[labels[i]]}" if labels is not None and names else ""
        image_io.write_png(image, os.path.join(args.output_dir, f"sample_{i:03d}{tag}.png"))
    grid = os.path.join(args.output_dir, "grid.png")
    save_grid(images, grid, ncols=len(images) if labels is not None and len(images) <= 10 else None)
    print(f"wrote {len(images)} images and {grid} ({model.kind}, {model.provider})")
    return 0
