"""Memorisation check: how close generated images lie to their nearest training image."""

from typing import Optional

import numpy as np


def nearest_neighbour_distances(queries: np.ndarray, references: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Euclidean distance from each query image to its nearest reference image, in pixel space.

    Args:
        queries: array (N, ...). Images, any shape after the batch axis.
        references: array (M, ...). Same shape per image.
        batch_size: int. Queries per distance block. Defaults to `512`.

    Returns:
        float64 array (N,).
    """
    q = np.asarray(queries, np.float32).reshape(len(queries), -1)
    r = np.asarray(references, np.float32).reshape(len(references), -1)
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"queries have {q.shape[1]} values per image, references {r.shape[1]}.")
    r_norms = np.einsum("ij,ij->i", r, r)
    out = np.empty(len(q))
    for i in range(0, len(q), batch_size):
        block = q[i:i + batch_size]
        # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b, the nearest reference per row; float32 then clipped at 0.
        squared = np.einsum("ij,ij->i", block, block)[:, None] + r_norms[None, :] - 2.0 * block @ r.T
        out[i:i + batch_size] = np.sqrt(np.maximum(squared.min(axis=1), 0.0))
    return out


def memorization(samples: np.ndarray, test_images: np.ndarray, train_images: np.ndarray,
                 test_distances: Optional[np.ndarray] = None) -> dict:
    """Generated images' distance to the training set against held-out images' distance.

    A model that reproduces training images puts its samples closer to the
    training set than real unseen images are: `ratio` (median sample
    distance over median test distance) well below 1, and many `near_copies`
    (samples closer to a training image than 99% of test images are).

    Args:
        samples: array (N, H, W, C) in [-1, 1].
        test_images: array of held-out images, same shape.
        train_images: array of the training images.
        test_distances: array or None. `nearest_neighbour_distances(test_images, train_images)`
            if already computed. Defaults to `None`.

    Returns:
        dict: `median_sample_to_train`, `median_test_to_train`, `ratio`,
        `near_copies` (fraction), `n`, `n_test`, `n_train`.
    """
    if test_distances is None:
        test_distances = nearest_neighbour_distances(test_images, train_images)
    sample_distances = nearest_neighbour_distances(samples, train_images)
    threshold = np.percentile(test_distances, 1)
    median_sample, median_test = float(np.median(sample_distances)), float(np.median(test_distances))
    return {"median_sample_to_train": median_sample, "median_test_to_train": median_test,
            "ratio": median_sample / median_test, "near_copies": float(np.mean(sample_distances < threshold)),
            "n": len(sample_distances), "n_test": len(test_distances), "n_train": len(train_images)}
