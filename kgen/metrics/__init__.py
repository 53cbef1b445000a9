"""Sample-quality, classifier-based and reconstruction metrics.

Distances between feature sets are computed in float64 numpy, whatever the
Keras backend that extracted the features. Every result that depends on a
sample count reports it.
"""

from kgen.metrics.classifier_scores import class_coverage, conditional_accuracy, inception_score
from kgen.metrics.frechet import frechet_distance, frechet_distance_from_stats
from kgen.metrics.image_quality import binarized_accuracy, laplacian_variance, mse, psnr, ssim
from kgen.metrics.kid import kernel_inception_distance
from kgen.metrics.likelihood import (
    bernoulli_log_prob,
    gaussian_kl,
    gaussian_log_prob,
    importance_weighted_nll,
    nats_to_bits_per_dim,
)
from kgen.metrics.memorization import memorization, nearest_neighbour_distances

__all__ = [
    "laplacian_variance",
    "memorization",
    "nearest_neighbour_distances",
    "bernoulli_log_prob",
    "gaussian_kl",
    "gaussian_log_prob",
    "importance_weighted_nll",
    "nats_to_bits_per_dim",
    "binarized_accuracy",
    "class_coverage",
    "conditional_accuracy",
    "frechet_distance",
    "frechet_distance_from_stats",
    "inception_score",
    "kernel_inception_distance",
    "mse",
    "psnr",
    "ssim",
]
