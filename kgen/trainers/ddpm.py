"""DDPM trainer: the denoising objective, label dropout and an EMA of the weights."""

import math
from typing import Any, Callable, Optional, Sequence

import keras
import numpy as np
from keras import ops

from kgen import metadata as kgen_metadata
from kgen.backend import Phase
from kgen.objectives import denoising
from kgen.schedulers import NoiseSchedule, denoise_loop, make_scheduler, partial_denoise
from kgen.trainers.generative_trainer import GenerativeTrainer, frozen_copy


@keras.saving.register_keras_serializable(package="kgen")
class DDPM(GenerativeTrainer):
    """Denoising diffusion model trained on the noise-prediction (or v) loss.

    Each step draws t uniformly in [0, T), noises the batch with q(x_t | x_0),
    and regresses the network's output on the noise (or v). Labels are
    replaced by the null class with probability `label_dropout`, so one
    network serves conditional and unconditional sampling (classifier-free
    guidance). An exponential moving average of the weights (`ema_denoiser`,
    decay warmed up as min(decay, (1 + n) / (10 + n))) is what sampling and
    export use. Sampling itself runs the numpy samplers of `kgen.schedulers`,
    the same code onnxruntime inference uses.

    Args:
        denoiser: `UNet` (inputs images, timesteps, labels).
        num_train_timesteps: int. T. Defaults to `1000`.
        beta_schedule: str. `"linear"` or `"cosine"`. Defaults to `"linear"`.
        prediction_type: str. `"epsilon"` or `"v_prediction"`.
            Defaults to `"epsilon"`.
        label_dropout: float. Probability of the null label in training.
            Defaults to `0.1`.
        ema_decay: float. Defaults to `0.999`.
        seed: int or None. Seed of t, noise and label dropout.
            Defaults to `None`.
        snr_gamma: float or None. Min-SNR-gamma loss weighting (5 in the
            paper); None is the unweighted "simple" loss. Defaults to `None`.

    Example:
    >>> ddpm = DDPM(UNet((28, 28, 1), widths=(16, 32, 64)), beta_schedule="cosine", seed=0)
    >>> ddpm.compile()
    >>> ddpm.fit(dataset, epochs=1)
    >>> images = ddpm.sample(labels=np.arange(10), sampler="ddim", num_steps=50)

    References:
        Ho et al., "Denoising Diffusion Probabilistic Models", NeurIPS 2020.
        Ho and Salimans, "Classifier-Free Diffusion Guidance", 2021.
        Hang et al., "Efficient Diffusion Training via Min-SNR Weighting
        Strategy", ICCV 2023.
    """

    loss_keys = ("loss",)
    model_args = ("denoiser",)
    sample_options = ("sampler", "num_steps", "eta", "guidance_scale", "progress")

    def __init__(self, denoiser, num_train_timesteps=1000, beta_schedule="linear",
                 prediction_type="epsilon", label_dropout=0.1, ema_decay=0.999, seed=None, snr_gamma=None, **kwargs):
        super().__init__(**kwargs)
        if snr_gamma is not None and not float(snr_gamma) > 0:
            raise ValueError(f"snr_gamma must be a positive number or None; got {snr_gamma}.")
        if not 0.0 <= float(label_dropout) < 1.0 or not 0.0 <= float(ema_decay) < 1.0:
            raise ValueError(f"label_dropout and ema_decay must be in [0, 1); got {label_dropout}, {ema_decay}.")
        self.schedule = NoiseSchedule(num_train_timesteps, beta_schedule, prediction_type)
        self.denoiser = denoiser
        self.ema_denoiser = frozen_copy(denoiser)
        self.num_classes = int(getattr(denoiser, "num_classes", 0))
        self.image_shape = tuple(int(d) for d in denoiser.inputs[0].shape[1:])
        self.num_train_timesteps = int(num_train_timesteps)
        self.beta_schedule = beta_schedule
        self.prediction_type = prediction_type
        self.label_dropout = float(label_dropout)
        self.ema_decay = float(ema_decay)
        self.seed = seed
        self.snr_gamma = None if snr_gamma is None else float(snr_gamma)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.steps_seen = self.add_weight(
            shape=(), initializer="zeros", dtype="float32", trainable=False, name="steps_seen"
        )
        self.built = True

    @property
    def null_label(self) -> Optional[int]:
        """The label that means "no class" (`num_classes`), or None if unconditional."""
        return self.num_classes if self.num_classes else None

    def compile(self, optimizer: Optional[keras.optimizers.Optimizer] = None, **kwargs: Any) -> None:
        """Configures the optimizer. Defaults to `Adam(2e-4)`."""
        optimizer = optimizer or keras.optimizers.Adam(2e-4)
        self.compile_phases([Phase("denoise", optimizer, lambda: self.denoiser.trainable_variables)], **kwargs)

    def call(self, inputs, training=False):
        return self.ema_denoiser(inputs, training=training)

    def compute_phase_loss(self, phase, data):
        images, labels = data if isinstance(data, (tuple, list)) else (data, None)
        batch = ops.shape(images)[0]
        t = self.batch_random(keras.random.randint, (batch,), minval=0, maxval=self.num_train_timesteps)
        noise = self.batch_random(keras.random.normal, ops.shape(images))
        if labels is None or not self.num_classes:
            labels = ops.zeros((batch,), "int32")
        else:
            labels = ops.reshape(ops.cast(labels, "int32"), (batch,))
            drop = self.batch_random(keras.random.uniform, (batch,)) < self.label_dropout
            labels = ops.where(drop, self.num_classes, labels)
        table = self.schedule.alphas_cumprod
        x_t = denoising.add_noise(images, noise, t, table)
        target = denoising.regression_target(images, noise, t, table, self.prediction_type)
        weights = denoising.snr_loss_weight(t, table, self.prediction_type, self.snr_gamma)
        loss = denoising.weighted_denoising_loss(
            self.denoiser([x_t, t, labels], training=True), target, weights
        )
        return loss, {"loss": loss}

    def after_step(self):
        """Moves the EMA towards the just-updated weights; reports its (warmed-up) decay.

        (The decay in the logs also keeps Keras from swapping logs that hold
        only "loss" for its unused loss tracker's zero.)
        """
        return {"ema_decay": self.warmed_up_average(self.ema_denoiser, self.denoiser, self.ema_decay, self.steps_seen)}

    # Sampling: numpy loops from kgen.schedulers around the EMA network.

    def predict_fn(self, ema: bool = True, batch_size: int = 256) -> Callable:
        """`predict(x, t, labels) -> output` in numpy, the samplers' contract."""
        network = self.ema_denoiser if ema else self.denoiser

        def predict(x, t, labels):
            outs = []
            for i in range(0, len(x), batch_size):
                sl = slice(i, i + batch_size)
                outs.append(ops.convert_to_numpy(network(
                    [ops.convert_to_tensor(x[sl]), ops.convert_to_tensor(t[sl]),
                     ops.convert_to_tensor(labels[sl])], training=False)))
            return np.concatenate(outs)

        return predict

    def _sample(self, count, labels, seed, sampler="ddim", num_steps=50, eta=0.0, guidance_scale=1.0,
                progress=False):
        """Reverse process from pure noise (`sample_options`).

        Args:
            sampler: str. `"ddim"`, `"dpmsolver++"` or `"ddpm"`. Defaults to `"ddim"`.
            num_steps: int or None. Sampling steps; None is T. Defaults to `50`.
            eta: float. DDIM's eta. Defaults to `0.0`.
            guidance_scale: float. Classifier-free guidance weight. Defaults to `1.0`.
            progress: bool. A progress bar over the steps. Defaults to `False`.
        """
        scheduler = make_scheduler(sampler, self.schedule.get_config(), eta)
        scheduler.set_timesteps(num_steps)
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((count, *self.image_shape)).astype(np.float32)
        return denoise_loop(self.predict_fn(), scheduler, x, labels, self.null_label, guidance_scale,
                            rng, progress)

    def inference_parts(self) -> dict:
        def denoiser():
            return self.ema_denoiser, {
                "kind": "denoiser", "input_names": ["images", "timesteps", "labels"],
                "output_names": ["model_output"], "image_shape": list(self.image_shape),
                "num_classes": self.num_classes, "null_label": self.null_label, "weights": "ema",
                "schedule": kgen_metadata.schedule_entry(self.schedule)}

        return {"denoiser": denoiser}

    def loaded_export(self, part: str, network: keras.Model) -> None:
        # The file holds EMA weights: training continues from them, and the
        # EMA, an average already, skips its warm-up (full decay from step 1).
        self.denoiser.set_weights(network.get_weights())
        warm = math.ceil(round((10.0 * self.ema_decay - 1.0) / (1.0 - self.ema_decay), 6))  # (1+n)/(10+n) >= decay
        self.steps_seen.assign(max(float(keras.ops.convert_to_numpy(self.steps_seen)), float(warm)))

    def held_out_metrics(self, images: np.ndarray, labels: Optional[np.ndarray], *, seed: int = 0,
                         batch_size: int = 256) -> dict:
        """The training objective on held-out images, with the EMA weights.

        One timestep per image, uniform in [0, T), and Gaussian noise, both
        from `seed`; labels as given (conditional). Returns `denoising_mse`
        (the unweighted mean squared error of the network's target, what
        `snr_gamma=None` trains) and `held_out_images`. Compare with the same
        on training images to see overfitting.
        """
        images = np.asarray(images, np.float32)
        rng = np.random.default_rng(seed)
        t = rng.integers(0, self.num_train_timesteps, len(images)).astype(np.int32)
        noise = rng.standard_normal(images.shape).astype(np.float32)
        if self.num_classes and labels is not None:
            labels = np.asarray(labels, np.int32).reshape(-1)
        else:
            labels = np.zeros(len(images), np.int32)
        x_t = self.schedule.add_noise(images, noise, t).astype(np.float32)
        if self.prediction_type == "epsilon":
            target = noise
        else:
            target = self.schedule.get_velocity(images, noise, t)
        output = self.predict_fn(batch_size=batch_size)(x_t, t, labels)
        return {"denoising_mse": float(np.mean((output - target) ** 2)), "held_out_images": len(images)}

    def denoise(self, images: np.ndarray, t: int, sampler: str = "ddpm", num_steps: Optional[int] = None,
                eta: float = 0.0, labels: Optional[Sequence[int]] = None, guidance_scale: float = 1.0, seed: int = 0,
                progress: bool = False) -> np.ndarray:
        """Partial denoising: noise `images` for `t` steps, run the reverse process back.

        Returns `(noised, denoised)`, both in [-1, 1] like `images`.
        """
        images = np.asarray(images, np.float32)
        if images.shape[1:] != self.image_shape:
            raise ValueError(f"images must be (N, {', '.join(map(str, self.image_shape))}); got {images.shape}.")
        if labels is not None:
            labels = np.asarray(labels, np.int32).reshape(-1)
            if not self.num_classes or labels.min() < 0 or labels.max() > self.num_classes:
                raise ValueError(f"labels must be in 0..{self.num_classes - 1} (or {self.num_classes} for none) "
                                 "for a class-conditional model.")
        scheduler = make_scheduler(sampler, self.schedule.get_config(), eta)
        return partial_denoise(self.predict_fn(), scheduler, images, t, labels, self.null_label,
                               guidance_scale, num_steps, np.random.default_rng(seed), progress)

    def get_config(self):
        return self.config_with_models(
            num_train_timesteps=self.num_train_timesteps, beta_schedule=self.beta_schedule,
            prediction_type=self.prediction_type, label_dropout=self.label_dropout,
            ema_decay=self.ema_decay, seed=self.seed, snr_gamma=self.snr_gamma,
        )
