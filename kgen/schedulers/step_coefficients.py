"""The deterministic samplers as tables: each step is linear in x, the predicted x_0 and the previous one."""

from typing import Callable, Optional

import numpy as np

from kgen.schedulers.sampling import make_scheduler

# Samplers whose every step has the form below (DDPM's ancestral step does too, but it is rarely
# the sampler one ships; add it here when needed).
LINEAR_SAMPLERS = ("ddim", "dpmsolver++")


def step_coefficients(sampler: str, schedule_config: dict, num_steps: int, eta: float = 0.0) -> dict:
    """Per-step coefficients of `sampler` with `num_steps` steps.

    Step i (at timestep index `timesteps[i]`) of DDIM and DPM-Solver++(2M) is

        x0_i   = clip(p_i * x + q_i * output)          (clip only if `clip_sample`)
        x_next = a_i * x + b_i * x0_i + c_i * x0_{i-1} + sigma_i * z_i

    where `output` is the network's (guided) output, `z_i` standard normal
    noise (DDIM with eta > 0) and `x0_{i-1}` the previous step's prediction
    (DPM-Solver++'s second order). The numbers come from the float64 tables
    of `kgen.schedulers`; `tests/test_schedulers.py` checks that applying
    them reproduces each scheduler's `step`.

    Args:
        sampler: str. `"ddim"` or `"dpmsolver++"`.
        schedule_config: dict. The `NoiseSchedule` config (e.g. a model's
            metadata `schedule`, without its table).
        num_steps: int. Sampling steps.
        eta: float. DDIM's eta. Defaults to `0.0`.

    Returns:
        dict: `timesteps` (int32), `p`, `q`, `a`, `b`, `c`, `sigma` (float64
        arrays of length `num_steps`), `clip_sample` (bool).
    """
    if sampler not in LINEAR_SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(LINEAR_SAMPLERS)} for a sampler graph; got {sampler!r}.")
    if sampler != "ddim" and eta:
        raise ValueError(f"eta applies to ddim only; got eta={eta} with {sampler}.")
    scheduler = make_scheduler(sampler, schedule_config, eta)
    timesteps = scheduler.set_timesteps(num_steps)
    n = len(timesteps)
    table = {key: np.zeros(n) for key in ("p", "q", "a", "b", "c", "sigma")}
    lambda_prev = None
    for i, t in enumerate(timesteps):
        ab = float(scheduler.alphas_cumprod[t])
        previous = scheduler.previous_timestep(t)
        ab_next = 1.0 if previous < 0 else float(scheduler.alphas_cumprod[previous])
        if scheduler.prediction_type == "epsilon":  # x0 = (x - sqrt(1 - ab) eps) / sqrt(ab)
            table["p"][i], table["q"][i] = 1.0 / np.sqrt(ab), -np.sqrt(1.0 - ab) / np.sqrt(ab)
        else:  # x0 = sqrt(ab) x - sqrt(1 - ab) v
            table["p"][i], table["q"][i] = np.sqrt(ab), -np.sqrt(1.0 - ab)
        if sampler == "ddim":
            # x' = sqrt(ab') x0 + sqrt(1 - ab' - sigma^2) eps + sigma z, eps = (x - sqrt(ab) x0) / sqrt(1 - ab)
            sigma = eta * np.sqrt((1.0 - ab_next) / (1.0 - ab)) * np.sqrt(1.0 - ab / ab_next)
            direction = np.sqrt(max(1.0 - ab_next - sigma**2, 0.0)) / np.sqrt(1.0 - ab)
            table["a"][i] = direction
            table["b"][i] = np.sqrt(ab_next) - direction * np.sqrt(ab)
            table["sigma"][i] = sigma if previous >= 0 else 0.0
            continue
        # DPM-Solver++(2M), as DPMSolverMultistepScheduler.step.
        lambda_s = 0.5 * (np.log(ab) - np.log1p(-ab))
        if previous < 0:  # the last step returns the prediction
            table["b"][i] = 1.0
        else:
            lambda_t = 0.5 * (np.log(ab_next) - np.log1p(-ab_next))
            h = lambda_t - lambda_s
            scale = -np.sqrt(ab_next) * np.expm1(-h)
            table["a"][i] = np.sqrt((1.0 - ab_next) / (1.0 - ab))
            if lambda_prev is not None and previous != 0:  # second order: D = x0 + (x0 - x0') / (2 r)
                r = (lambda_s - lambda_prev) / h
                table["b"][i] = scale * (1.0 + 1.0 / (2.0 * r))
                table["c"][i] = -scale / (2.0 * r)
            else:
                table["b"][i] = scale
        lambda_prev = lambda_s
    return {"timesteps": timesteps.astype(np.int32), **table, "clip_sample": bool(scheduler.clip_sample)}


def apply_steps(coefficients: dict, predict: Callable, x: np.ndarray,
                step_noise: Optional[np.ndarray] = None) -> np.ndarray:
    """Runs the table of `step_coefficients` in numpy: `predict(x, t) -> output` (guidance included).

    The reference the sampler graph is tested against, and the definition of
    what its `step_noise` input means (one draw per step, zero where sigma is 0).
    """
    x = np.asarray(x, np.float64)
    x0_prev = np.zeros_like(x)
    for i, t in enumerate(coefficients["timesteps"]):
        x0 = coefficients["p"][i] * x + coefficients["q"][i] * np.asarray(predict(x.astype(np.float32), int(t)),
                                                                          np.float64)
        if coefficients["clip_sample"]:
            x0 = np.clip(x0, -1.0, 1.0)
        x_next = coefficients["a"][i] * x + coefficients["b"][i] * x0 + coefficients["c"][i] * x0_prev
        if coefficients["sigma"][i] > 0:
            x_next = x_next + coefficients["sigma"][i] * np.asarray(step_noise[i], np.float64)
        x, x0_prev = x_next, x0
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def draw_step_noise(coefficients: dict, shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """The per-step noise `z_i` (N, *shape) in the order `denoise_loop` draws it: zeros where sigma is 0."""
    noise = np.zeros((len(coefficients["timesteps"]), *shape), np.float32)
    for i, sigma in enumerate(coefficients["sigma"]):
        if sigma > 0:
            noise[i] = rng.standard_normal(shape)
    return noise
