"""`python -m kgen.evaluate SOURCE`: sample-quality metrics as a table and JSON."""

import argparse
import json
import os

import kgen  # noqa: F401  (quiets TensorFlow's start-up logs)
from kgen.evaluate.denoiser_evaluation import evaluate_denoiser, format_denoiser_table
from kgen.evaluate.evaluation import evaluate, format_table
from kgen.evaluate.vae_evaluation import evaluate_vae_checkpoint


def _class_name(path):
    """The trainer class of a .keras file (reads its config, not its weights)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("config.json")).get("class_name")
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
from kgen.utils.cli import exit_on_bad_input


@exit_on_bad_input
def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m kgen.evaluate",
        description="Evaluate a generator checkpoint or an image folder against a dataset split.",
    )
    parser.add_argument("source", help="a .keras checkpoint (DCGAN, VAE, DDPM), an exported denoiser .onnx, "
                                       "or a folder of images")
    parser.add_argument("--data", help="reference dataset: TFDS name or path (default: a denoiser's own "
                                       "dataset, else mnist)")
    parser.add_argument("--split", default="test", help="reference split")
    parser.add_argument("--classifier", help="classifier .keras (default exported/classifiers/<data>.keras)")
    parser.add_argument("--num-samples", type=int, default=10_000, help="generated (and at most real) images")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--inception-weights", help="local InceptionV3 no-top weights for Inception FID/KID")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iw-samples", type=int, default=100, help="VAE: k of the importance-weighted NLL")
    parser.add_argument("--iw-images", type=int, default=10_000, help="VAE: test images of the IW NLL")
    parser.add_argument("--per-class", type=int, default=100, help="denoisers: samples per class")
    parser.add_argument("--guidance-scale", default="1", help="denoisers: comma-separated guidance scales")
    parser.add_argument("--sampler", default="ddim", help="denoisers: ddim or ddpm")
    parser.add_argument("--steps", type=int, default=25, help="denoisers: sampling steps")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    try:
        guidance_scales = [float(g) for g in args.guidance_scale.split(",")]
    except ValueError:
        raise ValueError(f"--guidance-scale must be comma-separated numbers; got {args.guidance_scale!r}.") from None
    if args.json:  # fail on an unwritable path now, not after the work
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    if args.source.endswith(".onnx") or (args.source.endswith(".keras") and _class_name(args.source) == "DDPM"):
        results = evaluate_denoiser(
            args.source, data=args.data, split=args.split, classifier=args.classifier, per_class=args.per_class,
            guidance_scales=guidance_scales, sampler=args.sampler, num_steps=args.steps, seed=args.seed,
            batch_size=args.batch_size)
        table = format_denoiser_table(results)
    elif args.source.endswith(".keras") and _class_name(args.source) == "VAE":
        results = evaluate_vae_checkpoint(
            args.source, data=args.data or "mnist", split=args.split, classifier=args.classifier,
            iw_samples=args.iw_samples, iw_images=args.iw_images,
            num_prior_samples=min(args.num_samples, 10_000), seed=args.seed,
        )
        table = format_table(results)
    else:
        results = evaluate(
            args.source, data=args.data or "mnist", split=args.split, classifier=args.classifier,
            num_samples=args.num_samples, batch_size=args.batch_size,
            inception_weights=args.inception_weights, seed=args.seed,
        )
        table = format_table(results)
    print(table)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
