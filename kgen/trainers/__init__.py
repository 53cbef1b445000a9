"""Trainers: `keras.Model`s that bind networks, an objective and optimizers.

Every trainer is a `GenerativeTrainer`: the contract that export, evaluation,
the run recorder and the recipes use. Importing this package registers every
kgen class with Keras, so `keras.saving.load_model` can read any kgen
checkpoint afterwards.
"""

import kgen.models  # noqa: F401  (registers the networks for load_model)
from kgen.trainers.checkpoints import check_checkpoint_path, load_trainer
from kgen.trainers.dcgan import DCGAN
from kgen.trainers.ddpm import DDPM
from kgen.trainers.generative_trainer import GenerativeTrainer
from kgen.trainers.guidance_distillation import GuidanceDistillation
from kgen.trainers.progressive_distillation import ProgressiveDistillation
from kgen.trainers.vae import VAE, binarize_stochastically

__all__ = ["DCGAN", "DDPM", "VAE", "GenerativeTrainer", "GuidanceDistillation", "ProgressiveDistillation",
           "binarize_stochastically", "check_checkpoint_path", "load_trainer"]
