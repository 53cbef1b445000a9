"""Fréchet distance between Gaussians fitted to two feature sets (FID's formula)."""

import numpy as np


def _check_features(features, name):
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"{name} must be (num_samples >= 2, dim); got shape {features.shape}.")
    if not np.isfinite(features).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    return features


def frechet_distance_from_stats(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """`||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))`, in float64.

    The trace of the matrix square root is computed as the sum of the square
    roots of the eigenvalues of `S1^(1/2) S2 S1^(1/2)`, which is symmetric
    positive semi-definite and has the same eigenvalues as `S1 S2`; this
    avoids the complex round-off of a general `sqrtm`.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(
            f"shapes do not match: mu {mu1.shape} / {mu2.shape}, sigma {sigma1.shape} / {sigma2.shape}."
        )
    w1, v1 = np.linalg.eigh(sigma1)
    sqrt1 = (v1 * np.sqrt(np.clip(w1, 0.0, None))) @ v1.T
    middle = sqrt1 @ sigma2 @ sqrt1
    eig = np.linalg.eigvalsh((middle + middle.T) / 2.0)
    tr_sqrt = np.sqrt(np.clip(eig, 0.0, None)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_sqrt)


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> dict:
    """Fréchet distance between two feature sets, with their sizes.

    Args:
        features_a: array (n_a, dim). E.g. features of real images.
        features_b: array (n_b, dim). E.g. features of generated images.

    Returns:
        dict with `value`, `n_a`, `n_b`. The value is biased upwards at
        small sample counts; compare values only at equal counts.

    Example:
    >>> frechet_distance(real_features, fake_features)["value"]
    """
    a = _check_features(features_a, "features_a")
    b = _check_features(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sizes differ: {a.shape[1]} vs {b.shape[1]}.")
    value = frechet_distance_from_stats(
        a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    )
    return {"value": value, "n_a": len(a), "n_b": len(b)}
