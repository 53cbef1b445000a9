"""DDIM sampling step."""

from typing import Optional

import numpy as np

from kgen.schedulers.noise_schedule import NoiseSchedule


class DDIMScheduler(NoiseSchedule):
    """Song et al.'s sampler: any number of steps, deterministic at eta = 0.

    x_{t'} = sqrt(ab') x0 + sqrt(1 - ab' - sigma^2) eps + sigma z, with
    sigma = eta sqrt((1 - ab') / (1 - ab)) sqrt(1 - ab / ab'). At eta = 1 and
    every index visited this is the DDPM posterior (tested).

    Args:
        eta: float. 0 is deterministic, 1 is DDPM-like. Defaults to `0.0`.
        **kwargs: those of `NoiseSchedule`.

    Example:
    >>> scheduler = DDIMScheduler(1000, "linear")
    >>> scheduler.set_timesteps(50)

    References:
        Song et al., "Denoising Diffusion Implicit Models", ICLR 2021.
    """

    def __init__(self, num_train_timesteps=1000, beta_schedule="linear", prediction_type="epsilon",
                 clip_sample=True, eta=0.0, timestep_spacing="linspace"):
        super().__init__(num_train_timesteps, beta_schedule, prediction_type, clip_sample, timestep_spacing)
        if float(eta) < 0:
            raise ValueError(f"eta must be >= 0; got {eta}.")
        self.eta = float(eta)

    def step(self, model_output: np.ndarray, t: int, sample: np.ndarray, rng: Optional[np.random.Generator] = None,
             noise: Optional[np.ndarray] = None) -> np.ndarray:
        """x at the next visited index (see `DDPMScheduler.step` for the arguments)."""
        t = int(t)
        sample = np.asarray(sample, np.float64)
        x0, eps = self.predict_original_and_noise(model_output, t, sample)
        ab_t = float(self.alphas_cumprod[t])
        ab_prev = self.alpha_bar_prev(t)
        sigma = self.eta * np.sqrt((1.0 - ab_prev) / (1.0 - ab_t)) * np.sqrt(1.0 - ab_t / ab_prev)
        out = np.sqrt(ab_prev) * x0 + np.sqrt(max(1.0 - ab_prev - sigma**2, 0.0)) * eps
        if sigma > 0 and self.previous_timestep(t) >= 0:
            if noise is None:
                noise = (rng or np.random.default_rng()).standard_normal(sample.shape)
            out = out + sigma * np.asarray(noise, np.float64)
        return out.astype(np.float32)
