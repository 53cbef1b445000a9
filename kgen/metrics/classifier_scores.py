"""Measures computed from a classifier's predicted class probabilities."""

import numpy as np


def _probs(probs):
    probs = np.asarray(probs, np.float64)
    if probs.ndim != 2 or probs.shape[0] < 1:
        raise ValueError(f"probs must be (num_samples, num_classes); got shape {probs.shape}.")
    if np.any(probs < 0) or not np.allclose(probs.sum(1), 1.0, atol=1e-4):
        raise ValueError("probs rows must be probabilities that sum to 1 (apply softmax first).")
    return probs


def conditional_accuracy(probs: np.ndarray, requested: np.ndarray) -> dict:
    """Fraction of samples classified as the class they were generated for."""
    probs = _probs(probs)
    requested = np.asarray(requested).reshape(-1)
    if len(requested) != len(probs):
        raise ValueError(f"{len(probs)} predictions but {len(requested)} requested labels.")
    per_class = {
        int(k): float((probs[requested == k].argmax(1) == k).mean()) for k in np.unique(requested)
    }
    return {
        "accuracy": float((probs.argmax(1) == requested).mean()),
        "per_class": per_class,
        "n": len(probs),
    }


def class_coverage(probs: np.ndarray, min_fraction: float = 0.0) -> dict:
    """Predicted-class histogram, classes covered and KL(histogram || uniform).

    A class counts as covered when at least one sample (or `min_fraction` of
    them) is predicted as it. KL is 0 for a perfectly balanced generator and
    log(num_classes) when every sample falls in one class (full collapse).
    """
    probs = _probs(probs)
    k = probs.shape[1]
    counts = np.bincount(probs.argmax(1), minlength=k)
    hist = counts / counts.sum()
    nonzero = hist > 0
    kl = float(np.sum(hist[nonzero] * np.log(hist[nonzero] * k)))
    covered = int(np.sum(hist > max(min_fraction, 0.0))) if min_fraction else int(nonzero.sum())
    return {
        "histogram": counts.tolist(),
        "classes_covered": covered,
        "num_classes": k,
        "kl_to_uniform": kl,
        "n": len(probs),
    }


def inception_score(probs: np.ndarray, splits: int = 10) -> dict:
    """`exp(E_x KL(p(y|x) || p(y)))`, mean and std over `splits` splits.

    With a dataset's own classifier instead of Inception the value is an
    "Inception-Score-style" score: comparable only with the same classifier.
    The splits are consecutive runs of `probs`: pass samples in random order
    (samples drawn class by class would make every split one class, IS ~1).

    References:
        Salimans et al., "Improved Techniques for Training GANs", 2016.
    """
    probs = _probs(probs)
    splits = max(1, min(int(splits), len(probs)))
    scores = []
    for part in np.array_split(probs, splits):
        marginal = part.mean(0, keepdims=True)
        kl = np.sum(part * (np.log(np.clip(part, 1e-12, None)) - np.log(np.clip(marginal, 1e-12, None))), 1)
        scores.append(np.exp(kl.mean()))
    return {"value": float(np.mean(scores)), "std": float(np.std(scores)), "splits": splits, "n": len(probs)}
