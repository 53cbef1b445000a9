"""Guidance distillation: a student that gives a guided teacher's output in one pass."""

import keras
from keras import ops

from kgen.objectives import distillation
from kgen.schedulers import NoiseSchedule
from kgen.trainers.student_denoiser import StudentDenoiser


@keras.saving.register_keras_serializable(package="kgen")
class GuidanceDistillation(StudentDenoiser):
    """Stage one of guided distillation: classifier-free guidance in one network pass.

    Each step noises a batch at timesteps uniform in [0, T), draws a
    guidance scale w per example uniform in `guidance_range`, and runs the
    frozen teacher twice (the labels, and the null label): its guided
    output uncond + w (cond - uncond) gives (x_hat, eps_hat) as kgen's
    samplers compute them (x_hat clipped). The student, given w as an input,
    regresses the v of that pair. Labels are dropped to the null label with
    probability `label_dropout`, so the student also samples unconditionally
    (where guidance does nothing). The student is usually a copy of the
    teacher with a guidance input (`student_of`), so it starts close.

    Args:
        teacher: `UNet` (images, timesteps, labels), trained as a `DDPM`.
        student: `UNet` with `guidance_input=True`, the teacher's shape.
        num_train_timesteps: int. The teacher's T. Defaults to `1000`.
        beta_schedule: str. The teacher's schedule. Defaults to `"cosine"`.
        teacher_prediction_type: str. `"epsilon"` or `"v_prediction"`.
            Defaults to `"epsilon"`.
        guidance_range: (float, float). Scales drawn in training.
            Defaults to `(1.0, 5.0)`.
        label_dropout: float. Defaults to `0.1`.
        sample_steps: int. Steps the student samples with by default.
            Defaults to `32`.
        seed: int or None. Defaults to `None`.

    Example:
    >>> distill = GuidanceDistillation(teacher, GuidanceDistillation.student_of(teacher), seed=0)
    >>> distill.compile()
    >>> distill.fit(dataset, epochs=1)
    >>> images = distill.sample(labels=np.arange(10), guidance_scale=3.0)

    References:
        Meng et al., "On Distillation of Guided Diffusion Models", CVPR 2023.
        Salimans and Ho, "Progressive Distillation for Fast Sampling of
        Diffusion Models", ICLR 2022 (v-prediction).
    """

    model_args = ("teacher", "student")

    def __init__(self, teacher, student, num_train_timesteps=1000, beta_schedule="cosine",
                 teacher_prediction_type="epsilon", guidance_range=(1.0, 5.0), label_dropout=0.1, sample_steps=32,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        low, high = (float(g) for g in guidance_range)
        if not 0.0 <= low <= high:
            raise ValueError(f"guidance_range must be (low, high) with 0 <= low <= high; got {guidance_range}.")
        if not 0.0 <= float(label_dropout) < 1.0 or int(sample_steps) < 1:
            raise ValueError(f"label_dropout must be in [0, 1) and sample_steps >= 1; got {label_dropout}, "
                             f"{sample_steps}.")
        self.teacher = teacher
        self.teacher.trainable = False
        self.student = student
        self.init_student_schedule(num_train_timesteps, beta_schedule)
        self.teacher_schedule = NoiseSchedule(num_train_timesteps, beta_schedule, teacher_prediction_type)
        self.num_train_timesteps = int(num_train_timesteps)
        self.beta_schedule = beta_schedule
        self.teacher_prediction_type = teacher_prediction_type
        self.guidance_range = (low, high)
        self.label_dropout = float(label_dropout)
        self.sample_steps = int(sample_steps)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    @staticmethod
    def student_of(teacher: keras.Model) -> keras.Model:
        """A `UNet` like `teacher` with a guidance input, holding its weights (the new layers start at zero)."""
        config = {key: value for key, value in teacher.get_config().items() if key not in ("name", "trainable")}
        student = type(teacher).from_config({**config, "guidance_input": True})
        for layer in teacher.layers:
            if layer.weights:
                student.get_layer(layer.name).set_weights(layer.get_weights())
        return student

    @property
    def sampling_steps(self) -> int:
        return self.sample_steps

    def compute_phase_loss(self, phase, data):
        images, labels = data if isinstance(data, (tuple, list)) else (data, None)
        images = ops.cast(images, "float32")
        batch = ops.shape(images)[0]
        t = self.batch_random(keras.random.randint, (batch,), minval=0, maxval=self.num_train_timesteps)
        noise = self.batch_random(keras.random.normal, ops.shape(images))
        labels = self.conditioning(labels, batch, self.label_dropout)
        scales = self.draw_guidance(batch, *self.guidance_range)
        alpha, sigma = distillation.alpha_sigma(t, self.schedule.alphas_cumprod, len(images.shape))
        z = alpha * images + sigma * noise
        nulls = ops.full((batch,), self.null_label if self.null_label is not None else 0, "int32")
        both = self.teacher([ops.concatenate([z, z]), ops.concatenate([t, t]), ops.concatenate([labels, nulls])],
                            training=False)
        guided = distillation.guided_output(both[:batch], both[batch:], scales)
        x0, eps = distillation.x0_and_eps(guided, z, alpha, sigma, self.teacher_prediction_type)
        target = ops.stop_gradient(distillation.velocity(x0, eps, alpha, sigma))
        output = self.student([z, t, labels, scales], training=True)
        loss = ops.mean(ops.square(ops.cast(output, "float32") - target))
        # The error against the target's size: comparable across rounds (and a second key keeps
        # Keras from swapping logs that hold only "loss" for its unused loss tracker's zero).
        return loss, {"loss": loss, "relative_loss": loss / ops.mean(ops.square(target))}

    def loaded_export(self, part: str, network: keras.Model) -> None:
        # An exported student: training continues from it.
        self.student.set_weights(network.get_weights())

    def get_config(self):
        return self.config_with_models(
            num_train_timesteps=self.num_train_timesteps, beta_schedule=self.beta_schedule,
            teacher_prediction_type=self.teacher_prediction_type, guidance_range=list(self.guidance_range),
            label_dropout=self.label_dropout, sample_steps=self.sample_steps, seed=self.seed,
        )
