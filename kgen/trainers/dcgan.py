"""DCGAN trainer."""

from typing import Any, Optional

import keras
import numpy as np
from keras import ops

from kgen.backend import Phase
from kgen.objectives import adversarial
from kgen.trainers.generative_trainer import GenerativeTrainer, frozen_copy, sample_from_latents


@keras.saving.register_keras_serializable(package="kgen")
class DCGAN(GenerativeTrainer):
    """Adversarial training of a generator against a discriminator.

    Each training step first updates the discriminator on a real batch and a
    generated batch, then the generator through the updated discriminator
    (non-saturating loss). Every loss is reported per step: `d_loss_real`,
    `d_loss_fake`, `d_loss` (their sum) and `g_loss`, plus the mean
    discriminator probability on real (`d_real`) and fake (`d_fake`) images.

    Args:
        generator: `keras.Model`. Maps `(batch, latent_dim)` to images.
        discriminator: `keras.Model`. Maps images to one logit each.
        real_label: float. Discriminator target for real images; 0.9 is
            one-sided label smoothing. Defaults to `0.9`.
        ema_decay: float or None. Keep an exponential moving average of the
            generator's weights (`ema_generator`, decay warmed up as
            `min(ema_decay, (1 + n) / (10 + n))`); sampling and export then
            use it. None: no average. Defaults to `None`.
        seed: int or None. Seed of the latent noise. Defaults to `None`.

    Example:
    >>> gan = DCGAN(DCGANGenerator(), DCGANDiscriminator(), seed=0)
    >>> gan.compile()
    >>> gan.fit(dataset, epochs=1)  # dataset of (images, labels) in [-1, 1]

    References:
        Radford et al., "Unsupervised Representation Learning with Deep
        Convolutional Generative Adversarial Networks", ICLR 2016.
        Salimans et al., "Improved Techniques for Training GANs", 2016.
        Yazici et al., "The Unusual Effectiveness of Averaging in GAN
        Training", ICLR 2019 (the generator's EMA).
    """

    loss_keys = ("d_loss", "d_loss_real", "d_loss_fake", "g_loss")
    model_args = ("generator", "discriminator")

    def __init__(self, generator, discriminator, real_label=0.9, seed=None, ema_decay=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.5 < float(real_label) <= 1.0:
            raise ValueError(f"real_label must be in (0.5, 1]; got {real_label}.")
        if ema_decay is not None and not 0.0 < float(ema_decay) < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1) or None; got {ema_decay}.")
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = int(generator.inputs[0].shape[-1])
        self.real_label = float(real_label)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.ema_decay = None if ema_decay is None else float(ema_decay)
        self.ema_generator = None
        if self.ema_decay is not None:
            self.ema_generator = frozen_copy(generator)
            self.steps_seen = self.add_weight(shape=(), initializer="zeros", dtype="float32", trainable=False,
                                              name="steps_seen")
        self.built = True

    def compile(self, d_optimizer: Optional[keras.optimizers.Optimizer] = None,
                g_optimizer: Optional[keras.optimizers.Optimizer] = None, **kwargs: Any) -> None:
        """Configures the two optimizers; defaults follow the DCGAN paper.

        Args:
            d_optimizer: optimizer for the discriminator. Defaults to
                `Adam(2e-4, beta_1=0.5)`.
            g_optimizer: optimizer for the generator. Same default.
        """
        d_optimizer = d_optimizer or keras.optimizers.Adam(2e-4, beta_1=0.5)
        g_optimizer = g_optimizer or keras.optimizers.Adam(2e-4, beta_1=0.5)
        self.compile_phases(
            [
                Phase("discriminator", d_optimizer, lambda: self.discriminator.trainable_variables),
                Phase("generator", g_optimizer, lambda: self.generator.trainable_variables),
            ],
            **kwargs,
        )

    @property
    def sampling_generator(self) -> keras.Model:
        """The network that draws samples: the EMA generator when there is one."""
        return self.ema_generator if self.ema_generator is not None else self.generator

    def call(self, latents, training=False):
        return self.generator(latents, training=training)

    def generate(self, latents: Any) -> Any:
        """Images in [-1, 1] for the given latent vectors (inference mode; the EMA weights if kept)."""
        return self.sampling_generator(latents, training=False)

    def after_step(self):
        """Moves the generator's EMA (if kept) towards the just-updated weights."""
        if self.ema_generator is None:
            return {}
        self.warmed_up_average(self.ema_generator, self.generator, self.ema_decay, self.steps_seen)
        return {}

    def load_weights(self, filepath: str, *args: Any, **kwargs: Any) -> None:
        """Keras' `load_weights`; a checkpoint of the same GAN kept without an EMA also loads into one that keeps it.

        Then the generator, the discriminator and both optimizers' states load
        as saved, and the EMA starts at the loaded generator (as at step 0).
        """
        import warnings

        with warnings.catch_warnings(record=True) as caught:  # Keras warns of each missing EMA layer first
            warnings.simplefilter("always")
            try:
                super().load_weights(filepath, *args, **kwargs)
                failed = False
            except ValueError:
                if self.ema_generator is None or not str(filepath).endswith(".keras"):
                    raise
                failed = True
        if not failed:
            for warning in caught:
                warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
            return None
        twin = DCGAN(self.generator, self.discriminator, real_label=self.real_label, seed=self.seed)
        twin.compile_phases(self.phases)
        twin.load_weights(filepath, *args, **kwargs)
        self.ema_generator.set_weights(self.generator.get_weights())
        self.steps_seen.assign(0.0)

    def _sample(self, count, labels, seed):
        return sample_from_latents(self.generate, self.latent_dim, count, seed)

    def inference_parts(self) -> dict:
        def generator():
            latents = keras.Input((self.latent_dim,), name="latents")
            network = keras.Model(latents, self.sampling_generator(latents, training=False), name="generator")
            return network, {"kind": "generator", "latent_dim": self.latent_dim, "input_names": ["latents"],
                             "output_names": ["images"], "image_shape": list(self.generator.outputs[0].shape[1:]),
                             **({"weights": "ema"} if self.ema_generator is not None else {})}

        def discriminator():
            image_shape = list(self.discriminator.inputs[0].shape[1:])
            images = keras.Input(tuple(image_shape), name="images")
            network = keras.Model(images, self.discriminator(images, training=False), name="discriminator")
            return network, {"kind": "discriminator", "input_names": ["images"], "output_names": ["logits"],
                             "image_shape": image_shape}

        return {"generator": generator, "discriminator": discriminator}

    def loaded_export(self, part: str, network: keras.Model) -> None:
        # An exported generator (with an EMA: loaded into the EMA network) is where training continues from.
        if part == "generator" and self.ema_generator is not None:
            self.generator.set_weights(self.ema_generator.get_weights())

    def held_out_metrics(self, images: np.ndarray, labels: Optional[np.ndarray], *, seed: int = 0) -> dict:
        """The discriminator's mean probability that held-out real images are real.

        Compare with the training log's `d_real` (the same on training
        batches): a discriminator that memorised its training set scores
        held-out images lower.
        """
        images = np.asarray(images, "float32")
        probs = np.concatenate([
            ops.convert_to_numpy(ops.sigmoid(ops.cast(self.discriminator(images[i:i + 500], training=False),
                                                      "float32"))).reshape(-1)
            for i in range(0, len(images), 500)])
        return {"d_real_held_out": float(probs.mean()), "held_out_images": len(images)}

    def compute_phase_loss(self, phase, data):
        real = data[0] if isinstance(data, (tuple, list)) else data
        batch_size = ops.shape(real)[0]
        latents = self.batch_random(keras.random.normal, (batch_size, self.latent_dim))
        fake = self.generator(latents, training=True)
        if phase == "discriminator":
            real_logits = self.discriminator(real, training=True)
            fake_logits = self.discriminator(ops.stop_gradient(fake), training=True)
            real_loss, fake_loss = adversarial.discriminator_losses(
                real_logits, fake_logits, self.real_label
            )
            d_loss = real_loss + fake_loss
            return d_loss, {
                "d_loss": d_loss,
                "d_loss_real": real_loss,
                "d_loss_fake": fake_loss,
                "d_real": ops.mean(ops.sigmoid(ops.cast(real_logits, "float32"))),
            }
        fake_logits = self.discriminator(fake, training=True)
        g_loss = adversarial.generator_loss(fake_logits)
        return g_loss, {
            "g_loss": g_loss,
            "d_fake": ops.mean(ops.sigmoid(ops.cast(fake_logits, "float32"))),
        }

    def get_config(self):
        return self.config_with_models(real_label=self.real_label, seed=self.seed, ema_decay=self.ema_decay)
