"""Train the dataset classifier used by kgen's metrics, and report test accuracy.

    python recipes/train_classifier.py                          # MNIST
    python recipes/train_classifier.py --data cifar10 --epochs 40 --widths 64,128,256 --flip true

Writes a run folder (curves, checkpoints, resume) and, at the end, the
inference model to --export (default exported/classifiers/<data>.keras) with
its measured test accuracy in a JSON file beside it.
The same as `kgen.train classifier`; the logic lives in `kgen/train/classifier.py`, tested there.
"""

import sys

from kgen.train.classifier import main

if __name__ == "__main__":
    sys.exit(main())
