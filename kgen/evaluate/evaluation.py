"""The evaluation API behind `python -m kgen.evaluate`."""

import os
import time
from typing import Optional, Sequence

import numpy as np

from kgen import metrics
from kgen.evaluate.features import ClassifierFeatures, batched, reference_images
from kgen.utils.shipped import shipped_path

DEFAULT_CLASSIFIER_DIR = shipped_path("classifiers")


def _settings(source, options, guidance_scales):
    """The sampling settings to score: one per guidance scale, each with `options`."""
    options = {k: v for k, v in (options or {}).items() if v is not None}
    if guidance_scales is not None:
        scales = [float(g) for g in guidance_scales]
        if not scales or not all(np.isfinite(scales)):
            raise ValueError(f"guidance scales must be finite numbers; got {guidance_scales!r}.")
        options["guidance_scale"] = scales
    unknown = [k for k in options if k not in source.sample_options]
    if unknown:
        accepted = ", ".join(source.sample_options) or "none"
        raise ValueError(f"{source.path} ({source.kind}) takes no sampling option {', '.join(unknown)}; "
                         f"accepted: {accepted}.")
    scales = options.pop("guidance_scale", None)
    return [dict(options, guidance_scale=g) for g in scales] if scales else [options]


MAX_IMAGES = 1_000_000  # generated images of one setting (a larger count is a typo, not a study)


def evaluate(source: str, data: Optional[str] = None, split: str = "test", classifier: Optional[str] = None,
             num_samples: Optional[int] = None, per_class: Optional[int] = None, options: Optional[dict] = None,
             guidance_scales: Optional[Sequence[float]] = None, inception: bool = False,
             inception_reference: int = 10_000, held_out_images: int = 10_000, batch_size: int = 500, seed: int = 0,
             engine: str = "onnxruntime", precision: str = "f32", memorization: bool = False) -> dict:
    """Sample quality (and the model's own held-out measures) of any generative model.

    `source` is opened by `open_source`: a `.keras` checkpoint of any
    `GenerativeTrainer` (DCGAN, VAE, DDPM, ...), an exported `.onnx`
    generator, VAE decoder or denoiser, or a folder of images. A
    class-conditional model draws `per_class` images of every class and is
    also scored on conditional accuracy (the dataset classifier reads the
    class it was asked for); an unconditional one draws `num_samples`.
    Each sampling setting (one per guidance scale, each with `options`) is
    scored apart.

    Metrics per setting: the dataset classifier's Fréchet and kernel
    distances, Inception Score and class coverage (labelled
    `classifier[<name>]`: not comparable with published FIDs); with
    `inception`, FID and KID of the standard FID network against
    `inception_reference` images of the split; the sampling time. A
    checkpoint also reports its `held_out_metrics` on `held_out_images`
    images of the split (a VAE's likelihood bound, a DDPM's denoising
    error, a DCGAN discriminator's output).

    Args:
        source: str. Checkpoint, ONNX file or image folder.
        data: str or None. Reference dataset (name or path); None is the
            model's own (run config or export metadata). Defaults to `None`.
        split: str. Reference split. Defaults to `"test"`.
        classifier: str or None. Classifier `.keras`; None uses
            `exported/classifiers/<data>.keras`. Defaults to `None`.
        num_samples: int or None. Images of an unconditional source.
            Defaults to 10,000.
        per_class: int or None. Images per class of a conditional source.
            Defaults to 100.
        options: dict or None. Sampling options the source accepts (a
            denoiser's `sampler`, `num_steps`, `eta`); None values are left
            at the model's defaults.
        guidance_scales: sequence of float or None. One setting per scale
            (models that take `guidance_scale`).
        inception: bool. Also compute Inception FID and KID (needs the
            `fid` extra). Defaults to `False`.
        inception_reference: int. Reference images of the Inception
            statistics (cached). Defaults to 10,000.
        held_out_images: int. Images given to `held_out_metrics`; 0 skips
            them. Defaults to 10,000.
        batch_size: int. Classifier batch. Defaults to `500`.
        seed: int. Seed of the samples and of the metrics. Defaults to `0`.
        engine: str. Runtime of an `.onnx` source, `"onnxruntime"` or
            `"openvino"`. Defaults to `"onnxruntime"`.
        precision: str. `"f32"` or `"bf16"` (OpenVINO): the quality gate of
            reduced precision compares the two. Defaults to `"f32"`.
        memorization: bool. Also the memorisation check
            (`kgen.metrics.memorization`): each sample's pixel distance to
            its nearest image of the `train` split against the reference
            images' distance. Defaults to `False`.

    Returns:
        dict: `source`, `source_kind`, `reference`, `num_real`, `classifier`,
        `real_data` (the classifier's scores of real images), `settings` (a
        list: `options`, `num_generated` and the metrics) and `held_out`.

    (Over 80 lines because the Args above document the whole command; the
    work is in `_Reference` and the helpers below.)
    """
    from kgen.evaluate.sources import open_source

    _check_counts(num_samples, per_class, held_out_images, inception_reference)
    if inception:
        from kgen.evaluate.inception import package_model_path

        package_model_path()  # fail now, not after the sampling
    src = open_source(source, image_count=num_samples or 10_000, engine=engine, precision=precision)
    settings = _settings(src, options, guidance_scales)
    data = data or src.dataset
    if not data:
        raise ValueError(f"{source} names no dataset (no run config or export metadata); pass --data.")
    name = os.path.basename(os.path.normpath(data))
    clf = ClassifierFeatures(classifier or os.path.join(DEFAULT_CLASSIFIER_DIR, f"{name}.keras"))
    labels, count = _labels(src, source, num_samples, per_class)
    held_out_images = int(held_out_images) if src.has_held_out_metrics else 0
    real, real_labels = reference_images(data, split, max(count, held_out_images))
    if tuple(real.shape[1:]) != clf.image_shape:
        raise ValueError(f"{data} images are {real.shape[1:]} but the classifier expects {clf.image_shape}.")
    reference = _Reference(data, split, real[:count], clf, batch_size, seed)
    results = {"source": source, "source_kind": src.kind, "reference": f"{data}:{split}",
               "num_real": len(reference.images), "classifier": clf.name, "real_data": reference.scores(),
               "settings": [], "held_out": {}}
    if src.num_classes:
        results["per_class"] = count // src.num_classes
    if inception:
        reference.add_inception(inception_reference)
    if memorization:
        reference.add_training_images()
    class_names = list(src.class_names) or [str(i) for i in range(src.num_classes)]
    for setting in settings:
        described = ", ".join(f"{k} {v}" for k, v in setting.items()) or "defaults"
        print(f"sampling {count} images from {src.kind} ({described})")
        start = time.perf_counter()
        images = np.asarray(src.sample(count, labels, seed, **setting), np.float32)
        seconds = time.perf_counter() - start
        if tuple(images.shape[1:]) != clf.image_shape:
            raise ValueError(f"{source} draws {tuple(images.shape[1:])} images but the classifier expects "
                             f"{clf.image_shape}.")
        entry = {"options": setting, "num_generated": len(images), **reference.compare(images, labels, class_names)}
        entry["sampling_time_s"] = seconds
        results["settings"].append(entry)
    if held_out_images:
        print(f"held-out measures on {min(len(real), held_out_images)} {data}:{split} images")
        results["held_out"] = src.held_out_metrics(real[:held_out_images], real_labels[:held_out_images], seed=seed)
    return results


def _check_counts(num_samples, per_class, held_out_images, inception_reference):
    """Refuses image counts FID cannot use or that are typos, before any model is opened."""
    if num_samples is not None and int(num_samples) < 2:
        raise ValueError(f"num_samples must be at least 2 (FID needs a covariance); got {num_samples}.")
    if num_samples is not None and int(num_samples) > MAX_IMAGES:
        raise ValueError(f"num_samples must be at most {MAX_IMAGES:,}; got {num_samples}.")
    if per_class is not None and int(per_class) < 2:
        raise ValueError(f"per_class must be at least 2 (FID needs a covariance); got {per_class}.")
    if per_class is not None and int(per_class) > MAX_IMAGES // 10:
        raise ValueError(f"per_class must be at most {MAX_IMAGES // 10:,}; got {per_class}.")
    if int(held_out_images) < 0 or int(inception_reference) < 2:
        raise ValueError(f"held_out_images must be >= 0 and inception_reference >= 2; got {held_out_images}, "
                         f"{inception_reference}.")


def _labels(src, source, num_samples, per_class):
    """`(labels or None, count)`: `per_class` of every class of a conditional source, else `num_samples`."""
    if src.num_classes:
        if per_class is None and num_samples is not None:
            raise ValueError(f"{source} is class-conditional: give --per-class, not --num-samples.")
        labels = np.repeat(np.arange(src.num_classes), int(per_class or 100)).astype(np.int32)
        return labels, len(labels)
    if per_class is not None:
        raise ValueError(f"{source} is unconditional: give --num-samples, not --per-class.")
    count = int(num_samples or 10_000)
    if isinstance(getattr(src, "images", None), np.ndarray):
        count = min(count, len(src.images))
    return None, count


class _Reference:
    """The real images every setting is compared with: classifier features, and optionally Inception
    statistics and the training images of the memorisation check."""

    def __init__(self, data, split, images, classifier, batch_size, seed):
        self.data, self.split, self.images, self.classifier = data, split, images, classifier
        self.batch_size, self.seed = batch_size, seed
        self.tag = f"classifier[{classifier.name}]"
        self.features, self.probs = batched(classifier, images, batch_size,
                                            f"classifier features: {len(images)} real")
        self.extractor = self.inception = self.train = self.train_distances = None

    def scores(self):
        return {f"is_{self.tag}": metrics.inception_score(self.probs), "coverage": metrics.class_coverage(self.probs)}

    def add_inception(self, count):
        from kgen.evaluate import inception as standard

        self.extractor = standard.StandardInceptionFeatures(self.classifier.image_shape)
        self.inception = standard.reference_statistics(self.data, self.split, count, self.extractor)

    def add_training_images(self):
        self.train, _ = reference_images(self.data, "train", MAX_IMAGES)
        print(f"memorisation check: nearest of {len(self.train)} {self.data}:train images to "
              f"{len(self.images)} real images")
        self.train_distances = metrics.nearest_neighbour_distances(self.images, self.train)

    def compare(self, images, labels, class_names):
        """The metrics of generated `images` (asked for `labels`, or None) against this reference."""
        tag, seed = self.tag, self.seed
        features, probs = batched(self.classifier, images, self.batch_size)
        entry = {f"fid_{tag}": metrics.frechet_distance(self.features, features),
                 f"kid_{tag}": metrics.kernel_inception_distance(self.features, features, seed=seed),
                 # The splits are consecutive; samples drawn class by class are shuffled first.
                 f"is_{tag}": metrics.inception_score(probs[np.random.default_rng(seed).permutation(len(probs))]),
                 "coverage": metrics.class_coverage(probs)}
        if labels is not None:
            accuracy = metrics.conditional_accuracy(probs, labels)
            entry["conditional_accuracy"] = accuracy["accuracy"]
            entry["per_class_accuracy"] = {class_names[k]: v for k, v in accuracy["per_class"].items()}
        if self.extractor is not None:
            from kgen.evaluate import inception as standard

            generated = batched(self.extractor, images, 50, f"Inception features: {len(images)} generated")
            entry.update(standard.inception_scores(self.inception, generated, seed=seed))
            entry["fid_inception"]["reference"] = f"{self.data}:{self.split}"
        if self.train is not None:
            entry["memorization"] = metrics.memorization(images, self.images, self.train, self.train_distances)
        return entry


def _value(entry):
    if isinstance(entry, dict) and "value" in entry:
        return entry["value"]
    if isinstance(entry, dict) and "ratio" in entry:  # the memorisation check
        return entry["ratio"]
    if isinstance(entry, dict) and "classes_covered" in entry:
        return f"{entry['classes_covered']}/{entry['num_classes']}"
    return entry


def format_table(results: dict) -> str:
    """A plain-text report: one row per sampling setting, then held-out measures and per-class accuracy."""
    tag = f"classifier[{results['classifier']}]"
    columns = [("accuracy", "conditional_accuracy"), ("FID[clf]", f"fid_{tag}"), ("KID[clf]", f"kid_{tag}"),
               ("IS[clf]", f"is_{tag}"), ("covered", "coverage"), ("FID[incep]", "fid_inception"),
               ("KID[incep]", "kid_inception"), ("NN ratio", "memorization"), ("time (s)", "sampling_time_s")]
    settings = results["settings"]
    columns = [(title, key) for title, key in columns if any(key in s for s in settings)]
    labels = [", ".join(f"{k}={v}" for k, v in s["options"].items()) or "defaults" for s in settings]
    width = max([len("setting")] + [len(label) for label in labels])
    lines = [f"{results['source']} ({results['source_kind']}): {settings[0]['num_generated']} images per setting, "
             f"reference {results['reference']} (n={results['num_real']})", "",
             f"{'setting':<{width}}  " + "  ".join(f"{title:>10}" for title, _ in columns)]
    for label, entry in zip(labels, settings):
        cells = []
        for _, key in columns:
            value = _value(entry.get(key, ""))
            cells.append(f"{value:>10.4g}" if isinstance(value, float) else f"{value!s:>10}")
        lines.append(f"{label:<{width}}  " + "  ".join(cells))
    real = results["real_data"]
    lines.append(f"{'real data':<{width}}  IS[clf] {_value(real[f'is_{tag}']):.4g}, "
                 f"classes covered {_value(real['coverage'])}")
    if "fid_inception" in settings[0]:
        fid = settings[0]["fid_inception"]
        lines.append(f"Inception FID/KID: standard FID network, {fid['n']} generated vs {fid['n_reference']} "
                     f"reference images of {fid['reference']}")
    if results["held_out"]:
        lines += ["", "held-out measures: " + ", ".join(
            f"{k} {v:.5g}" if isinstance(v, float) else f"{k} {v}" for k, v in results["held_out"].items())]
    if "per_class_accuracy" in settings[0]:
        lines += ["", "per-class accuracy (one value per setting): " + ", ".join(
            f"{name} " + "/".join(f"{s['per_class_accuracy'][name]:.2f}" for s in settings)
            for name in settings[0]["per_class_accuracy"])]
    return "\n".join(lines)
