"""A fourth model family that knows nothing of kgen but the trainer contract (tests only)."""

import keras
import numpy as np
from keras import ops

from kgen.backend import Phase
from kgen.trainers import GenerativeTrainer


@keras.saving.register_keras_serializable(package="kgen_tests")
class ToyGenerator(GenerativeTrainer):
    """One dense layer from latents to pixels, regressed on the images it is shown."""

    loss_keys = ("loss",)

    def __init__(self, image_shape=(28, 28, 1), latent_dim=4, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.shape = tuple(int(d) for d in image_shape)
        self.latent_dim = int(latent_dim)
        self.seed = seed
        latents = keras.Input((self.latent_dim,))
        pixels = keras.layers.Dense(int(np.prod(self.shape)), activation="tanh")(latents)
        self.network = keras.Model(latents, keras.layers.Reshape(self.shape)(pixels))
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    def compile(self, optimizer=None, **kwargs):
        optimizer = optimizer or keras.optimizers.Adam(1e-2)
        self.compile_phases([Phase("fit", optimizer, lambda: self.network.trainable_variables)], **kwargs)

    def compute_phase_loss(self, phase, data):
        images = data[0] if isinstance(data, (tuple, list)) else data
        latents = keras.random.normal((ops.shape(images)[0], self.latent_dim), seed=self.seed_generator)
        loss = ops.mean(ops.square(self.network(latents, training=True) - images))
        return loss, {"loss": loss, "pixel_std": ops.std(images)}

    def _sample(self, count, labels, seed):
        latents = np.random.default_rng(seed).standard_normal((count, self.latent_dim)).astype("float32")
        return ops.convert_to_numpy(self.network(latents, training=False))

    def inference_parts(self):
        def generator():
            latents = keras.Input((self.latent_dim,), name="latents")
            network = keras.Model(latents, self.network(latents, training=False), name="generator")
            return network, {"kind": "generator", "latent_dim": self.latent_dim, "input_names": ["latents"],
                             "output_names": ["images"], "image_shape": list(self.shape)}

        return {"generator": generator}

    def get_config(self):
        return {"name": self.name, "image_shape": list(self.shape), "latent_dim": self.latent_dim,
                "seed": self.seed}
