"""Class-conditional sample quality of a diffusion model (`.keras` checkpoint or exported ONNX)."""

import os
import time

import numpy as np

from kgen import metrics
from kgen.evaluate.evaluation import DEFAULT_CLASSIFIER_DIR, ClassifierFeatures, _batched


def evaluate_denoiser(source, data=None, split="test", classifier=None, per_class=100, guidance_scales=(1.0,),
                      sampler="ddim", num_steps=25, seed=0, batch_size=500):
    """Samples `per_class` images of every class at each guidance scale and scores them.

    For each scale: the share of samples the dataset classifier reads as the
    class they were drawn for (overall and per class), the classifier-feature
    Fréchet distance to `per_class x classes` images of the reference split,
    and class coverage. The model runs through `kgen.infer` (onnxruntime for
    ONNX files, Keras for checkpoints) with the numpy samplers, so a
    checkpoint and its export score the same.

    Args:
        source: str. A denoiser `.onnx` from `kgen.export`, or a DDPM `.keras`.
        data: str or None. Reference dataset; None is the model's own
            (its metadata). Defaults to `None`.
        split: str. Reference split. Defaults to `"test"`.
        classifier: str or None. Classifier `.keras`; None uses
            `exported/classifiers/<data>.keras`. Defaults to `None`.
        per_class: int. Samples per class. Defaults to `100`.
        guidance_scales: sequence of float. Defaults to `(1.0,)`.
        sampler: str. `"ddim"` or `"ddpm"`. Defaults to `"ddim"`.
        num_steps: int. Sampling steps. Defaults to `25`.
        seed: int. Seed of the initial noise. Defaults to `0`.
        batch_size: int. Classifier batch. Defaults to `500`.

    Returns:
        dict: `source`, `reference`, `sampler`, `num_steps`, `per_class`,
        and `guidance` (one entry per scale).
    """
    from kgen.data import load_images
    from kgen.infer import runtime
    from kgen.infer.sample import draw

    if int(per_class) < 2:
        raise ValueError(f"per_class must be at least 2 (FID needs a covariance); got {per_class}.")
    scales = [float(g) for g in guidance_scales]
    if not scales or not all(np.isfinite(scales)):
        raise ValueError(f"guidance scales must be finite numbers; got {guidance_scales!r}.")
    model = runtime.load(source)
    model.require("denoiser")
    num_classes = int(model.metadata.get("num_classes") or 0)
    if num_classes < 2:
        raise ValueError(f"{source} is not class-conditional; conditional accuracy needs classes.")
    data = data or model.metadata.get("dataset")
    if not data:
        raise ValueError(f"{source} names no dataset in its metadata; pass --data.")
    name = os.path.basename(os.path.normpath(data))
    clf = ClassifierFeatures(classifier or os.path.join(DEFAULT_CLASSIFIER_DIR, f"{name}.keras"))
    if tuple(model.image_shape) != clf.image_shape:
        raise ValueError(f"{source} draws {tuple(model.image_shape)} images but the classifier expects "
                         f"{clf.image_shape}.")
    labels = np.repeat(np.arange(num_classes), int(per_class)).astype(np.int32)
    real = np.concatenate([x.numpy() for x, _ in load_images(
        data, split=split, batch_size=batch_size, shuffle=False, drop_remainder=False, limit=len(labels))])
    real_features, _ = _batched(clf, real, batch_size, f"classifier features: {len(real)} real")
    class_names = model.class_names or [str(i) for i in range(num_classes)]
    results = {"source": source, "reference": f"{data}:{split}", "sampler": sampler, "num_steps": int(num_steps),
               "per_class": int(per_class), "num_generated": len(labels), "num_real": len(real),
               "classifier": clf.name, "guidance": []}
    for scale in scales:
        print(f"sampling {len(labels)} images, {sampler}-{num_steps}, guidance {scale:g}")
        start = time.perf_counter()
        images = draw(model, len(labels), seed, labels, sampler, int(num_steps), 0.0, scale)
        seconds = time.perf_counter() - start
        features, probs = _batched(clf, images, batch_size)
        accuracy = metrics.conditional_accuracy(probs, labels)
        results["guidance"].append({
            "guidance_scale": scale,
            "conditional_accuracy": accuracy["accuracy"],
            "per_class_accuracy": {class_names[k]: v for k, v in accuracy["per_class"].items()},
            f"fid_classifier[{clf.name}]": metrics.frechet_distance(real_features, features),
            "coverage": metrics.class_coverage(probs),
            "sampling_time_s": seconds,
        })
    return results


def format_denoiser_table(results):
    """One row per guidance scale, then the per-class accuracies."""
    fid_key = f"fid_classifier[{results['classifier']}]"
    lines = [f"{results['source']}: {results['sampler']}-{results['num_steps']}, {results['per_class']} samples "
             f"per class, reference {results['reference']} (n={results['num_real']})", "",
             f"{'guidance':>8}  {'accuracy':>8}  {'FID[classifier]':>15}  {'classes covered':>15}  {'time (s)':>8}"]
    for g in results["guidance"]:
        cov = g["coverage"]
        lines.append(f"{g['guidance_scale']:>8g}  {g['conditional_accuracy']:>8.4f}  {g[fid_key]['value']:>15.3f}  "
                     f"{cov['classes_covered']:>7}/{cov['num_classes']:<7}  {g['sampling_time_s']:>8.1f}")
    lines += ["", "per-class accuracy: " + ", ".join(
        f"{name} " + "/".join(f"{g['per_class_accuracy'][name]:.2f}" for g in results["guidance"])
        for name in results["guidance"][0]["per_class_accuracy"])]
    return "\n".join(lines)
