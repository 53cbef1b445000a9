"""Train a DCGAN and write a run folder (history, loss curves, samples, checkpoints).

    python recipes/train_dcgan.py                      # MNIST, defaults below
    python recipes/train_dcgan.py --data cifar10 --epochs 20 --augment true
    KERAS_BACKEND=jax python recipes/train_dcgan.py    # any Keras backend

Rerunning with the same --output-dir resumes from the last finished epoch.
The same as `kgen.train dcgan`; the logic lives in `kgen/train/dcgan.py`, tested there.
"""

import sys

from kgen.train.dcgan import main

if __name__ == "__main__":
    sys.exit(main())
