"""`python -m kgen.evaluate SOURCE`: sample-quality metrics as a table and JSON."""

import argparse
import json
import os

import kgen  # noqa: F401  (quiets TensorFlow's start-up logs)
from kgen.evaluate.evaluation import evaluate, format_table
from kgen.utils.cli import exit_on_bad_input


@exit_on_bad_input
def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m kgen.evaluate",
        description="Evaluate a generator checkpoint or an image folder against a dataset split.",
    )
    parser.add_argument("source", help="a .keras generator checkpoint (DCGAN) or a folder of images")
    parser.add_argument("--data", default="mnist", help="reference dataset: TFDS name or path")
    parser.add_argument("--split", default="test", help="reference split")
    parser.add_argument("--classifier", help="classifier .keras (default exported/classifiers/<data>.keras)")
    parser.add_argument("--num-samples", type=int, default=10_000, help="generated (and at most real) images")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--inception-weights", help="local InceptionV3 no-top weights for Inception FID/KID")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    if args.json:  # fail on an unwritable path now, not after the work
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
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
