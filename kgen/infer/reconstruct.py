"""`python -m kgen.infer reconstruct` and `interpolate`: VAE encoder/decoder and latent walks."""

import argparse
import os
import sys
from typing import Any

import numpy as np

from kgen.infer import image_io, runtime


def add_parsers(subparsers: Any, default_encoder: str, default_decoder: str) -> None:
    p = subparsers.add_parser("reconstruct", help="VAE: encode images and decode the posterior mean")
    p.add_argument("images", nargs="+", help="image files or folders")
    p.add_argument("--encoder", default=default_encoder, help="vae_encoder .onnx")
    p.add_argument("--decoder", default=default_decoder, help="vae_decoder .onnx")
    image_io.add_fit_argument(p)
    p.add_argument("--background", default="white", choices=("white", "black"),
                   help="what transparent pixels are composited onto")
    image_io.add_output_dir_argument(p, "reconstructions")
    runtime.add_engine_arguments(p)
    p.set_defaults(run=run_reconstruct)

    p = subparsers.add_parser("interpolate", help="decode a straight latent walk (GAN or VAE decoder)")
    p.add_argument("images", nargs="*", help="with --encoder: two images to walk between")
    p.add_argument("--model", default=default_decoder, help="generator or vae_decoder .onnx")
    p.add_argument("--encoder", help="vae_encoder .onnx; walk between the two images' means")
    p.add_argument("--steps", type=int, default=10, help="images along the walk")
    p.add_argument("--seed", type=int, default=0, help="without images: the walk joins two random latents")
    image_io.add_fit_argument(p)
    p.add_argument("--background", default="white", choices=("white", "black"),
                   help="what transparent pixels are composited onto")
    p.add_argument("--output", default="interpolation.png", help="PNG file; an existing one needs --overwrite")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    runtime.add_engine_arguments(p)
    p.set_defaults(run=run_interpolate)


def _encode(encoder, files, background, fit="auto"):
    notes = []
    images = np.stack([image_io.read_image(f, encoder.image_shape, background, notes, fit) for f in files])
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    mean, _ = encoder.run(images=images)
    return images, mean


def run_reconstruct(args: argparse.Namespace) -> int:
    encoder = runtime.load(args.encoder, **runtime.engine_options(args)).require("vae_encoder")
    decoder = runtime.load(args.decoder, **runtime.engine_options(args)).require("vae_decoder")
    files = image_io.expand_inputs(args.images)
    args.output_dir = image_io.prepare_output_dir(args.output_dir, args.overwrite, args.default_output_dir)
    images, mean = _encode(encoder, files, args.background, args.fit)
    recon = np.clip(decoder.run(latents=mean.astype(np.float32))[0], -1, 1)
    with image_io.staged_output(args.output_dir, created_empty=not os.listdir(args.output_dir)) as staging:
        for i, stem in enumerate(image_io.output_stems(files)):
            image_io.write_png(np.stack([images[i], recon[i]]), os.path.join(staging, f"{stem}_recon.png"), scale=4)
    print(f"wrote {len(files)} input|reconstruction pairs to {args.output_dir}")
    return 0


def run_interpolate(args: argparse.Namespace) -> int:
    model = runtime.load(args.model, **runtime.engine_options(args)).require("generator", "vae_decoder")
    if not 2 <= args.steps <= 1000:
        raise ValueError(f"--steps must be in 2..1000; got {args.steps}.")
    if os.path.isdir(args.output):
        raise ValueError(f"--output {args.output!r} is a folder; give a .png file name.")
    if os.path.exists(args.output) and not args.overwrite:
        raise ValueError(f"--output {args.output!r} exists; give a new name, or --overwrite to replace it.")
    image_io.prepare_output_dir(os.path.dirname(os.path.abspath(args.output)), overwrite=True)
    if args.encoder:
        files = image_io.expand_inputs(args.images)
        if len(files) != 2:
            raise ValueError(f"interpolate with --encoder needs exactly two images; got {len(files)}.")
        encoder = runtime.load(args.encoder, **runtime.engine_options(args)).require("vae_encoder")
        _, ends = _encode(encoder, files, args.background, args.fit)
    else:
        if args.images:
            raise ValueError("images need --encoder (a vae_encoder .onnx) to be placed in the latent space.")
        ends = np.random.default_rng(args.seed).standard_normal((2, model.metadata["latent_dim"]))
    w = np.linspace(0.0, 1.0, args.steps)[:, None]
    latents = ((1 - w) * ends[0] + w * ends[1]).astype(np.float32)
    images = np.clip(model.run(latents=latents)[0], -1, 1)
    image_io.write_png(images, args.output, scale=2)
    print(f"wrote {args.output} ({args.steps} steps)")
    return 0
