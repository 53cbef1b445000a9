"""Scoring a study's models: class-conditional sample quality, partial denoising, latent walks."""

import os
import time
from typing import Any, Optional, Sequence

import keras
import numpy as np

from kgen import metrics
from kgen.evaluate.features import ClassifierFeatures, batched


def conditional_quality(model: Any, classifier: ClassifierFeatures, real_features: np.ndarray, num_classes: int,
                        per_class: int, *, num_steps: int, guidance_scale: float, seed: int = 0,
                        batch_size: int = 500) -> tuple:
    """Draws `per_class` samples of every class from a diffusion trainer and scores them.

    Args:
        model: a class-conditional trainer with `sample(labels=..., num_steps=..., guidance_scale=...)`.
        classifier: `kgen.evaluate.ClassifierFeatures` of the dataset.
        real_features: classifier features of the real reference images.
        num_classes, per_class: int. Samples are drawn class by class.
        num_steps: int. Sampler steps. guidance_scale: float.
        seed: int. Seed of the samples. Defaults to `0`.
        batch_size: int. Classifier batch. Defaults to `500`.

    Returns:
        `(images, labels, quality)`: the samples, their requested classes, and
        a dict of the conditional accuracy (overall and per class), the
        classifier-feature FID against `real_features` and the sampling time.
    """
    labels = np.repeat(np.arange(num_classes), per_class).astype(np.int32)
    start = time.perf_counter()
    images = model.sample(labels=labels, num_steps=num_steps, guidance_scale=guidance_scale, seed=seed,
                          progress=True)
    seconds = time.perf_counter() - start
    features, probs = batched(classifier, images, batch_size)
    accuracy = metrics.conditional_accuracy(probs, labels)
    return images, labels, {
        "guidance_scale": guidance_scale, "samples": len(images), "ddim_steps": num_steps,
        "conditional_accuracy": accuracy["accuracy"], "per_class_accuracy": accuracy["per_class"],
        "fid_classifier": metrics.frechet_distance(real_features, features)["value"],
        "sampling_time_s": seconds,
    }


def partial_denoising(model: Any, images: np.ndarray, steps: Sequence[int], seed: int = 0, shown: int = 8) -> tuple:
    """Noises `images` for t steps with q(x_t | x_0) and denoises them with t DDPM steps, for each t.

    Returns:
        `(measures, rows)`: per t, the mean PSNR/SSIM of the noised and the
        denoised images against the originals and the denoised MSE; and the
        image rows of a figure (originals, then noised and denoised per t,
        `shown` images each).
    """
    rows, measures = [("original", images[:shown])], {}
    for t in steps:
        noised, denoised = model.denoise(images, int(t), sampler="ddpm", seed=seed)
        measures[int(t)] = {
            "psnr_noised": float(metrics.psnr(images, noised).mean()),
            "psnr_denoised": float(metrics.psnr(images, denoised).mean()),
            "ssim_noised": float(metrics.ssim(images, noised).mean()),
            "ssim_denoised": float(metrics.ssim(images, denoised).mean()),
            "mse_denoised": float(metrics.mse(images, denoised).mean()),
            "images": len(images),
        }
        rows += [(f"noised t={t}", noised[:shown]), (f"denoised t={t}", denoised[:shown])]
    return measures, rows


def latent_walks(model: Any, images: np.ndarray, steps: int = 10) -> np.ndarray:
    """A VAE's decoded straight lines between the posterior means of consecutive image pairs."""
    mean, _ = model.encode(images)
    mean = keras.ops.convert_to_numpy(mean)
    weights = np.linspace(0.0, 1.0, steps, dtype="float32")[:, None]
    rows = [keras.ops.convert_to_numpy(model.generate((1 - weights) * a + weights * b))
            for a, b in zip(mean[0::2], mean[1::2])]
    return np.concatenate(rows)


def classifier_reference(data: str, classifier_path: Optional[str] = None) -> tuple:
    """`(classifier, real_features, images, labels)`: a dataset's shipped classifier and its features of the test
    split, the reference the studies score their samples against."""
    from kgen.evaluate.evaluation import DEFAULT_CLASSIFIER_DIR
    from kgen.evaluate.vae_evaluation import load_split

    name = os.path.basename(os.path.normpath(data))
    classifier = ClassifierFeatures(classifier_path or os.path.join(DEFAULT_CLASSIFIER_DIR, f"{name}.keras"))
    images, labels = load_split(data, "test", binarize=False)
    real_features, _ = batched(classifier, images, 500)
    return classifier, real_features, images, labels
