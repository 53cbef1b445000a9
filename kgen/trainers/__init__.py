"""Trainers: `keras.Model`s that bind networks, an objective and optimizers.

Importing this package registers every kgen class with Keras, so
`keras.saving.load_model` can read any kgen checkpoint afterwards.
"""

import kgen.models  # noqa: F401  (registers the networks for load_model)
from kgen.trainers.dcgan import DCGAN
from kgen.trainers.ddpm import DDPM
from kgen.trainers.vae import VAE, binarize_stochastically

__all__ = ["DCGAN", "DDPM", "VAE", "binarize_stochastically"]
