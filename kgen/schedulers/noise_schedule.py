"""The forward process q(x_t | x_0) shared by kgen's samplers (numpy only)."""

from typing import Any, Optional

import numpy as np

from kgen.schedulers.beta_schedules import make_beta_schedule

PREDICTION_TYPES = ("epsilon", "v_prediction")
TIMESTEP_SPACINGS = ("linspace", "trailing")


class NoiseSchedule:
    """Tables of a discrete forward process and the conversions every sampler needs.

    Timestep index `t` in [0, T) means `t + 1` noising steps: `x_t` has
    `alpha_bar[t]` of the signal's variance. Pure numpy (float64 tables), so
    the ONNX runtime path (`kgen.infer`) samples without a framework.

    Args:
        num_train_timesteps: int. T. Defaults to `1000`.
        beta_schedule: str. `"linear"` or `"cosine"`. Defaults to `"linear"`.
        prediction_type: str. What the network predicts: `"epsilon"` (the
            noise) or `"v_prediction"`. Defaults to `"epsilon"`.
        clip_sample: bool. Clip predicted x_0 to [-1, 1]. Defaults to `True`.
        timestep_spacing: str. How `set_timesteps(n)` picks the indices it
            visits: `"linspace"` (from the start down to 0, both included) or
            `"trailing"` (`round(k (start + 1) / n) - 1` for k = n..1, the
            spacing of Lin et al. that distilled students use: the grid of n
            steps is every other point of the grid of 2n). Defaults to
            `"linspace"`.

    References:
        Lin et al., "Common Diffusion Noise Schedules and Sample Steps are
        Flawed", WACV 2024 (trailing timesteps).
    """

    def __init__(self, num_train_timesteps=1000, beta_schedule="linear", prediction_type="epsilon",
                 clip_sample=True, timestep_spacing="linspace"):
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}; got {prediction_type!r}.")
        if timestep_spacing not in TIMESTEP_SPACINGS:
            raise ValueError(f"timestep_spacing must be one of {TIMESTEP_SPACINGS}; got {timestep_spacing!r}.")
        self.num_train_timesteps = int(num_train_timesteps)
        self.beta_schedule = beta_schedule
        self.prediction_type = prediction_type
        self.clip_sample = bool(clip_sample)
        self.timestep_spacing = timestep_spacing
        self.betas = make_beta_schedule(beta_schedule, num_train_timesteps)
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = np.cumprod(self.alphas)
        self.timesteps = np.arange(self.num_train_timesteps)[::-1].copy()

    def get_config(self):
        config = {"num_train_timesteps": self.num_train_timesteps, "beta_schedule": self.beta_schedule,
                  "prediction_type": self.prediction_type, "clip_sample": self.clip_sample}
        if self.timestep_spacing != "linspace":  # files of earlier versions read the same
            config["timestep_spacing"] = self.timestep_spacing
        return config

    @classmethod
    def from_config(cls, config, **overrides):
        return cls(**{**config, **overrides})

    def check_timesteps(self, t: Any) -> np.ndarray:
        t = np.asarray(t)
        if t.size and (t.min() < 0 or t.max() >= self.num_train_timesteps):
            raise ValueError(f"timesteps must be in [0, {self.num_train_timesteps}); got {t.min()}..{t.max()}.")
        return t.astype(np.int64)

    def _alpha_bar(self, t, ndim):
        ab = self.alphas_cumprod[self.check_timesteps(t)]
        return np.reshape(ab, np.shape(ab) + (1,) * (ndim - np.ndim(ab)))

    def add_noise(self, original: np.ndarray, noise: np.ndarray, t: Any) -> np.ndarray:
        """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) noise."""
        original = np.asarray(original, np.float64)
        ab = self._alpha_bar(t, original.ndim)
        return (np.sqrt(ab) * original + np.sqrt(1.0 - ab) * np.asarray(noise, np.float64)).astype(np.float32)

    def get_velocity(self, original: np.ndarray, noise: np.ndarray, t: Any) -> np.ndarray:
        """v = sqrt(alpha_bar_t) noise - sqrt(1 - alpha_bar_t) x_0 (Salimans & Ho, 2022)."""
        original = np.asarray(original, np.float64)
        ab = self._alpha_bar(t, original.ndim)
        return (np.sqrt(ab) * np.asarray(noise, np.float64) - np.sqrt(1.0 - ab) * original).astype(np.float32)

    def predict_original_and_noise(self, model_output: np.ndarray, t: Any, sample: np.ndarray) -> tuple:
        """(x_0, epsilon) implied by the network's output at timestep index t."""
        sample = np.asarray(sample, np.float64)
        out = np.asarray(model_output, np.float64)
        ab = self._alpha_bar(t, sample.ndim)
        if self.prediction_type == "epsilon":
            x0 = (sample - np.sqrt(1.0 - ab) * out) / np.sqrt(ab)
        else:
            x0 = np.sqrt(ab) * sample - np.sqrt(1.0 - ab) * out
        if self.clip_sample:
            x0 = np.clip(x0, -1.0, 1.0)
        eps = (sample - np.sqrt(ab) * x0) / np.sqrt(1.0 - ab)
        return x0, eps

    def set_timesteps(self, num_inference_steps: Optional[int] = None, start: Optional[int] = None) -> None:
        """Chooses the descending timestep indices a sampler visits.

        Args:
            num_inference_steps: int or None. Steps; None is every index.
            start: int or None. Highest index (partial denoising from x_t);
                None is T - 1.
        """
        start = self.num_train_timesteps - 1 if start is None else int(start)
        if not 0 <= start < self.num_train_timesteps:
            raise ValueError(f"start must be in [0, {self.num_train_timesteps}); got {start}.")
        n = start + 1 if num_inference_steps is None else int(num_inference_steps)
        if not 1 <= n <= start + 1:
            raise ValueError(f"num_inference_steps must be in 1..{start + 1}; got {num_inference_steps}.")
        if self.timestep_spacing == "trailing":
            self.timesteps = trailing_timesteps(n, start + 1)
        else:  # evenly spaced from `start`, ending at 0 when n > 1
            self.timesteps = np.unique(np.round(np.linspace(start, 0, n)).astype(np.int64))[::-1].copy()
        return self.timesteps

    def previous_timestep(self, t: int) -> int:
        """The index after t in `timesteps`, or -1 (meaning x_0) after the last."""
        position = np.flatnonzero(self.timesteps == int(t))
        if not len(position):
            raise ValueError(f"timestep {t} is not in this sampler's timesteps; call set_timesteps first.")
        i = int(position[0]) + 1
        return int(self.timesteps[i]) if i < len(self.timesteps) else -1

    def alpha_bar_prev(self, t: int) -> float:
        prev = self.previous_timestep(t)
        return 1.0 if prev < 0 else float(self.alphas_cumprod[prev])


def trailing_timesteps(num_steps: int, num_train_timesteps: int) -> np.ndarray:
    """`round(k T / n) - 1` for k = n, n - 1, ..., 1: n descending indices that end at T / n - 1.

    The grid of n steps is every other index of the grid of 2n (the same
    fraction k / n = 2k / 2n rounds the same way), so a student trained to
    do two of its teacher's steps in one visits its teacher's indices.
    """
    n, total = int(num_steps), int(num_train_timesteps)
    k = np.arange(n, 0, -1, dtype=np.int64)
    return np.round(k * total / n).astype(np.int64) - 1
