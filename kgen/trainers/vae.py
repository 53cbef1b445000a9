"""VAE trainer."""

from typing import Any, Optional

import keras
import numpy as np
from keras import ops

from kgen.backend import Phase
from kgen.objectives import elbo
from kgen.trainers.generative_trainer import GenerativeTrainer, sample_from_latents


@keras.saving.register_keras_serializable(package="kgen")
class VAE(GenerativeTrainer):
    """Variational autoencoder trained on the negative ELBO.

    Loss per image: `reconstruction + w * KL`, where `w` ramps linearly from
    0 to `beta` over `kl_warmup_steps`. Reported per step: `loss` (what is
    minimised), `reconstruction` (-log p(x|z), nats per image), `kl` (nats),
    `neg_elbo` (`reconstruction + kl`, the bound itself, independent of beta
    and warm-up) and `kl_weight`.

    With `iwae_samples` k > 1 the loss is instead the negative k-sample
    importance-weighted bound (IWAE): k latents per image, one encoder pass,
    k decoder passes; a tighter bound than the ELBO, so the decoder is fitted
    to a better likelihood estimate. `reconstruction` and `kl` are then
    averaged over the k samples, and `neg_elbo` stays the one-sample bound.

    With a Bernoulli decoder, training uses dynamic binarisation (each pixel is
    resampled as 1 with probability (x + 1) / 2 every time it is seen, the
    protocol behind published MNIST likelihoods); evaluation binarises at 0, so
    pass images that are already binary (`binarize_stochastically`) to compare
    with the literature. With a Gaussian decoder the targets are the images in
    [-1, 1].

    Args:
        encoder: `VAEEncoder` (or any model returning `(mean, log_var)`).
        decoder: `VAEDecoder` (or any model with a `likelihood` attribute).
        beta: float. Weight of the KL term. Defaults to `1.0`.
        kl_warmup_steps: int. Steps of linear KL warm-up. Defaults to `0`.
        seed: int or None. Seed of the reparameterisation and binarisation
            noise. Defaults to `None`.
        dynamic_binarization: bool. Resample binary training targets each
            step (Bernoulli likelihood only). Defaults to `True`.
        iwae_samples: int. Latent samples per image of the training bound: 1
            is the ELBO, k > 1 the IWAE bound (needs `beta` 1 and no
            warm-up). Defaults to `1`.

    Example:
    >>> vae = VAE(VAEEncoder(latent_dim=16), VAEDecoder(latent_dim=16), seed=0)
    >>> vae.compile()
    >>> vae.fit(dataset, epochs=1)

    References:
        Kingma and Welling, "Auto-Encoding Variational Bayes", ICLR 2014.
        Higgins et al., "beta-VAE", ICLR 2017.
        Burda et al., "Importance Weighted Autoencoders", ICLR 2016.
    """

    # What the run folder plots and summarises as losses (kgen.callbacks.RunRecorder).
    loss_keys = ("loss", "reconstruction", "kl", "neg_elbo")
    model_args = ("encoder", "decoder")

    def __init__(self, encoder, decoder, beta=1.0, kl_warmup_steps=0, seed=None,
                 dynamic_binarization=True, iwae_samples=1, **kwargs):
        super().__init__(**kwargs)
        if float(beta) < 0 or int(kl_warmup_steps) < 0:
            raise ValueError(f"beta and kl_warmup_steps must be >= 0; got {beta}, {kl_warmup_steps}.")
        if int(iwae_samples) < 1 or (int(iwae_samples) > 1 and (float(beta) != 1.0 or int(kl_warmup_steps))):
            raise ValueError(f"iwae_samples must be >= 1, and > 1 only with beta 1 and no KL warm-up (the IWAE "
                             f"bound has no separate KL term); got iwae_samples={iwae_samples}, beta={beta}, "
                             f"kl_warmup_steps={kl_warmup_steps}.")
        self.iwae_samples = int(iwae_samples)
        self.encoder = encoder
        self.decoder = decoder
        self.latent_dim = int(decoder.inputs[0].shape[-1])
        self.likelihood = getattr(decoder, "likelihood", "bernoulli")
        self.beta = float(beta)
        self.kl_warmup_steps = int(kl_warmup_steps)
        self.seed = seed
        self.dynamic_binarization = bool(dynamic_binarization)
        self.seed_generator = keras.random.SeedGenerator(seed)
        # A model variable, not the optimizer's counter: JAX's stateless step
        # threads model variables, so the warm-up advances on every backend.
        self.steps_seen = self.add_weight(
            shape=(), initializer="zeros", dtype="float32", trainable=False, name="steps_seen"
        )
        self.built = True

    def compile(self, optimizer: Optional[keras.optimizers.Optimizer] = None, **kwargs: Any) -> None:
        """Configures the optimizer. Defaults to `Adam(1e-3)`."""
        optimizer = optimizer or keras.optimizers.Adam(1e-3)
        self.compile_phases(
            [Phase("elbo", optimizer, lambda: self.encoder.trainable_variables + self.decoder.trainable_variables)],
            **kwargs,
        )

    def call(self, images, training=False):
        return self.reconstruct(images)

    def encode(self, images: Any) -> Any:
        """`(mean, log_var)` of q(z|x), inference mode."""
        return self.encoder(images, training=False)

    def decoded_mean(self, params: Any) -> Any:
        """Mean of p(x|z) mapped to [-1, 1], from the decoder's output."""
        if self.likelihood == "bernoulli":
            return 2.0 * ops.sigmoid(params) - 1.0
        mean, _ = ops.split(params, 2, axis=-1)
        return ops.clip(mean, -1.0, 1.0)

    def generate(self, latents: Any) -> Any:
        """Images in [-1, 1] (decoder means) for latent vectors."""
        return self.decoded_mean(self.decoder(latents, training=False))

    def reconstruct(self, images: Any) -> Any:
        """Decoder mean at the posterior mean: images in [-1, 1]."""
        mean, _ = self.encode(images)
        return self.generate(mean)

    def targets(self, images: Any) -> Any:
        """What the likelihood is evaluated on: binarised, or images in [-1, 1]."""
        if self.likelihood == "bernoulli":
            return ops.cast(images > 0.0, "float32")
        return ops.cast(images, "float32")

    def reconstruction_nll(self, images: Any, params: Any) -> Any:
        """-log p(x|z) per image in nats, shape (batch,)."""
        if self.likelihood == "bernoulli":
            return elbo.bernoulli_nll(self.targets(images), params)
        mean, log_scale = ops.split(params, 2, axis=-1)
        return elbo.gaussian_nll(self.targets(images), mean, log_scale)

    def importance_weighted_nll(self, images: np.ndarray, num_samples: int = 100, seed: int = 0) -> np.ndarray:
        """Importance-weighted estimate of -log p(x) in nats per image (IWAE bound).

        The float64 estimator of `kgen.metrics.importance_weighted_nll`, with
        this model's encoder and likelihood. Returns its dict (`nll`, `mean`,
        `k`, `n`).
        """
        from kgen import metrics

        def encode(x):
            mean, log_var = self.encode(x)
            return ops.convert_to_numpy(mean), ops.convert_to_numpy(log_var)

        def log_likelihood(x, z):
            params = self.decoder(ops.convert_to_tensor(z.astype("float32")), training=False)
            return -ops.convert_to_numpy(self.reconstruction_nll(x, params)).astype("float64")

        return metrics.importance_weighted_nll(encode, log_likelihood, images, num_samples, seed)

    def _sample(self, count, labels, seed):
        return sample_from_latents(self.generate, self.latent_dim, count, seed)

    def inference_parts(self) -> dict:
        image_shape = list(self.encoder.inputs[0].shape[1:])

        def decoder():
            latents = keras.Input((self.latent_dim,), name="latents")
            network = keras.Model(latents, self.decoded_mean(self.decoder(latents, training=False)),
                                  name="vae_decoder")
            return network, {"kind": "vae_decoder", "latent_dim": self.latent_dim, "input_names": ["latents"],
                             "output_names": ["images"], "image_shape": image_shape,
                             "likelihood": self.likelihood}

        def encoder():
            images = keras.Input(tuple(image_shape), name="images")
            network = keras.Model(images, list(self.encoder(images, training=False)), name="vae_encoder")
            return network, {"kind": "vae_encoder", "latent_dim": self.latent_dim, "input_names": ["images"],
                             "output_names": ["mean", "log_var"], "image_shape": image_shape}

        return {"vae_decoder": decoder, "vae_encoder": encoder}

    def held_out_metrics(self, images: np.ndarray, labels: Optional[np.ndarray], *, seed: int = 0,
                         iw_samples: int = 100, batch_size: int = 500) -> dict:
        """Likelihood and reconstruction of held-out images (N, H, W, C) in [-1, 1].

        A Bernoulli model first binarises them stochastically (seed 0, the
        protocol of published MNIST likelihoods). Returns `neg_elbo` and
        `iw_nll` (nats per image, the k = `iw_samples` importance-weighted
        bound on -log p(x)), `iw_nll_bits_per_dim`, `kl`,
        `reconstruction_nll`, and of the reconstructions (decoder mean at the
        posterior mean) `mse`, `psnr` and `binarized_accuracy`.
        """
        from kgen import metrics

        images = np.asarray(images, "float32")
        if self.likelihood == "bernoulli":
            images = binarize_stochastically(images, seed=0)
        means, log_vars, recons = [], [], []
        for i in range(0, len(images), batch_size):
            mean, log_var = self.encode(images[i:i + batch_size])
            means.append(ops.convert_to_numpy(mean))
            log_vars.append(ops.convert_to_numpy(log_var))
            recons.append(ops.convert_to_numpy(self.generate(mean)))
        mean, log_var, recon = (np.concatenate(a) for a in (means, log_vars, recons))
        elbo_bound = self.importance_weighted_nll(images, num_samples=1, seed=seed)
        iw = self.importance_weighted_nll(images, num_samples=int(iw_samples), seed=seed)
        kl = metrics.gaussian_kl(mean.astype("float64"), log_var.astype("float64"))
        return {
            "neg_elbo": elbo_bound["mean"],
            "iw_nll": iw["mean"],
            "iw_nll_bits_per_dim": float(metrics.nats_to_bits_per_dim(iw["mean"], int(np.prod(images.shape[1:])))),
            "iw_k": iw["k"],
            "kl": float(kl.mean()),
            # -log p(x|z) with z ~ q(z|x): the -ELBO minus the KL, on the same images.
            "reconstruction_nll": elbo_bound["mean"] - float(kl.mean()),
            "mse": float(metrics.mse(images, recon).mean()),
            "psnr": float(metrics.psnr(images, recon).mean()),
            "binarized_accuracy": float(metrics.binarized_accuracy(images, recon).mean()),
            "held_out_images": len(images),
            "parameters": int(self.count_params()),
        }

    def compute_phase_loss(self, phase, data):
        images = data[0] if isinstance(data, (tuple, list)) else data
        if self.likelihood == "bernoulli" and self.dynamic_binarization:
            on = self.batch_random(keras.random.uniform, ops.shape(images)) < (images + 1.0) / 2.0
            images = ops.where(on, 1.0, -1.0)
        mean, log_var = self.encoder(images, training=True)
        kl = ops.mean(elbo.kl_standard_normal(mean, log_var))
        k = self.iwae_samples
        if k > 1:  # each image's k samples side by side: one decoder pass over batch * k latents
            images, mean, log_var = (ops.repeat(a, k, axis=0) for a in (images, mean, log_var))
        noise = self.batch_random(keras.random.normal, ops.shape(mean))
        latents = elbo.reparameterize(mean, log_var, noise)
        nll = self.reconstruction_nll(images, self.decoder(latents, training=True))
        reconstruction = ops.mean(nll)
        weight = elbo.kl_weight(self.steps_seen, self.beta, self.kl_warmup_steps)
        self.steps_seen.assign_add(1.0)
        if k > 1:
            log_weights = elbo.log_importance_weights(-nll, latents, noise, log_var)
            loss = -ops.mean(elbo.importance_weighted_bound(log_weights, k))
        else:
            loss = reconstruction + weight * kl
        return loss, {
            "loss": loss,
            "reconstruction": reconstruction,
            "kl": kl,
            "neg_elbo": reconstruction + kl,
            "kl_weight": weight,
        }

    def get_config(self):
        return self.config_with_models(
            beta=self.beta, kl_warmup_steps=self.kl_warmup_steps, seed=self.seed,
            dynamic_binarization=self.dynamic_binarization, iwae_samples=self.iwae_samples,
        )


def binarize_stochastically(images: np.ndarray, seed: int = 0) -> np.ndarray:
    """Binary images in {-1, 1}: pixel on with probability (x + 1) / 2 (numpy, seeded).

    The fixed stochastic binarisation of a test set under which MNIST
    likelihoods are reported.
    """
    images = np.asarray(images, dtype="float32")
    on = np.random.default_rng(seed).random(images.shape) < (images + 1.0) / 2.0
    return np.where(on, 1.0, -1.0).astype("float32")
