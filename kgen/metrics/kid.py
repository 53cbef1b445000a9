"""Kernel Inception Distance: unbiased MMD^2 with a cubic polynomial kernel."""

import numpy as np

from kgen.metrics.frechet import _check_features


def _unbiased_mmd2(x, y):
    d = x.shape[1]
    kxx = (x @ x.T / d + 1.0) ** 3
    kyy = (y @ y.T / d + 1.0) ** 3
    kxy = (x @ y.T / d + 1.0) ** 3
    m, n = len(x), len(y)
    return (
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
        - 2.0 * kxy.mean()
    )


def kernel_inception_distance(features_a: np.ndarray, features_b: np.ndarray, subset_size: int = 1000,
                              num_subsets: int = 100, seed: int = 0) -> dict:
    """KID (Binkowski et al. 2018) on any features, averaged over subsets.

    Args:
        features_a: array (n_a, dim).
        features_b: array (n_b, dim).
        subset_size: int. Samples per subset, capped at the smaller set.
            Defaults to `1000`.
        num_subsets: int. Subsets drawn without replacement within each.
            Defaults to `100`.
        seed: int. Seed of the subset draws. Defaults to `0`.

    Returns:
        dict with `value` (mean over subsets), `std`, `subset_size`,
        `num_subsets`, `n_a`, `n_b`.

    References:
        Binkowski et al., "Demystifying MMD GANs", ICLR 2018.
    """
    a = _check_features(features_a, "features_a")
    b = _check_features(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sizes differ: {a.shape[1]} vs {b.shape[1]}.")
    size = min(int(subset_size), len(a), len(b))
    rng = np.random.default_rng(seed)
    values = np.array([
        _unbiased_mmd2(a[rng.choice(len(a), size, replace=False)], b[rng.choice(len(b), size, replace=False)])
        for _ in range(int(num_subsets))
    ])
    return {
        "value": float(values.mean()),
        "std": float(values.std()),
        "subset_size": size,
        "num_subsets": int(num_subsets),
        "n_a": len(a),
        "n_b": len(b),
    }
