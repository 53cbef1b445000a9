"""Images/s the kgen input pipeline delivers on its own (no model): the ceiling it puts on training.

    KGEN_DATA_DIR=../shared/data python benchmarks/bench_pipeline.py --data cifar10 --augment

Reads the training split through `kgen.data.load_images` exactly as the recipes do (shuffle,
scale to [-1, 1], optional flips, batches), skips a warm-up, then times `--batches` batches.
"""

import argparse
import time

import kgen.utils.quiet_start  # noqa: F401  (first: hides TensorFlow's start-up lines)

# isort: split
from kgen.data import load_images


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="cifar10")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--augment", action="store_true")
    args = parser.parse_args()
    stream = iter(load_images(args.data, batch_size=args.batch_size, seed=0, augment=args.augment).repeat())
    for _ in range(20):
        next(stream)
    start, images = time.perf_counter(), 0
    for _ in range(args.batches):
        images += int(next(stream)[0].shape[0])
    seconds = time.perf_counter() - start
    print(f"{args.data} (augment {args.augment}), batch {args.batch_size}: {images / seconds:,.0f} images/s "
          f"over {images:,} images")


if __name__ == "__main__":
    main()
