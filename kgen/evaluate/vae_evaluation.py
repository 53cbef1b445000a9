"""Test-split measures of a trained VAE: likelihood, reconstruction, samples."""

import time

import keras
import numpy as np

from kgen import metrics
from kgen.evaluate.evaluation import ClassifierFeatures, _batched


def evaluate_vae(model, images, labels, classifier=None, iw_samples=100, iw_images=1000,
                 num_prior_samples=5000, batch_size=500, seed=0):
    """Likelihood, reconstruction and sample quality of a `kgen.trainers.VAE`.

    Args:
        model: `VAE`. Evaluated in inference mode.
        images: array (N, H, W, C) in [-1, 1]. Test images; for a Bernoulli
            decoder pass them binarised (`binarize_stochastically`).
        labels: array (N,) of int. Their classes.
        classifier: `ClassifierFeatures` or None. The dataset classifier, for
            the accuracy of reconstructions and the classifier-feature FID of
            prior samples; None skips both. Defaults to `None`.
        iw_samples: int. k of the importance-weighted bound. Defaults to `100`.
        iw_images: int. Test images it is computed on. Defaults to `1000`.
        num_prior_samples: int. Prior samples for the FID. Defaults to `5000`.
        batch_size: int. Defaults to `500`.
        seed: int. Seed of every draw. Defaults to `0`.

    Returns:
        dict of floats: `neg_elbo`, `iw_nll` (nats per image; upper bound on
        -log p(x)), `iw_nll_bits_per_dim`, `kl`, `mse`, `psnr`,
        `binarized_accuracy` (means over the test images), the classifier's
        `recon_accuracy` and `data_accuracy`, `fid_classifier`, `parameters`,
        `eval_time_s`, and the counts used.
    """
    start = time.perf_counter()
    images = np.asarray(images, "float32")
    labels = np.asarray(labels).reshape(-1)
    if images.ndim != 4 or len(images) != len(labels):
        raise ValueError(f"need images (N, H, W, C) and N labels; got {images.shape} and {labels.shape}.")

    def encode(x):
        mean, log_var = model.encode(x)
        return keras.ops.convert_to_numpy(mean), keras.ops.convert_to_numpy(log_var)

    mean, log_var = _batched(encode, images, batch_size)
    recon = _batched(lambda x: keras.ops.convert_to_numpy(model.generate(x)), mean, batch_size)

    subset = images[: int(iw_images)]
    elbo = model.importance_weighted_nll(subset, num_samples=1, seed=seed)
    iw = model.importance_weighted_nll(subset, num_samples=int(iw_samples), seed=seed)
    kl = metrics.gaussian_kl(mean.astype("float64"), log_var.astype("float64"))
    dims = int(np.prod(images.shape[1:]))
    results = {
        "neg_elbo": elbo["mean"],
        "iw_nll": iw["mean"],
        "iw_nll_bits_per_dim": float(metrics.nats_to_bits_per_dim(iw["mean"], dims)),
        "iw_k": iw["k"],
        "iw_images": iw["n"],
        "kl": float(kl.mean()),
        # -log p(x|z) with z ~ q(z|x): the -ELBO minus the KL, on the same images.
        "reconstruction_nll": elbo["mean"] - float(kl[: len(subset)].mean()),
        "mse": float(metrics.mse(images, recon).mean()),
        "psnr": float(metrics.psnr(images, recon).mean()),
        "binarized_accuracy": float(metrics.binarized_accuracy(images, recon).mean()),
        "test_images": len(images),
        "parameters": int(model.count_params()),
    }
    if classifier is not None:
        _, recon_probs = _batched(classifier, recon, batch_size)
        data_feat, data_probs = _batched(classifier, images, batch_size)
        latents = np.random.default_rng(seed).standard_normal((int(num_prior_samples), model.latent_dim))
        samples = _batched(lambda z: keras.ops.convert_to_numpy(model.generate(z)),
                           latents.astype("float32"), batch_size)
        sample_feat, _ = _batched(classifier, samples, batch_size)
        results["recon_accuracy"] = metrics.conditional_accuracy(recon_probs, labels)["accuracy"]
        results["data_accuracy"] = metrics.conditional_accuracy(data_probs, labels)["accuracy"]
        results["fid_classifier"] = metrics.frechet_distance(data_feat, sample_feat)["value"]
        results["classifier"] = classifier.name
        results["prior_samples"] = int(num_prior_samples)
    results["eval_time_s"] = time.perf_counter() - start
    return results




def load_split(data, split="test", binarize=None, limit=None):
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
    from kgen.trainers.vae import binarize_stochastically

    images, labels = [], []
    for x, y in load_images(data, split=split, batch_size=1000, shuffle=False, drop_remainder=False,
                            limit=limit):
        images.append(x.numpy())
        labels.append(y.numpy())
    images, labels = np.concatenate(images), np.concatenate(labels)
    if binarize or (binarize is None and images.shape[-1] == 1):
        images = binarize_stochastically(images, seed=0)
    return images, labels


def evaluate_vae_checkpoint(path, data="mnist", split="test", classifier=None, iw_samples=100,
                            iw_images=10_000, num_prior_samples=5000, seed=0):
    """`evaluate_vae` for a `.keras` VAE checkpoint on a dataset split (see `load_split`)."""
    import os

    import kgen.trainers  # noqa: F401  (registers kgen's classes)
    from kgen.evaluate.evaluation import DEFAULT_CLASSIFIER_DIR

    model = keras.saving.load_model(path, compile=False)
    if not hasattr(model, "importance_weighted_nll"):
        raise ValueError(f"{path} holds a {type(model).__name__}, not a VAE.")
    images, labels = load_split(data, split)
    name = os.path.basename(os.path.normpath(data))
    classifier = ClassifierFeatures(classifier or os.path.join(DEFAULT_CLASSIFIER_DIR, f"{name}.keras"))
    results = evaluate_vae(model, images, labels, classifier, iw_samples, iw_images, num_prior_samples,
                           seed=seed)
    return {"source": path, "reference": f"{data}:{split}", **results}
