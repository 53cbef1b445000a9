"""Train a class-conditional DDPM (UNet denoiser) and write a run folder.

    python recipes/train_ddpm.py                                  # MNIST, cosine, T=1000
    python recipes/train_ddpm.py --data cifar10 --widths 32,64,128 --epochs 10
    python recipes/train_ddpm.py --beta-schedule linear --timesteps 500 --learning-rate 2e-4

Each epoch's grid (samples/epoch_NNN.png) holds one column per class, drawn
with DDIM from the EMA weights. Rerunning with the same --output-dir resumes.
The same as `kgen.train ddpm`; the logic lives in `kgen/train/ddpm.py`, tested there.
"""

import sys

from kgen.train.ddpm import main

if __name__ == "__main__":
    sys.exit(main())
