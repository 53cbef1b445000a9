"""The evaluation API behind `python -m kgen.evaluate`."""

import os

import keras
import numpy as np

from kgen import metrics

DEFAULT_CLASSIFIER_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "exported", "classifiers"
)


def _batched(fn, images, batch_size, label=None):
    """Applies `fn` to `images` in batches, with a progress bar if `label`."""
    bar = keras.utils.Progbar(len(images), unit_name="image") if label else None
    if label:
        print(label)
    outputs = []
    for start in range(0, len(images), batch_size):
        outputs.append(fn(images[start : start + batch_size]))
        if bar:
            bar.update(min(start + batch_size, len(images)))
    if isinstance(outputs[0], tuple):
        return tuple(np.concatenate(parts) for parts in zip(*outputs))
    return np.concatenate(outputs)


class ClassifierFeatures:
    """Class probabilities and penultimate features of a kgen classifier.

    Args:
        path: str. A `.keras` file written by `recipes/train_classifier.py`.
    """

    def __init__(self, path):
        import kgen.models  # noqa: F401  (registers ImageClassifier)

        if not os.path.isfile(path):
            raise ValueError(
                f"classifier {path!r} not found; train one with recipes/train_classifier.py "
                "or pass --classifier."
            )
        if not path.endswith(".keras"):  # legacy .h5 files can run code when loaded, safe mode or not
            raise ValueError(f"classifier {path!r}: accepted is a .keras file (recipes/train_classifier.py).")
        model = keras.saving.load_model(path, compile=False)
        self.name = os.path.splitext(os.path.basename(path))[0]
        self.image_shape = tuple(model.inputs[0].shape[1:])
        both = keras.Model(model.inputs, [model.get_layer("features").output, model.outputs[0]])
        self._model = both

    def __call__(self, images):
        features, logits = self._model(images, training=False)
        probs = keras.ops.softmax(keras.ops.cast(logits, "float32"), axis=-1)
        return keras.ops.convert_to_numpy(features), keras.ops.convert_to_numpy(probs)


class InceptionFeatures:
    """InceptionV3 2048-d pool features of images in [-1, 1], resized to 299x299.

    Args:
        weights: str. Local path of Keras' InceptionV3 `include_top=False`
            ImageNet weights (nothing is downloaded).
    """

    def __init__(self, weights):
        if weights != "random" and not os.path.isfile(weights):
            raise ValueError(f"InceptionV3 weights file {weights!r} not found.")
        self._model = keras.applications.InceptionV3(
            include_top=False, pooling="avg", input_shape=(299, 299, 3),
            weights=None if weights == "random" else weights,
        )

    def __call__(self, images):
        x = keras.ops.convert_to_tensor(np.asarray(images, "float32"))
        if x.shape[-1] == 1:
            x = keras.ops.repeat(x, 3, axis=-1)
        x = keras.ops.image.resize(x, (299, 299), interpolation="bilinear")
        return keras.ops.convert_to_numpy(self._model(x, training=False))


def generated_images(model, num_samples, batch_size=500, seed=0):
    """Samples `num_samples` images in [-1, 1] from a kgen generator model."""
    if not hasattr(model, "generate") or not hasattr(model, "latent_dim"):
        raise ValueError(
            f"{type(model).__name__} cannot be sampled here; accepted: a DCGAN checkpoint, "
            "or a folder of images."
        )
    rng = np.random.default_rng(seed)
    latents = rng.standard_normal((num_samples, model.latent_dim)).astype("float32")
    return _batched(
        lambda z: keras.ops.convert_to_numpy(model.generate(z)), latents, batch_size, "sampling"
    )


def _load_source(source, num_samples, batch_size, seed):
    from kgen.data import load_images

    if os.path.isfile(source) and source.endswith(".keras"):
        import kgen.trainers  # noqa: F401  (registers kgen's classes)

        model = keras.saving.load_model(source, compile=False)
        return generated_images(model, num_samples, batch_size, seed), f"samples of {type(model).__name__}"
    if os.path.isdir(source):
        images = np.concatenate([x.numpy() for x, _ in load_images(
            source, batch_size=batch_size, shuffle=False, drop_remainder=False, limit=num_samples
        )])
        return images, "image folder"
    raise ValueError(
        f"{source!r} is neither a .keras checkpoint nor a folder of images."
    )


def evaluate(
    source,
    data="mnist",
    split="test",
    classifier=None,
    num_samples=10_000,
    batch_size=500,
    inception_weights=None,
    seed=0,
):
    """Sample quality of a generator checkpoint or an image folder.

    Args:
        source: str. A `.keras` generator checkpoint (e.g. a DCGAN) or a
            folder of images.
        data: str. Reference dataset (name or path, as `load_images`).
            Defaults to `"mnist"`.
        split: str. Reference split. Defaults to `"test"`.
        classifier: str or None. Classifier `.keras`; None uses
            `exported/classifiers/<data>.keras`. Defaults to `None`.
        num_samples: int. Generated images, and at most as many real ones.
            Defaults to `10000`.
        batch_size: int. Defaults to `500`.
        inception_weights: str or None. Local InceptionV3 weights for the
            standard Inception FID/KID. Defaults to `None`.
        seed: int. Seed of the latents. Defaults to `0`.

    Returns:
        dict of results, each with the sample counts it used.
    """
    from kgen.data import load_images

    if int(num_samples) < 2:
        raise ValueError(f"num_samples must be at least 2; got {num_samples}.")
    name = os.path.basename(os.path.normpath(data))
    clf = ClassifierFeatures(classifier or os.path.join(DEFAULT_CLASSIFIER_DIR, f"{name}.keras"))
    fake, kind = _load_source(source, int(num_samples), batch_size, seed)
    if tuple(fake.shape[1:]) != clf.image_shape:
        raise ValueError(f"images are {fake.shape[1:]} but the classifier expects {clf.image_shape}.")
    real = np.concatenate([x.numpy() for x, _ in load_images(
        data, split=split, batch_size=batch_size, shuffle=False, drop_remainder=False, limit=int(num_samples)
    )])
    if tuple(real.shape[1:]) != clf.image_shape:
        raise ValueError(f"{data} images are {real.shape[1:]} but the classifier expects {clf.image_shape}.")

    real_feat, real_probs = _batched(clf, real, batch_size, f"classifier features: {len(real)} real")
    fake_feat, fake_probs = _batched(clf, fake, batch_size, f"classifier features: {len(fake)} generated")
    tag = f"classifier[{clf.name}]"
    results = {
        "source": source,
        "source_kind": kind,
        "reference": f"{data}:{split}",
        "num_generated": len(fake),
        "num_real": len(real),
        f"fid_{tag}": metrics.frechet_distance(real_feat, fake_feat),
        f"kid_{tag}": metrics.kernel_inception_distance(real_feat, fake_feat, seed=seed),
        f"is_{tag}": metrics.inception_score(fake_probs),
        f"is_{tag}_real_data": metrics.inception_score(real_probs),
        "coverage": metrics.class_coverage(fake_probs),
        "coverage_real_data": metrics.class_coverage(real_probs),
    }
    if inception_weights:
        inception = InceptionFeatures(inception_weights)
        real_i = _batched(inception, real, 50, f"inception features: {len(real)} real")
        fake_i = _batched(inception, fake, 50, f"inception features: {len(fake)} generated")
        results["fid_inception"] = metrics.frechet_distance(real_i, fake_i)
        results["kid_inception"] = metrics.kernel_inception_distance(real_i, fake_i, seed=seed)
    return results


def format_table(results):
    """A plain-text table of the scalar results."""
    rows = []
    for key, value in results.items():
        if isinstance(value, dict) and "value" in value:
            extra = f" ± {value['std']:.4g}" if "std" in value else ""
            counts = ", ".join(f"{k}={value[k]}" for k in ("n", "n_a", "n_b", "subset_size") if k in value)
            rows.append((key, f"{value['value']:.4g}{extra}", counts))
        elif isinstance(value, dict) and "classes_covered" in value:
            rows.append((key, f"{value['classes_covered']}/{value['num_classes']} classes, "
                              f"KL to uniform {value['kl_to_uniform']:.4f}", f"n={value['n']}"))
        else:
            rows.append((key, str(value), ""))
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{k:<{width}}  {v:<32} {c}" for k, v, c in rows)
