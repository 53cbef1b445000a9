"""`python -m kgen.evaluate SOURCE`: sample-quality metrics as a table and JSON."""

import argparse
import json
import os

import kgen  # noqa: F401  (quiets TensorFlow's start-up logs)
from kgen.evaluate.evaluation import evaluate, format_table
from kgen.evaluate.vae_evaluation import evaluate_vae_checkpoint


def _is_vae(path):
    """Whether a .keras file holds a kgen VAE (reads its config, not its weights)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("config.json")).get("class_name") == "VAE"
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return False
from kgen.utils.cli import exit_on_bad_input


@exit_on_bad_input
def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m kgen.evaluate",
        description="Evaluate a generator checkpoint or an image folder against a dataset split.",
    )
    parser.add_argument("source", help="a .keras checkpoint (DCGAN, VAE) or a folder of images")
    parser.add_argument("--data", default="mnist", help="reference dataset: TFDS name or path")
    parser.add_argument("--split", default="test", help="reference split")
    parser.add_argument("--classifier", help="classifier .keras (default exported/classifiers/<data>.keras)")
    parser.add_argument("--num-samples", type=int, default=10_000, help="generated (and at most real) images")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--inception-weights", help="local InceptionV3 no-top weights for Inception FID/KID")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iw-samples", type=int, default=100, help="VAE: k of the importance-weighted NLL")
    parser.add_argument("--iw-images", type=int, default=10_000, help="VAE: test images of the IW NLL")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    if args.json:  # fail on an unwritable path now, not after the work
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    if args.source.endswith(".keras") and _is_vae(args.source):
        results = evaluate_vae_checkpoint(
            args.source, data=args.data, split=args.split, classifier=args.classifier,
            iw_samples=args.iw_samples, iw_images=args.iw_images,
            num_prior_samples=min(args.num_samples, 10_000), seed=args.seed,
        )
    else:
        results = evaluate(
            args.source, data=args.data, split=args.split, classifier=args.classifier,
            num_samples=args.num_samples, batch_size=args.batch_size,
            inception_weights=args.inception_weights, seed=args.seed,
        )
    print(format_table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
