"""What the distillation trainers share: a v-prediction student that takes the guidance scale as an input."""

from typing import Any, Callable, Optional, Sequence

import keras
import numpy as np
from keras import ops

from kgen import metadata as kgen_metadata
from kgen.backend import Phase
from kgen.schedulers import NoiseSchedule, denoise_loop, make_scheduler, partial_denoise
from kgen.trainers.generative_trainer import GenerativeTrainer


class StudentDenoiser(GenerativeTrainer):
    """A distilled denoiser: one network pass per step, guidance included, on a trailing grid.

    The student is a `UNet` built with `guidance_input=True`: its inputs are
    images, timesteps, labels and the classifier-free guidance scale, and
    its output is v (`"v_prediction"`), which, unlike eps, still says what
    the image is at the noisiest timestep, where a few-step sampler starts.
    Sampling runs kgen's numpy samplers (DDIM by default) over the
    schedule's trailing timesteps (`timestep_spacing="trailing"`), so the
    exported file samples with `kgen.infer` like any denoiser; its metadata
    names the steps it was distilled for (`sampling.num_steps`), which
    consumers use when no step count is given.

    Subclasses set `self.student`, call `init_student_schedule`, and
    implement `sampling_steps` and `compute_phase_loss`.
    """

    loss_keys = ("loss",)
    sample_options = ("sampler", "num_steps", "eta", "guidance_scale", "progress")

    def init_student_schedule(self, num_train_timesteps: int, beta_schedule: str) -> None:
        if not getattr(self.student, "guidance_input", False):
            raise ValueError("the student must be a UNet built with guidance_input=True.")
        self.schedule = NoiseSchedule(num_train_timesteps, beta_schedule, "v_prediction",
                                      timestep_spacing="trailing")
        self.num_classes = int(getattr(self.student, "num_classes", 0))
        self.image_shape = tuple(int(d) for d in self.student.inputs[0].shape[1:])

    @property
    def null_label(self) -> Optional[int]:
        """The label that means "no class" (`num_classes`), or None if unconditional."""
        return self.num_classes if self.num_classes else None

    @property
    def sampling_steps(self) -> int:
        """The number of sampling steps the student is trained for now."""
        raise NotImplementedError

    def compile(self, optimizer: Optional[keras.optimizers.Optimizer] = None, **kwargs: Any) -> None:
        """Configures the student's optimizer. Defaults to `Adam(1e-4)`."""
        optimizer = optimizer or keras.optimizers.Adam(1e-4)
        self.compile_phases([Phase("student", optimizer, lambda: self.student.trainable_variables)], **kwargs)

    def call(self, inputs, training=False):
        return self.student(inputs, training=training)

    def draw_guidance(self, batch: int, low: float, high: float) -> Any:
        """Per-example guidance scales, uniform in [low, high]."""
        return self.batch_random(keras.random.uniform, (batch,), minval=low, maxval=high)

    def conditioning(self, labels: Any, batch: int, label_dropout: float) -> Any:
        """The labels with a fraction `label_dropout` replaced by the null label (zeros if unconditional)."""
        if labels is None or not self.num_classes:
            return ops.zeros((batch,), "int32")
        labels = ops.reshape(ops.cast(labels, "int32"), (batch,))
        drop = self.batch_random(keras.random.uniform, (batch,)) < label_dropout
        return ops.where(drop, self.num_classes, labels)

    def predict_fn(self, batch_size: int = 256) -> Callable:
        """`predict(x, t, labels, guidance_scales) -> v` in numpy, the samplers' contract for a student."""

        def predict(x, t, labels, scales):
            outs = []
            for i in range(0, len(x), batch_size):
                sl = slice(i, i + batch_size)
                outs.append(ops.convert_to_numpy(self.student(
                    [ops.convert_to_tensor(x[sl]), ops.convert_to_tensor(t[sl]),
                     ops.convert_to_tensor(labels[sl]), ops.convert_to_tensor(scales[sl])], training=False)))
            return np.concatenate(outs)

        return predict

    def _sample(self, count, labels, seed, sampler="ddim", num_steps=None, eta=0.0, guidance_scale=1.0,
                progress=False):
        """Reverse process from pure noise; `num_steps` None is the steps the student is trained for."""
        scheduler = make_scheduler(sampler, self.schedule.get_config(), eta)
        scheduler.set_timesteps(num_steps or self.sampling_steps)
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((count, *self.image_shape)).astype(np.float32)
        return denoise_loop(self.predict_fn(), scheduler, x, labels, self.null_label, guidance_scale, rng,
                            progress, guidance_input=True)

    def denoise(self, images: np.ndarray, t: int, sampler: str = "ddim", num_steps: Optional[int] = None,
                eta: float = 0.0, labels: Optional[Sequence[int]] = None, guidance_scale: float = 1.0, seed: int = 0,
                progress: bool = False) -> np.ndarray:
        """Partial denoising: noise `images` for `t` steps, run the reverse process back; `(noised, denoised)`."""
        images = np.asarray(images, np.float32)
        scheduler = make_scheduler(sampler, self.schedule.get_config(), eta)
        return partial_denoise(self.predict_fn(), scheduler, images, t, labels, self.null_label, guidance_scale,
                               num_steps or self.sampling_steps, np.random.default_rng(seed), progress,
                               guidance_input=True)

    def inference_parts(self) -> dict:
        def denoiser():
            return self.student, {
                "kind": "denoiser", "input_names": ["images", "timesteps", "labels", "guidance_scales"],
                "output_names": ["model_output"], "image_shape": list(self.image_shape),
                "num_classes": self.num_classes, "null_label": self.null_label, "weights": "student",
                "guidance_input": True, "sampling": {"sampler": "ddim", "num_steps": int(self.sampling_steps)},
                "schedule": kgen_metadata.schedule_entry(self.schedule)}

        return {"denoiser": denoiser}
