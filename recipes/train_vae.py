"""Train a VAE (vanilla or an hourglass variant) and write a run folder.

    python recipes/train_vae.py                                   # MNIST, vanilla
    python recipes/train_vae.py --variant hourglass_both --beta 4
    python recipes/train_vae.py --data cifar10 --widths 32,64,128   # Gaussian likelihood

Variants: vanilla, hourglass_encoder, hourglass_decoder, hourglass_both.
Grey images use a Bernoulli likelihood on binarised pixels, colour images a
Gaussian one. Rerunning with the same --output-dir resumes.
The same as `kgen.train vae`; the logic lives in `kgen/train/vae.py`, tested there.
"""

import sys

from kgen.train.vae import main

if __name__ == "__main__":
    sys.exit(main())
