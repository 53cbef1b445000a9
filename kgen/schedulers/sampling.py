"""The reverse-process loop, shared by Keras sampling and onnxruntime inference (numpy only)."""

from typing import Any, Callable, Optional

import numpy as np

from kgen.schedulers.ddim_scheduler import DDIMScheduler
from kgen.schedulers.ddpm_scheduler import DDPMScheduler
from kgen.schedulers.dpm_solver_multistep_scheduler import DPMSolverMultistepScheduler

SAMPLERS = {"ddpm": DDPMScheduler, "ddim": DDIMScheduler, "dpmsolver++": DPMSolverMultistepScheduler}


def make_scheduler(sampler: str, schedule_config: dict, eta: float = 0.0) -> Any:
    """The scheduler named `sampler` (`ddpm`, `ddim`, `dpmsolver++`) for a model's schedule config."""
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}; got {sampler!r}.")
    if sampler == "ddim":
        return DDIMScheduler(**schedule_config, eta=eta)
    return SAMPLERS[sampler](**schedule_config)


def denoise_loop(predict: Callable, scheduler: Any, sample: np.ndarray, labels: Optional[np.ndarray] = None,
                 null_label: Optional[int] = None, guidance_scale: float = 1.0,
                 rng: Optional[np.random.Generator] = None, progress: bool = False,
                 guidance_input: bool = False) -> np.ndarray:
    """Runs `scheduler.timesteps` from `sample` (x at the first visited index) down to x_0.

    Args:
        predict: callable. `predict(x, t, labels) -> model output`, numpy in
            and out: x float32 (B, H, W, C), t and labels int32 (B,).
        scheduler: a scheduler whose `set_timesteps` was called.
        sample: array (B, H, W, C). The starting x_t.
        labels: int array (B,) or None. Classes asked for; None (or the
            null label) is unconditional.
        null_label: int or None. The network's "no class" label.
        guidance_scale: float. Classifier-free guidance weight w in
            `eps_uncond + w (eps_cond - eps_uncond)`; 1 is plain
            conditional sampling. Defaults to `1.0`.
        rng: `np.random.Generator` or None.
        progress: bool. Show a tqdm bar over the steps. Defaults to `False`.
        guidance_input: bool. The network takes the guidance scale as an
            input (a distilled student): `predict(x, t, labels, scales)`
            with scales float32 (B,), one pass per step. Defaults to `False`.

    Returns:
        float32 array (B, H, W, C) in [-1, 1].
    """
    x = np.asarray(sample, np.float32)
    batch = len(x)
    if labels is None:
        labels = np.full(batch, -1 if null_label is None else null_label, np.int32)
        guidance_scale = 1.0
    labels = np.asarray(labels, np.int32).reshape(batch)
    guided = float(guidance_scale) != 1.0 and null_label is not None and not guidance_input
    scales = np.full(batch, guidance_scale, np.float32)
    steps = scheduler.timesteps
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="denoising", unit="step", leave=False, disable=None)  # no bar in logs
    for t in steps:
        t_batch = np.full(batch, int(t), np.int32)
        if guided:
            both = predict(np.concatenate([x, x]), np.concatenate([t_batch, t_batch]),
                           np.concatenate([labels, np.full(batch, null_label, np.int32)]))
            cond, uncond = np.asarray(both[:batch], np.float64), np.asarray(both[batch:], np.float64)
            out = uncond + float(guidance_scale) * (cond - uncond)
        elif guidance_input:
            out = predict(x, t_batch, labels, scales)
        else:
            out = predict(x, t_batch, labels)
        x = scheduler.step(out, int(t), x, rng=rng)
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def partial_denoise(predict: Callable, scheduler: Any, images: np.ndarray, t: int, labels: Optional[np.ndarray] = None,
                    null_label: Optional[int] = None, guidance_scale: float = 1.0,
                    num_inference_steps: Optional[int] = None, rng: Optional[np.random.Generator] = None,
                    progress: bool = False, guidance_input: bool = False) -> np.ndarray:
    """Noises clean images for `t` steps with q(x_t | x_0), then denoises them.

    `t` counts noising steps (t = 0 returns the images unchanged), so the
    start is timestep index t - 1 and DDPM visits t indices (DDIM
    `num_inference_steps` of them).

    Returns:
        (noised, denoised): float32 arrays like `images`.
    """
    images = np.asarray(images, np.float32)
    t = int(t)
    if not 0 <= t <= scheduler.num_train_timesteps:
        raise ValueError(f"t must be in 0..{scheduler.num_train_timesteps} (the model's T); got {t}.")
    if t == 0:
        return images.copy(), images.copy()
    rng = rng or np.random.default_rng()
    noised = scheduler.add_noise(images, rng.standard_normal(images.shape), np.full(len(images), t - 1))
    steps = t if num_inference_steps is None else min(int(num_inference_steps), t)
    scheduler.set_timesteps(steps, start=t - 1)
    denoised = denoise_loop(predict, scheduler, noised, labels, null_label, guidance_scale, rng, progress,
                            guidance_input)
    return noised, denoised
