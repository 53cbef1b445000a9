"""`python -m kgen.infer sample`: images from a GAN generator, VAE decoder or denoiser."""

import argparse
import os
from typing import Any, Optional, Sequence

import numpy as np

from kgen import metadata as kgen_metadata
from kgen.infer import image_io, runtime
from kgen.schedulers import SAMPLERS, denoise_loop, draw_step_noise, make_scheduler, step_coefficients
from kgen.utils.images import save_grid

MAX_COUNT = 10_000  # images per call: a bound on memory and on files written
# Classifier-free guidance weights far outside the range the models were tuned at (1-5) draw saturated noise;
# larger ones are refused rather than drawn.
MAX_GUIDANCE_SCALE = 50.0


def add_parser(subparsers: Any, default_model: str) -> None:
    p = subparsers.add_parser("sample", help="draw new images")
    p.add_argument("--model", default=default_model, help=".onnx (kgen.export: generator, VAE decoder, denoiser or "
                                                           "sampler graph) or .keras checkpoint")
    p.add_argument("--count", type=int, default=16, help="images (ignored with --labels)")
    p.add_argument("--labels", help="denoisers: comma-separated class ids, or 'all' for one per class")
    p.add_argument("--guidance-scale", type=float, default=2.0, help="classifier-free guidance weight")
    p.add_argument("--sampler", choices=SAMPLERS, help="ddim (default), dpmsolver++ (2M; 15-20 steps) or ddpm; "
                                                       "a sampler graph or distilled denoiser has its own default")
    p.add_argument("--steps", type=int, help="sampling steps (default 50, or the steps a distilled denoiser was "
                                             "trained for; DDPM: up to T); a sampler graph has its own")
    p.add_argument("--eta", type=float, help="DDIM eta (default 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise (same seed, same images)")
    image_io.add_output_dir_argument(p, "samples")
    runtime.add_engine_arguments(p)
    p.set_defaults(run=run)


def parse_labels(text: Optional[str], model: runtime.InferenceModel) -> Optional[np.ndarray]:
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


def own_sampling(model: runtime.InferenceModel, sampler: Optional[str] = None,
                 steps: Optional[int] = None) -> tuple:
    """`(sampler, steps)` with what is not given filled in from the model: a distilled denoiser's own (its
    metadata's `sampling`), else DDIM-50."""
    own_sampler, own_steps = kgen_metadata.default_sampling(model.metadata)
    return sampler or own_sampler, own_steps if steps is None else int(steps)


def draw(model: runtime.InferenceModel, count: int, seed: int, labels: Optional[np.ndarray] = None,
         sampler: str = "ddim", steps: Optional[int] = 50, eta: float = 0.0, guidance_scale: float = 2.0,
         progress: bool = True) -> np.ndarray:
    """Samples in [-1, 1] from any sampling-capable model kind.

    A sampler graph (`kgen.export --sampler`) gets the noise the numpy
    sampler would draw for the same seed (`sampler_inputs`), so both give the
    same images; its sampler, steps and eta are its own. `steps` None visits
    every index (DDPM's T); `own_sampling` gives a model's default ones.
    """
    if model.kind == "sampler":
        return draw_with_graph(model, count, seed, labels, guidance_scale)
    rng = np.random.default_rng(seed)
    if model.kind in ("generator", "vae_decoder"):
        if labels is not None:
            raise ValueError(f"a {model.kind} is unconditional; drop --labels.")
        latents = rng.standard_normal((count, model.metadata["latent_dim"])).astype(np.float32)
        return np.clip(np.concatenate([model.run(latents=latents[i:i + 256])[0]
                                       for i in range(0, count, 256)]), -1, 1)
    model.require("denoiser")
    scheduler = make_scheduler(sampler, kgen_metadata.schedule_config(model.metadata), eta)
    scheduler.set_timesteps(steps)
    n = len(labels) if labels is not None else count
    x = rng.standard_normal((n, *model.image_shape)).astype(np.float32)
    return denoise_loop(model.denoiser_predict(), scheduler, x, labels, model.metadata.get("null_label"),
                        guidance_scale, rng, progress, guidance_input=model.guidance_input)


def sampler_inputs(metadata: dict, labels: Sequence[int], seed: int, guidance_scale: float) -> dict:
    """A sampler graph's inputs for `labels` and `seed`: the noise kgen's numpy sampler draws for them."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels, np.int32)
    noise = rng.standard_normal((len(labels), *metadata["image_shape"])).astype(np.float32)
    inputs = {"noise": noise, "labels": labels, "guidance_scale": np.array(guidance_scale, np.float32)}
    if "step_noise" in metadata["input_names"]:
        table = step_coefficients(metadata["sampler"], kgen_metadata.schedule_config(metadata),
                                  metadata["num_steps"], metadata["eta"])
        inputs["step_noise"] = draw_step_noise(table, noise.shape, rng)
    return inputs


def draw_with_graph(model: runtime.InferenceModel, count: int, seed: int, labels: Optional[Sequence[int]] = None,
                    guidance_scale: float = 2.0) -> np.ndarray:
    """Samples from a sampler graph; no labels (or an unconditional model) samples unconditionally."""
    meta = model.metadata
    if labels is None:
        labels = np.full(count, meta.get("null_label") or 0, np.int32)
        guidance_scale = 1.0
    return model.run(**sampler_inputs(meta, labels, seed, guidance_scale))[0]


def check_guidance_scale(value: float) -> None:
    if not abs(value) <= MAX_GUIDANCE_SCALE:
        raise ValueError(f"--guidance-scale must be in -{MAX_GUIDANCE_SCALE:g}..{MAX_GUIDANCE_SCALE:g} (the shipped "
                         f"models draw well at 1-5; far outside, guidance draws saturated noise); got {value:g}.")


def check_sampler_flags(args: argparse.Namespace, model: runtime.InferenceModel) -> None:
    """Fills in --sampler/--steps/--eta; a sampler graph only accepts its own."""
    if model.kind != "sampler":
        args.sampler, args.steps = own_sampling(model, args.sampler, args.steps)
        args.eta = 0.0 if args.eta is None else args.eta
        return
    meta = model.metadata
    own = {"sampler": meta["sampler"], "steps": meta["num_steps"], "eta": meta["eta"]}
    for flag, value in own.items():
        given = getattr(args, flag)
        if given is not None and given != value:
            raise ValueError(f"{args.model} is a {meta['sampler']}-{meta['num_steps']} sampler graph (eta "
                             f"{meta['eta']:g}); --{flag} {given} needs another export (kgen.export --sampler).")
        setattr(args, flag, value)


def run(args: argparse.Namespace) -> int:
    model = runtime.load(args.model, **runtime.engine_options(args))
    check_sampler_flags(args, model)
    if model.kind == "vae_encoder":
        raise ValueError(f"{args.model} is a VAE encoder; sample from the decoder (vae_decoder) instead.")
    if model.kind == "discriminator":
        raise ValueError(f"{args.model} is a GAN discriminator, which draws no images; sample from its generator.")
    image_io.require_finite(guidance_scale=args.guidance_scale, eta=args.eta)
    check_guidance_scale(args.guidance_scale)
    if not 1 <= args.count <= MAX_COUNT:
        raise ValueError(f"--count must be in 1..{MAX_COUNT:,}; got {args.count}.")
    labels = parse_labels(args.labels, model) if model.kind in ("denoiser", "sampler") else None
    if args.labels and model.kind not in ("denoiser", "sampler"):
        raise ValueError(f"{args.model} is a {model.kind}, which is unconditional; drop --labels.")
    if labels is not None and len(labels) > MAX_COUNT:
        raise ValueError(f"--labels asks for {len(labels):,} images; at most {MAX_COUNT:,}.")
    if model.kind == "denoiser":
        steps = model.metadata["schedule"]["num_train_timesteps"]
        if not 1 <= args.steps <= steps:
            raise ValueError(f"--steps must be in 1..{steps} (the model's T); got {args.steps}.")
    args.output_dir = image_io.prepare_output_dir(args.output_dir, args.overwrite, args.default_output_dir)
    empty = not os.listdir(args.output_dir)
    with image_io.staged_output(args.output_dir, created_empty=empty) as staging:
        images = draw(model, args.count, args.seed, labels, args.sampler, args.steps, args.eta, args.guidance_scale)
        names = model.class_names
        for i, image in enumerate(images):
            tag = f"_{names[labels[i]]}" if labels is not None and names else ""
            image_io.write_png(image, os.path.join(staging, f"sample_{i:03d}{tag}.png"))
        save_grid(images, os.path.join(staging, "grid.png"),
                  ncols=len(images) if labels is not None and len(images) <= 10 else None)
    grid = os.path.join(args.output_dir, "grid.png")
    print(f"wrote {len(images)} images and {grid} ({model.kind}, {model.provider})")
    return 0
