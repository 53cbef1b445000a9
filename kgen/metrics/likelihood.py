"""ELBO terms and the importance-weighted log-likelihood bound, in float64 numpy.

Model code supplies two callables, so these work for any encoder/decoder on
any backend:

- `encode(x) -> (mean, log_var)`: the diagonal Gaussian q(z|x);
- `log_likelihood(x, z) -> (N,)`: log p(x|z) in nats, per example.

Conventions: MNIST likelihoods are Bernoulli on binarised pixels (pixel
value > 127.5 is 1, the threshold 0 of kgen's [-1, 1] range) and reported in
nats per image; CIFAR-10 likelihoods are reported in bits per dimension
(`nats / (H * W * C * ln 2)`), which is meaningful only for a likelihood
that is a probability mass on the 256 pixel levels (e.g. a discretised
Gaussian), not a density on rescaled values.
"""

import math
from typing import Callable, Union

import numpy as np

LOG_2PI = math.log(2.0 * math.pi)


def gaussian_kl(mean: np.ndarray, log_var: np.ndarray) -> np.ndarray:
    """KL(N(mean, exp(log_var)) || N(0, I)) per example, summed over dims."""
    mean, log_var = np.asarray(mean, np.float64), np.asarray(log_var, np.float64)
    return 0.5 * np.sum(np.exp(log_var) + mean**2 - 1.0 - log_var, axis=-1)


def gaussian_log_prob(z: np.ndarray, mean: np.ndarray, log_var: np.ndarray) -> np.ndarray:
    """log N(z; mean, exp(log_var)) per example, summed over the last axis."""
    z, mean, log_var = (np.asarray(a, np.float64) for a in (z, mean, log_var))
    return -0.5 * np.sum(LOG_2PI + log_var + (z - mean) ** 2 / np.exp(log_var), axis=-1)


def bernoulli_log_prob(x_binary: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """log p(x | logits) for binary x per example, summed over all but axis 0."""
    x, logits = np.asarray(x_binary, np.float64), np.asarray(logits, np.float64)
    per_pixel = x * logits - np.logaddexp(0.0, logits)
    return per_pixel.reshape(len(per_pixel), -1).sum(1)


def _logsumexp(a, axis):
    top = np.max(a, axis=axis, keepdims=True)
    return np.squeeze(top, axis) + np.log(np.sum(np.exp(a - top), axis=axis))


def importance_weighted_nll(encode: Callable, log_likelihood: Callable, x: np.ndarray, num_samples: int = 100,
                            seed: int = 0) -> dict:
    """Negative IWAE bound, `-log (1/k) sum_i p(x, z_i) / q(z_i | x)`, per example.

    An upper bound on -log p(x) that tightens as `num_samples` (k) grows;
    k = 1 is the negative ELBO estimated with one sample.

    Args:
        encode: callable. `encode(x) -> (mean, log_var)`, each (N, latent).
        log_likelihood: callable. `log_likelihood(x, z) -> (N,)`, log p(x|z).
        x: array (N, ...). Inputs as the model expects them.
        num_samples: int. k. Defaults to `100`.
        seed: int. Seed of the z draws. Defaults to `0`.

    Returns:
        dict with `nll` (N,) in nats, `mean`, `k`, `n`.

    References:
        Burda et al., "Importance Weighted Autoencoders", ICLR 2016.
    """
    if int(num_samples) < 1:
        raise ValueError(f"num_samples must be >= 1; got {num_samples}.")
    mean, log_var = (np.asarray(a, np.float64) for a in encode(x))
    rng = np.random.default_rng(seed)
    log_w = []
    for _ in range(int(num_samples)):
        z = mean + np.exp(0.5 * log_var) * rng.standard_normal(mean.shape)
        log_prior = gaussian_log_prob(z, 0.0, 0.0)
        log_q = gaussian_log_prob(z, mean, log_var)
        log_w.append(np.asarray(log_likelihood(x, z), np.float64) + log_prior - log_q)
    nll = -(_logsumexp(np.stack(log_w), axis=0) - math.log(num_samples))
    return {"nll": nll, "mean": float(nll.mean()), "k": int(num_samples), "n": len(nll)}


def nats_to_bits_per_dim(nats: Union[float, np.ndarray], num_dims: int) -> np.ndarray:
    """Converts a negative log-likelihood in nats per example to bits per dimension."""
    return np.asarray(nats, np.float64) / (num_dims * math.log(2.0))
