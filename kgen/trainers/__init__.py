"""Trainers: `keras.Model`s that bind networks, an objective and optimizers."""

from kgen.trainers.dcgan import DCGAN

__all__ = ["DCGAN"]
