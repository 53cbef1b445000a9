"""The VAE objective: negative ELBO = reconstruction + beta * KL, or its importance-weighted bound.

Per-example terms are summed over pixels and latent dimensions (nats per
image), then averaged over the batch, so values compare with published
MNIST likelihoods.
"""

import math

from keras import ops

from kgen.utils.types import Tensor

LOG_2PI = math.log(2.0 * math.pi)


def kl_standard_normal(mean: Tensor, log_var: Tensor) -> Tensor:
    """KL(N(mean, exp(log_var)) || N(0, I)) per example, shape (batch,)."""
    mean, log_var = ops.cast(mean, "float32"), ops.cast(log_var, "float32")
    return 0.5 * ops.sum(ops.exp(log_var) + ops.square(mean) - 1.0 - log_var, axis=-1)


def bernoulli_nll(targets: Tensor, logits: Tensor) -> Tensor:
    """-log p(x | logits) per example for x in {0, 1} (or [0, 1]), shape (batch,).

    `softplus(l) - x l` is the stable form of the Bernoulli cross-entropy.
    """
    logits, targets = ops.cast(logits, "float32"), ops.cast(targets, "float32")
    per_pixel = ops.softplus(logits) - targets * logits
    return ops.sum(ops.reshape(per_pixel, (ops.shape(per_pixel)[0], -1)), axis=-1)


def gaussian_nll(targets: Tensor, mean: Tensor, log_scale: Tensor) -> Tensor:
    """-log N(x; mean, exp(log_scale)^2) per example, summed over pixels."""
    mean, log_scale = ops.cast(mean, "float32"), ops.cast(log_scale, "float32")
    targets = ops.cast(targets, "float32")
    z = (targets - mean) * ops.exp(-log_scale)
    per_pixel = 0.5 * (LOG_2PI + ops.square(z)) + log_scale
    return ops.sum(ops.reshape(per_pixel, (ops.shape(per_pixel)[0], -1)), axis=-1)


def reparameterize(mean: Tensor, log_var: Tensor, noise: Tensor) -> Tensor:
    """`mean + exp(log_var / 2) * noise`: a differentiable sample of q(z|x)."""
    return mean + ops.exp(0.5 * log_var) * noise


def kl_weight(step: Tensor, beta: float = 1.0, warmup_steps: int = 0) -> Tensor:
    """beta, ramped linearly from 0 over `warmup_steps` (KL warm-up)."""
    if not warmup_steps:
        return ops.convert_to_tensor(beta, "float32")
    ramp = ops.minimum(ops.cast(step, "float32") / float(warmup_steps), 1.0)
    return beta * ramp


def log_importance_weights(log_likelihood: Tensor, latents: Tensor, noise: Tensor, log_var: Tensor) -> Tensor:
    """`log p(x|z) + log p(z) - log q(z|x)` per sample, shape (n,).

    For `z = mean + exp(log_var / 2) * noise` (`reparameterize`) under a
    standard normal prior: `log q(z|x)` needs only the noise and `log_var`.
    """
    latents, noise, log_var = (ops.cast(a, "float32") for a in (latents, noise, log_var))
    log_prior = -0.5 * ops.sum(ops.square(latents) + LOG_2PI, axis=-1)
    log_posterior = -0.5 * ops.sum(ops.square(noise) + log_var + LOG_2PI, axis=-1)
    return ops.cast(log_likelihood, "float32") + log_prior - log_posterior


def importance_weighted_bound(log_weights: Tensor, num_samples: int) -> Tensor:
    """`log (1/k) sum_i w_i` per example, the k-sample lower bound on log p(x) (IWAE), shape (batch,).

    `log_weights` holds each example's `num_samples` samples consecutively
    (shape (batch * k,), as `ops.repeat(x, k, axis=0)` lays them out). With
    k = 1 it is the one-sample ELBO; it tightens as k grows.
    """
    grouped = ops.reshape(log_weights, (-1, int(num_samples)))
    return ops.logsumexp(grouped, axis=-1) - math.log(num_samples)
