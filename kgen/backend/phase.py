"""A training phase: one optimizer updating one group of variables."""

import dataclasses
from typing import Callable


@dataclasses.dataclass(frozen=True)
class Phase:
    """One optimizer step inside a training step.

    A GAN has two phases (discriminator, then generator); a VAE or a
    diffusion model has one. Phases run in order, and each sees the variables
    updated by the phases before it.

    Args:
        name: str. Passed to the trainer's `compute_phase_loss`.
        optimizer: `keras.optimizers.Optimizer`. Updates this phase's variables.
        variables: callable returning the list of trainable variables that
            this phase updates.
    """

    name: str
    optimizer: object
    variables: Callable[[], list]
