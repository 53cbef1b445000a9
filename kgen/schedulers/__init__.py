"""Noise schedules and samplers, numpy only (diffusers' contract).

`set_timesteps(n)`, `timesteps`, `step(model_output, t, x_t) -> x_prev`,
`add_noise(x0, noise, t)`. Training gathers the same float64 tables into
`keras.ops` (`kgen.objectives.denoising`); sampling steps in numpy for both
the Keras models and onnxruntime, so the two share one implementation.
"""

from kgen.schedulers.beta_schedules import BETA_SCHEDULES, make_beta_schedule
from kgen.schedulers.ddim_scheduler import DDIMScheduler
from kgen.schedulers.ddpm_scheduler import DDPMScheduler
from kgen.schedulers.dpm_solver_multistep_scheduler import DPMSolverMultistepScheduler
from kgen.schedulers.noise_schedule import PREDICTION_TYPES, TIMESTEP_SPACINGS, NoiseSchedule, trailing_timesteps
from kgen.schedulers.sampling import SAMPLERS, denoise_loop, make_scheduler, partial_denoise
from kgen.schedulers.step_coefficients import LINEAR_SAMPLERS, apply_steps, draw_step_noise, step_coefficients

__all__ = [
    "BETA_SCHEDULES",
    "LINEAR_SAMPLERS",
    "PREDICTION_TYPES",
    "SAMPLERS",
    "TIMESTEP_SPACINGS",
    "DDIMScheduler",
    "DDPMScheduler",
    "DPMSolverMultistepScheduler",
    "NoiseSchedule",
    "apply_steps",
    "denoise_loop",
    "draw_step_noise",
    "make_beta_schedule",
    "make_scheduler",
    "partial_denoise",
    "step_coefficients",
    "trailing_timesteps",
]
