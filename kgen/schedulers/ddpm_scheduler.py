"""DDPM ancestral sampling step."""

from typing import Optional

import numpy as np

from kgen.schedulers.noise_schedule import NoiseSchedule


class DDPMScheduler(NoiseSchedule):
    """Ancestral sampler of Ho et al.: x_{t'} ~ q(x_{t'} | x_t, x_0 = predicted x_0).

    With fewer steps than T the same posterior is taken between consecutive
    visited indices t > t' (the "respaced" DDPM of Nichol & Dhariwal). The
    variance is the posterior's ("fixed small").

    Args: those of `NoiseSchedule`.

    Example:
    >>> scheduler = DDPMScheduler(1000, "cosine")
    >>> scheduler.set_timesteps(1000)
    >>> for t in scheduler.timesteps:
    ...     x = scheduler.step(model(x, t), t, x, rng)

    References:
        Ho et al., "Denoising Diffusion Probabilistic Models", NeurIPS 2020.
    """

    def step(self, model_output: np.ndarray, t: int, sample: np.ndarray, rng: Optional[np.random.Generator] = None,
             noise: Optional[np.ndarray] = None) -> np.ndarray:
        """x at the next visited index from x_t and the network's output.

        Args:
            model_output: array like `sample`. Predicted noise (or v).
            t: int. Current timestep index.
            sample: array (B, H, W, C). x_t.
            rng: `np.random.Generator` or None. Source of the noise.
            noise: array or None. The noise itself (overrides `rng`); zeros
                give the posterior mean.

        Returns:
            float32 array like `sample`.
        """
        t = int(t)
        sample = np.asarray(sample, np.float64)
        x0, _ = self.predict_original_and_noise(model_output, t, sample)
        ab_t = float(self.alphas_cumprod[t])
        ab_prev = self.alpha_bar_prev(t)
        beta = 1.0 - ab_t / ab_prev
        mean = ((np.sqrt(ab_prev) * beta / (1.0 - ab_t)) * x0
                + (np.sqrt(1.0 - beta) * (1.0 - ab_prev) / (1.0 - ab_t)) * sample)
        if self.previous_timestep(t) < 0:
            return mean.astype(np.float32)
        variance = (1.0 - ab_prev) / (1.0 - ab_t) * beta
        if noise is None:
            noise = (rng or np.random.default_rng()).standard_normal(sample.shape)
        return (mean + np.sqrt(variance) * np.asarray(noise, np.float64)).astype(np.float32)
