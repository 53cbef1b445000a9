"""Progressive distillation: rounds that halve a student's sampling steps."""

import math
from typing import Optional

import keras
from keras import ops

from kgen.objectives import distillation
from kgen.trainers.generative_trainer import frozen_copy
from kgen.trainers.student_denoiser import StudentDenoiser


@keras.saving.register_keras_serializable(package="kgen")
class ProgressiveDistillation(StudentDenoiser):
    """Stage two of guided distillation: each round, one student step does two of the previous round's.

    The run starts from a student that samples well in `teacher_steps`
    DDIM steps (a `GuidanceDistillation` export) and ends at
    `student_steps` (a power-of-two fraction of it), one round per halving,
    `round_steps` training steps each. In round r the student's grid has
    n = teacher_steps / 2^(r + 1) trailing steps; each training step picks
    one of them per example, noises a batch to its start t, runs two DDIM
    steps t -> t_mid -> t_next of the frozen previous-round student
    (`previous`) and regresses the v whose single DDIM step lands on the
    same z_{t_next} (`distillation.one_step_target`). Guidance scales and
    label dropout are drawn as in `GuidanceDistillation`, and the teacher
    steps with the same scale. At the end of a round the student's weights
    are copied into `previous` inside the training step, so the schedule of
    rounds is part of the step count and a resumed run continues its round.

    Args:
        student: `UNet` with `guidance_input=True`, v-prediction, already
            distilled for `teacher_steps` (its copy is the first teacher).
        num_train_timesteps: int. T. Defaults to `1000`.
        beta_schedule: str. Defaults to `"cosine"`.
        teacher_steps: int. Steps of the starting student. Defaults to `32`.
        student_steps: int. Steps at the end; teacher_steps / student_steps
            must be a power of two >= 2. Defaults to `4`.
        round_steps: int. Training steps per round. Defaults to `2000`.
        guidance_range: (float, float). Defaults to `(1.0, 5.0)`.
        label_dropout: float. Defaults to `0.1`.
        seed: int or None. Defaults to `None`.

    Example:
    >>> distill = ProgressiveDistillation(student, teacher_steps=32, student_steps=4, round_steps=2000, seed=0)
    >>> distill.compile()
    >>> distill.fit(dataset, epochs=20)
    >>> images = distill.sample(labels=np.arange(10), guidance_scale=3.0)  # 4 steps, 4 passes

    References:
        Salimans and Ho, "Progressive Distillation for Fast Sampling of
        Diffusion Models", ICLR 2022.
        Meng et al., "On Distillation of Guided Diffusion Models", CVPR 2023.
    """

    model_args = ("student",)
    # Exports whose student this trainer starts from (`kgen.export.warm_start.load_export`).
    warm_start_trainers = ("GuidanceDistillation", "ProgressiveDistillation")

    def __init__(self, student, num_train_timesteps=1000, beta_schedule="cosine", teacher_steps=32, student_steps=4,
                 round_steps=2000, guidance_range=(1.0, 5.0), label_dropout=0.1, seed=None, **kwargs):
        super().__init__(**kwargs)
        teacher_steps, student_steps = int(teacher_steps), int(student_steps)
        rounds = math.log2(teacher_steps / student_steps) if teacher_steps > 0 and student_steps > 0 else 0
        if rounds < 1 or rounds != int(rounds) or teacher_steps > int(num_train_timesteps):
            raise ValueError("teacher_steps / student_steps must be a power of two >= 2 and teacher_steps <= T; "
                             f"got {teacher_steps} / {student_steps} (T = {num_train_timesteps}).")
        low, high = (float(g) for g in guidance_range)
        if not 0.0 <= low <= high or not 0.0 <= float(label_dropout) < 1.0 or int(round_steps) < 1:
            raise ValueError("guidance_range must be (low, high) with 0 <= low <= high, label_dropout in [0, 1) and "
                             f"round_steps >= 1; got {guidance_range}, {label_dropout}, {round_steps}.")
        self.student = student
        self.init_student_schedule(num_train_timesteps, beta_schedule)
        self.previous = frozen_copy(student)
        self.num_train_timesteps = int(num_train_timesteps)
        self.beta_schedule = beta_schedule
        self.teacher_steps = teacher_steps
        self.student_steps = student_steps
        self.rounds = int(rounds)
        self.round_steps = int(round_steps)
        self.guidance_range = (low, high)
        self.label_dropout = float(label_dropout)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.steps_seen = self.add_weight(shape=(), initializer="zeros", dtype="float32", trainable=False,
                                          name="steps_seen")
        self.built = True

    def round_index(self, steps_seen: Optional[int] = None) -> int:
        """The round (0-based) that training step `steps_seen` (default: the next one) belongs to."""
        steps = self.steps_seen if steps_seen is None else steps_seen
        return ops.minimum(ops.floor(ops.cast(steps, "float32") / self.round_steps), self.rounds - 1)

    @property
    def sampling_steps(self) -> int:
        return self.teacher_steps // 2 ** (int(ops.convert_to_numpy(self.round_index())) + 1)

    def compute_phase_loss(self, phase, data):
        images, labels = data if isinstance(data, (tuple, list)) else (data, None)
        images = ops.cast(images, "float32")
        batch, ndim = ops.shape(images)[0], len(images.shape)
        steps = self.teacher_steps / ops.power(2.0, self.round_index() + 1.0)
        position = ops.floor(self.batch_random(keras.random.uniform, (batch,)) * steps)
        t, t_mid, t_next = distillation.trailing_grid(position, steps, self.num_train_timesteps)
        noise = self.batch_random(keras.random.normal, ops.shape(images))
        labels = self.conditioning(labels, batch, self.label_dropout)
        scales = self.draw_guidance(batch, *self.guidance_range)
        table = self.schedule.alphas_cumprod
        alpha, sigma = distillation.alpha_sigma(t, table, ndim)
        alpha_mid, sigma_mid = distillation.alpha_sigma(t_mid, table, ndim)
        alpha_next, sigma_next = distillation.alpha_sigma(t_next, table, ndim)
        z = alpha * images + sigma * noise
        x0, eps = distillation.x0_and_eps(self.previous([z, t, labels, scales], training=False), z, alpha, sigma,
                                          "v_prediction")
        z_mid = distillation.ddim_step(x0, eps, alpha_mid, sigma_mid)
        x0, eps = distillation.x0_and_eps(self.previous([z_mid, t_mid, labels, scales], training=False), z_mid,
                                          alpha_mid, sigma_mid, "v_prediction")
        z_next = distillation.ddim_step(x0, eps, alpha_next, sigma_next)
        x_target = distillation.one_step_target(z, z_next, alpha, sigma, alpha_next, sigma_next)
        target = ops.stop_gradient(distillation.velocity(x_target, (z - alpha * x_target) / sigma, alpha, sigma))
        output = self.student([z, t, labels, scales], training=True)
        loss = ops.mean(ops.square(ops.cast(output, "float32") - target))
        # The error against the target's size: comparable across rounds (and a second key keeps
        # Keras from swapping logs that hold only "loss" for its unused loss tracker's zero).
        return loss, {"loss": loss, "relative_loss": loss / ops.mean(ops.square(target))}

    def after_step(self):
        """Counts the step; at a round's end copies the student into `previous`, the next round's teacher."""
        self.steps_seen.assign_add(1.0)
        done = self.steps_seen
        ends_round = ops.logical_and(ops.equal(ops.mod(done, float(self.round_steps)), 0.0),
                                     ops.less(done, float(self.round_steps * self.rounds)))
        # keep = 1 leaves `previous` as it is; 0 copies (an EMA with decay 0 or 1, fused on torch).
        self.moving_average(self.previous.weights, self.student.weights, 1.0 - ops.cast(ends_round, "float32"))
        return {"round": self.round_index() + 1.0, "student_steps": self.teacher_steps / ops.power(
            2.0, self.round_index() + 1.0)}

    def loaded_export(self, part: str, network: keras.Model) -> None:
        # The file is the student of an earlier stage or round: it is also the first teacher.
        self.student.set_weights(network.get_weights())
        self.previous.set_weights(network.get_weights())

    def get_config(self):
        return self.config_with_models(
            num_train_timesteps=self.num_train_timesteps, beta_schedule=self.beta_schedule,
            teacher_steps=self.teacher_steps, student_steps=self.student_steps, round_steps=self.round_steps,
            guidance_range=list(self.guidance_range), label_dropout=self.label_dropout, seed=self.seed,
        )
