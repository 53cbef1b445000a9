"""Test-split measures of a trained VAE: likelihood, reconstruction, samples."""

import time
from typing import Optional

import keras
import numpy as np

from kgen import metrics
from kgen.evaluate.features import ClassifierFeatures, batched
from kgen.trainers.vae import VAE, binarize_stochastically


def evaluate_vae(model: VAE, images: np.ndarray, labels: np.ndarray, classifier: Optional[ClassifierFeatures] = None,
                 iw_samples: int = 100, iw_images: int = 1000, num_prior_samples: int = 5000, batch_size: int = 500,
                 seed: int = 0) -> dict:
    """The VAE study's measures: `held_out_metrics` plus the dataset classifier's view.

    Args:
        model: `VAE`. Evaluated in inference mode.
        images: array (N, H, W, C) in [-1, 1]. Test images (a Bernoulli
            model binarises them itself, see `VAE.held_out_metrics`).
        labels: array (N,) of int. Their classes.
        classifier: `ClassifierFeatures` or None. The dataset classifier, for
            the accuracy of reconstructions and the classifier-feature FID of
            prior samples; None skips both. Defaults to `None`.
        iw_samples: int. k of the importance-weighted bound. Defaults to `100`.
        iw_images: int. Test images the held-out measures use. Defaults to `1000`.
        num_prior_samples: int. Prior samples for the FID. Defaults to `5000`.
        batch_size: int. Defaults to `500`.
        seed: int. Seed of every draw. Defaults to `0`.

    Returns:
        dict: `VAE.held_out_metrics` on the first `iw_images` images, with
        the classifier's `recon_accuracy` and `data_accuracy` (all images),
        `fid_classifier`, `prior_samples` and `eval_time_s`.
    """
    start = time.perf_counter()
    images = np.asarray(images, "float32")
    labels = np.asarray(labels).reshape(-1)
    if images.ndim != 4 or len(images) != len(labels):
        raise ValueError(f"need images (N, H, W, C) and N labels; got {images.shape} and {labels.shape}.")
    results = model.held_out_metrics(images[: int(iw_images)], labels[: int(iw_images)], seed=seed,
                                     iw_samples=iw_samples, batch_size=batch_size)
    results["iw_images"] = results["held_out_images"]  # the study's name for them
    results["test_images"] = len(images)
    if classifier is not None:
        targets = binarize_stochastically(images, seed=0) if model.likelihood == "bernoulli" else images

        def reconstruct(x):
            return keras.ops.convert_to_numpy(model.reconstruct(x))

        recon = batched(reconstruct, targets, batch_size)
        _, recon_probs = batched(classifier, recon, batch_size)
        data_feat, data_probs = batched(classifier, targets, batch_size)
        samples = model.sample(int(num_prior_samples), seed=seed)
        sample_feat, _ = batched(classifier, samples, batch_size)
        results["recon_accuracy"] = metrics.conditional_accuracy(recon_probs, labels)["accuracy"]
        results["data_accuracy"] = metrics.conditional_accuracy(data_probs, labels)["accuracy"]
        results["fid_classifier"] = metrics.frechet_distance(data_feat, sample_feat)["value"]
        results["classifier"] = classifier.name
        results["prior_samples"] = int(num_prior_samples)
    results["eval_time_s"] = time.perf_counter() - start
    return results


def load_split(data: str, split: str = "test", binarize: Optional[bool] = None,
               limit: Optional[int] = None) -> tuple:
    """All images and labels of a split as arrays; grey images binarised stochastically.

    Args:
        data: str. Name or path, as `kgen.data.load_images`.
        split: str. Defaults to `"test"`.
        binarize: bool or None. Apply `binarize_stochastically` (seed 0),
            the protocol of published MNIST likelihoods; None does it for
            one-channel images. Defaults to `None`.
        limit: int or None. At most this many examples.
    """
    from kgen.data import load_images

    images, labels = [], []
    for x, y in load_images(data, split=split, batch_size=1000, shuffle=False, drop_remainder=False,
                            limit=limit):
        images.append(x.numpy())
        labels.append(y.numpy())
    images, labels = np.concatenate(images), np.concatenate(labels)
    if binarize or (binarize is None and images.shape[-1] == 1):
        images = binarize_stochastically(images, seed=0)
    return images, labels
