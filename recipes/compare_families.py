"""GAN vs VAE vs diffusion: the same measures for every model, one table per dataset.

    python recipes/compare_families.py                   # the shipped models in exported/
    python recipes/compare_families.py --checkpoints "cifar10/DCGAN=runs/dcgan/checkpoints/last.keras"
    python recipes/compare_families.py --models "cifar10/DDPM=git:064cad2:exported/cifar10_denoiser.onnx"

Every model is an exported `.onnx` (generator, VAE decoder or denoiser) with
its model card, on disk or as committed (`git:COMMIT:PATH.onnx`: a shipped
file as it was at that commit, card included); its samples are scored by `kgen.evaluate` (Inception FID and
KID against the test split, the dataset classifier's FID, class coverage and
KL to uniform, conditional accuracy, the memorisation check). A model given a
`.keras` checkpoint as well (`--checkpoints`, same DATASET/NAME) also gets
the measures only the trainer has: the overfitting probe on training against
test images (a VAE's ELBO and IW NLL, a discriminator's output, a denoising
error) and the Keras sampling time beside onnxruntime's. Writes
`results.json`, `tables.md` and one sample figure per dataset to
`--report-dir`; each model's measures are cached there, so a rerun only
redraws the report (the cache is keyed by the files' SHA-256, so it holds in
a fresh clone too). This file is intentionally short: the logic lives in kgen.
"""

import dataclasses
import json
import os
import sys
import tempfile
import time

import kgen.utils.quiet_start  # noqa: F401  (first: hides TensorFlow's start-up lines)

# isort: split
import numpy as np

from kgen.callbacks import GeneralizationProbe
from kgen.evaluate import evaluate
from kgen.export.onnx_files import read_card
from kgen.infer import runtime
from kgen.infer.sample import draw
from kgen.runs import RunFolder
from kgen.studies import markdown_table, write_report
from kgen.studies.committed import committed_version, parse_committed, sha256_of
from kgen.trainers import load_trainer
from kgen.utils.atomic import write_json
from kgen.utils.cli import exit_on_bad_input, finite, option, parse_config, require
from kgen.utils.plots import plot_class_grid, plot_image_rows

SHIPPED = ("mnist/DCGAN=exported/mnist_generator.onnx", "mnist/VAE=exported/mnist_vae_decoder.onnx",
           "mnist/DDPM=exported/mnist_denoiser.onnx", "cifar10/DCGAN=exported/cifar10_generator.onnx",
           "cifar10/VAE=exported/cifar10_vae_decoder.onnx", "cifar10/DDPM=exported/cifar10_denoiser.onnx")


@dataclasses.dataclass(frozen=True)
class CompareConfig:
    """Score GANs, VAEs and diffusion models on the same measures."""

    models: tuple[str, ...] = option(SHIPPED, "comma-separated DATASET/NAME=FILE.onnx (exported with its card) "
                                                  "or DATASET/NAME=git:COMMIT:PATH.onnx (as committed)")
    checkpoints: tuple[str, ...] = option((), "comma-separated DATASET/NAME=FILE.keras: the same models' "
                                              "checkpoints, for the probe and the Keras sampling time")
    samples: int = option(1000, "generated images per model (class-conditional: samples / classes per class)")
    guidance_scale: float = option(3.0, "classifier-free guidance of class-conditional diffusion models")
    steps: int = option(25, "DDIM steps of diffusion models")
    inception_reference: int = option(10_000, "test images of the Inception statistics")
    probe_images: int = option(1000, "training and test images of the overfitting probe (checkpoints)")
    timing_images: int = option(100, "images per sampling-time measurement")
    seed: int = option(0, "seed of the samples and of the metrics")
    report_dir: str = option("docs/comparison", "where results.json, tables.md and the figures go")

    def __post_init__(self):
        require(10 <= self.samples <= 100_000, f"samples must be in 10..100000; got {self.samples}.")
        require(finite(self.guidance_scale), f"guidance_scale must be finite; got {self.guidance_scale}.")
        require(1 <= self.steps <= 1000, f"steps must be in 1..1000; got {self.steps}.")
        require(2 <= self.inception_reference <= 100_000, "inception_reference must be in 2..100000.")
        require(1 <= self.probe_images <= 100_000 and 1 <= self.timing_images <= 10_000,
                "probe_images must be in 1..100000 and timing_images in 1..10000.")
        for entry in self.models + self.checkpoints:
            require("/" in entry.split("=")[0] and "=" in entry,
                    f"models and checkpoints are DATASET/NAME=FILE entries; got {entry!r}.")
        models, checkpoints = _entries(self.models), _entries(self.checkpoints)
        for key, path in models.items():
            commit, inside = parse_committed(path)
            if path.startswith("git:"):
                require(commit and inside and inside.endswith(".onnx"),
                        f"{key}: {path!r} is not git:COMMIT:PATH.onnx (one committed version of an export).")
            else:
                require(path.endswith(".onnx") and os.path.isfile(path), f"{key}: {path!r} is not an .onnx file.")
        for key, path in checkpoints.items():
            require(key in models, f"checkpoint {key} has no model of the same DATASET/NAME in --models.")
            require(path.endswith(".keras") and os.path.isfile(path), f"{key}: {path!r} is not a .keras file.")


def _entries(pairs):
    return dict(pair.split("=", 1) for pair in pairs)


def training_record(onnx_path, checkpoint):
    """Parameters, CPU hours and epochs: the run folder when there is a checkpoint, else the model card."""
    import onnx

    proto = onnx.load(onnx_path)
    parameters = int(sum(np.prod(t.dims) for t in proto.graph.initializer))
    card = read_card(onnx_path)
    record = {"parameters": parameters, "trainer": card.get("trainer"), "train_time_s": card.get("train_time_s"),
              "epochs": card.get("epochs"), "steps": card.get("steps"), "card_metrics": card.get("metrics", {})}
    if checkpoint:
        run = RunFolder.of_checkpoint(checkpoint).training_record()
        if run["steps"] is not None:
            record.update(train_time_s=run["train_time_s"], epochs=run["epochs"], steps=run["steps"])
    return record


def draw_options(kind, config):
    """`kgen.infer.sample.draw` options of a model kind: DDIM steps and guidance for a denoiser."""
    if kind == "denoiser":
        return {"sampler": "ddim", "steps": config.steps, "guidance_scale": config.guidance_scale}
    return {}


def time_sampling(path, count, options, num_classes, seed):
    """Seconds per image of the `kgen.infer` sampling loop on `path` (.onnx: onnxruntime; .keras: Keras)."""
    model = runtime.load(path)
    labels = np.arange(count) % num_classes if num_classes else None
    draw(model, 2, seed, None if labels is None else labels[:2], progress=False, **options)  # warm-up
    start = time.perf_counter()
    images = draw(model, count, seed, labels, progress=False, **options)
    seconds = time.perf_counter() - start
    return seconds / len(images), images


def timing_and_sharpness(data, onnx_path, options, num_classes, config):
    """onnxruntime's time per image, and the sharpness of those images against as many test images."""
    from kgen.evaluate import load_split
    from kgen.metrics import laplacian_variance

    seconds, images = time_sampling(onnx_path, config.timing_images, options, num_classes, config.seed)
    real, _ = load_split(data, binarize=False, limit=config.timing_images)
    sharp, reference = float(laplacian_variance(images).mean()), float(laplacian_variance(real).mean())
    return {"onnxruntime_s_per_image": seconds,
            "sharpness": {"samples": sharp, "test": reference, "ratio": sharp / reference, "n": len(images)}}


def score(data, name, onnx_path, checkpoint, config):
    model = runtime.load(onnx_path)
    num_classes = int(model.metadata.get("num_classes") or 0) if model.kind == "denoiser" else 0
    diffusion = model.kind == "denoiser"
    options = draw_options(model.kind, config)
    results = evaluate(
        onnx_path, data=data, num_samples=None if num_classes else config.samples,
        per_class=config.samples // num_classes if num_classes else None,
        options={"num_steps": config.steps} if diffusion else None,
        guidance_scales=[config.guidance_scale] if num_classes else None, inception=True,
        inception_reference=config.inception_reference, held_out_images=0, seed=config.seed, memorization=True)
    measures = {"evaluate": results["settings"][0], "kind": model.kind, "num_classes": num_classes,
                **training_record(onnx_path, checkpoint)}
    measures.update(timing_and_sharpness(data, onnx_path, options, num_classes, config))
    if checkpoint:
        measures["keras_s_per_image"], _ = time_sampling(checkpoint, config.timing_images, options, num_classes,
                                                         config.seed)
        probe = GeneralizationProbe.from_data(data, config.probe_images, seed=config.seed)
        measures["probe"] = probe(load_trainer(checkpoint))
        measures["probe_images"] = config.probe_images
    return measures


def cached_score(data, name, onnx_path, checkpoint, config):
    """`score`, cached in the report folder for these files (by content) and settings."""
    files = {"model": onnx_path, **({"checkpoint": checkpoint} if checkpoint else {})}
    settings = {"files": {role: sha256_of(path) for role, path in files.items()},
                **{k: v for k, v in dataclasses.asdict(config).items() if k not in ("models", "checkpoints",
                                                                                   "report_dir")}}
    path = os.path.join(config.report_dir, "cache", f"{data}_{name}.json")
    if os.path.isfile(path):
        with open(path) as f:
            cached = json.load(f)
        if cached["settings"] == json.loads(json.dumps(settings)):
            results = cached["results"]
            if "sharpness" not in results:  # measured by a later version of this command: add it
                results.update(timing_and_sharpness(data, onnx_path, draw_options(results["kind"], config),
                                                    results["num_classes"], config))
                write_json(path, {"settings": settings, "results": results})
            return results
    results = score(data, name, onnx_path, checkpoint, config)
    write_json(path, {"settings": settings, "results": results})
    return results


def _probe_cell(measures, keys):
    probe = measures.get("probe")
    if not probe:
        return "—"
    for key, label, digits in keys:
        if f"train_{key}" in probe:
            return f"{label}: train {probe[f'train_{key}']:.{digits}f}, test {probe[f'test_{key}']:.{digits}f}"
    return "—"


def _classifier_fid(measures):
    return next(v["value"] for k, v in measures["evaluate"].items() if k.startswith("fid_classifier"))


def _likelihood_cell(measures):
    if "test_iw_nll" in (measures.get("probe") or {}):
        return f"{measures['probe']['test_iw_nll']:.2f}"
    if "iw_nll" in measures["card_metrics"]:  # a shipped decoder without its checkpoint: the card's number
        return f"{measures['card_metrics']['iw_nll']:.2f} (model card)"
    return "—"


def table(per_model):
    """Rows of measures, one column per model."""
    def ev(m, key, field="value"):
        entry = m["evaluate"].get(key)
        return entry[field] if isinstance(entry, dict) else entry

    def fmt(value, spec):
        return "—" if value is None else format(value, spec)

    rows = []
    for label, cell in [
        ("Inception FID ↓ (n generated / test)", lambda m: f"{ev(m, 'fid_inception'):.2f} "
                                                          f"({ev(m, 'fid_inception', 'n')} / "
                                                          f"{ev(m, 'fid_inception', 'n_reference')})"),
        ("Inception KID ×1000 ↓", lambda m: f"{1000 * ev(m, 'kid_inception'):.2f}"),
        ("classifier-feature FID ↓", lambda m: f"{_classifier_fid(m):.2f}"),
        ("classes covered", lambda m: f"{ev(m, 'coverage', 'classes_covered')}/{ev(m, 'coverage', 'num_classes')}"),
        ("KL(class histogram ‖ uniform) ↓", lambda m: f"{ev(m, 'coverage', 'kl_to_uniform'):.4f}"),
        ("sharpness: Laplacian variance, samples / test images",
         lambda m: f"{m['sharpness']['ratio']:.2f} ({m['sharpness']['samples']:.4f} / {m['sharpness']['test']:.4f})"),
        ("conditional accuracy ↑", lambda m: fmt(m["evaluate"].get("conditional_accuracy"), ".1%")),
        ("test IW NLL, k=100 (nats) ↓", _likelihood_cell),
        ("overfitting probe (train vs test)", lambda m: _probe_cell(m, [("neg_elbo", "-ELBO", 2),
                                                                         ("d_real", "D(x)", 3),
                                                                         ("denoising_mse", "denoising MSE", 4)])),
        ("memorisation: NN distance ratio (near copies)",
         lambda m: f"{ev(m, 'memorization', 'ratio'):.3f} ({ev(m, 'memorization', 'near_copies'):.1%})"),
        ("ONNX weights (sampling network)", lambda m: f"{m['parameters']:,}"),
        ("training: CPU hours (epochs)", lambda m: "—" if m["train_time_s"] is None
         else f"{m['train_time_s'] / 3600:.2f} ({fmt(m['epochs'], '.1f' if (m['epochs'] or 0) % 1 else '.0f')})"),
        ("ms per image, onnxruntime", lambda m: f"{1000 * m['onnxruntime_s_per_image']:.2f}"),
        ("ms per image, Keras", lambda m: fmt(m.get("keras_s_per_image") and 1000 * m["keras_s_per_image"], ".2f")),
    ]:
        rows.append([label] + [cell(m) for m in per_model.values()])
    return markdown_table(["measure", *per_model], rows)


@exit_on_bad_input
def main(argv=None):
    config = parse_config(CompareConfig, argv)
    with tempfile.TemporaryDirectory() as scratch:
        models = {key: committed_version(*parse_committed(path), scratch) if path.startswith("git:") else path
                  for key, path in _entries(config.models).items()}  # every committed file read before any scoring
        compare(config, models, _entries(config.checkpoints))


def compare(config, models, checkpoints):
    os.makedirs(config.report_dir, exist_ok=True)
    started = time.perf_counter()
    report = {"config": dataclasses.asdict(config), "datasets": {}}
    md = []
    for data in dict.fromkeys(key.split("/")[0] for key in models):
        per_model, rows = {}, []
        guided = f" (diffusion: DDIM-{config.steps}, guidance {config.guidance_scale:g})"
        for key in [k for k in models if k.split("/")[0] == data]:
            name = key.split("/", 1)[1]
            print(f"\n== {key}: {models[key]}" + (f" + {checkpoints[key]}" if key in checkpoints else ""), flush=True)
            per_model[name] = cached_score(data, name, models[key], checkpoints.get(key), config)
            model = runtime.load(models[key])
            num_classes = per_model[name]["num_classes"]
            options = draw_options(model.kind, config)
            labels = np.arange(10) % num_classes if num_classes else None
            rows.append((name, draw(model, 10, config.seed, labels, progress=False, **options)))
            if num_classes:  # a conditional model: four samples per class, the class names above the columns
                grid = draw(model, 4 * num_classes, config.seed + 1, np.tile(np.arange(num_classes), 4),
                            progress=False, **options)
                plot_class_grid(grid.reshape(4, num_classes, *grid.shape[1:]),
                                model.class_names or [str(k) for k in range(num_classes)],
                                os.path.join(config.report_dir, f"{data}_{name}_classes.png"),
                                f"{data}, {name}: four samples per class, seed {config.seed + 1}{guided}")
        report["datasets"][data] = per_model
        md += [f"### {data}{guided}", "", table(per_model), ""]
        plot_image_rows(rows, os.path.join(config.report_dir, f"{data}_samples.png"),
                        f"{data}: 10 samples per model, seed {config.seed} (class-conditional: one per class)")
    write_report(config.report_dir, report, md, started)

if __name__ == "__main__":
    sys.exit(main())
