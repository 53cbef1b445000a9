"""The targets of diffusion distillation (Salimans & Ho, 2022; Meng et al., 2023), in `keras.ops`.

Notation: z_t = alpha_t x + sigma_t eps, with alpha_t = sqrt(alpha_bar_t)
and sigma_t = sqrt(1 - alpha_bar_t); timestep -1 means the clean image
(alpha 1, sigma 0). A network's output is eps (`"epsilon"`) or
v = alpha eps - sigma x (`"v_prediction"`); a DDIM step (eta 0) from t to s is
z_s = alpha_s x_hat + sigma_s eps_hat, with x_hat clipped to [-1, 1] as kgen's
samplers do.
"""

from typing import Any

import numpy as np
from keras import ops


def alpha_sigma(t: Any, alphas_cumprod: np.ndarray, ndim: int) -> tuple:
    """(alpha_t, sigma_t) per example, shaped to broadcast over `ndim`-d images; t = -1 is (1, 0)."""
    table = np.concatenate([np.asarray(alphas_cumprod, np.float64), [1.0]])
    index = ops.where(ops.less(t, 0), len(table) - 1, ops.cast(t, "int32"))
    ab = ops.take(ops.convert_to_tensor(table.astype(np.float32)), index, axis=0)
    ab = ops.reshape(ab, (-1,) + (1,) * (ndim - 1))
    return ops.sqrt(ab), ops.sqrt(1.0 - ab)


def x0_and_eps(output: Any, z: Any, alpha: Any, sigma: Any, prediction_type: str = "epsilon") -> tuple:
    """(x_hat, eps_hat) implied by a network's output at z_t, x_hat clipped to [-1, 1] (sigma > 0)."""
    output, z = ops.cast(output, "float32"), ops.cast(z, "float32")
    if prediction_type == "epsilon":
        x0 = (z - sigma * output) / alpha
    else:
        x0 = alpha * z - sigma * output
    x0 = ops.clip(x0, -1.0, 1.0)
    return x0, (z - alpha * x0) / sigma


def velocity(x0: Any, eps: Any, alpha: Any, sigma: Any) -> Any:
    """v = alpha eps - sigma x (Salimans & Ho, 2022): what a v-prediction network outputs."""
    return alpha * eps - sigma * x0


def ddim_step(x0: Any, eps: Any, alpha_next: Any, sigma_next: Any) -> Any:
    """z at the next timestep from the predicted (x, eps): DDIM with eta = 0."""
    return alpha_next * x0 + sigma_next * eps


def guided_output(conditional: Any, unconditional: Any, scale: Any) -> Any:
    """Classifier-free guidance: uncond + w (cond - uncond), with w per example."""
    scale = ops.reshape(ops.cast(scale, "float32"), (-1,) + (1,) * (len(conditional.shape) - 1))
    unconditional = ops.cast(unconditional, "float32")
    return unconditional + scale * (ops.cast(conditional, "float32") - unconditional)


def one_step_target(z: Any, z_next: Any, alpha: Any, sigma: Any, alpha_next: Any, sigma_next: Any) -> Any:
    """The x a student must predict at z_t so that one DDIM step lands on `z_next` (Salimans & Ho, eq. 8).

    Solves z_next = alpha_next x + sigma_next (z - alpha x) / sigma for x.
    Well defined because the signal-to-noise ratio falls with t:
    alpha_next / sigma_next > alpha / sigma.
    """
    ratio = sigma_next / sigma
    return (z_next - ratio * z) / (alpha_next - ratio * alpha)


def trailing_grid(position: Any, num_steps: Any, num_train_timesteps: int) -> tuple:
    """The timesteps of step `position` (0 = the first, from pure noise) of an n-step trailing grid.

    Returns `(t, t_mid, t_next)`: the step's start `round(k T / n) - 1`
    with k = n - position, its end (k - 1; -1 at the last step) and the
    midpoint the teacher visits on the grid of 2n
    (`kgen.schedulers.trailing_timesteps`). `num_steps` may be a tensor.
    """
    total = float(num_train_timesteps)
    n = ops.cast(num_steps, "float32")
    k = n - ops.cast(position, "float32")

    def index(fraction):
        return ops.cast(ops.round(fraction * total), "int32") - 1

    return index(k / n), index((2.0 * k - 1.0) / (2.0 * n)), index((k - 1.0) / n)
