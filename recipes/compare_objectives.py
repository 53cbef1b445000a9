"""Which diffusion objective converges fastest on little compute: Min-SNR-gamma and AdaGN vs the default.

    KGEN_DATA_DIR=../shared/data python recipes/compare_objectives.py            # MNIST, 2 epochs
    python recipes/compare_objectives.py --variants baseline,both --epochs 3

Trains every variant with `recipes/train_ddpm.py` (same data, seed, widths,
dtype policy and batch size; one resumable run folder each), stopping after
each epoch to score the EMA weights: conditional accuracy of the dataset
classifier and classifier-feature FID on `--per-class` guided DDIM samples per
class. So each row is one (variant, images seen) point, and "accuracy with
half the images" reads straight off the table. Writes `results.json`,
`tables.md` and `accuracy.png` to `--report-dir`.
This file is intentionally short: the logic lives in kgen.
"""

import dataclasses
import os
import time

import kgen.utils.quiet_start  # noqa: F401  (first: hides TensorFlow's start-up lines)

# isort: split
import keras

from kgen.evaluate import DEFAULT_CLASSIFIER_DIR
from kgen.studies import classifier_reference, conditional_quality, markdown_table, read_run, train_run, write_report
from kgen.studies.runs import load_run_model
from kgen.train.ddpm import DDPMConfig  # the command's own config, so flags cannot drift
from kgen.utils.cli import exit_on_bad_input, option, parse_config, require_known
from kgen.utils.plots import plot_curves

TRAIN_DDPM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train_ddpm.py")
VARIANTS = {
    "baseline": {"snr_gamma": 0.0, "adaptive_norm": False},
    "min_snr": {"snr_gamma": 5.0, "adaptive_norm": False},
    "adagn": {"snr_gamma": 0.0, "adaptive_norm": True},
    "both": {"snr_gamma": 5.0, "adaptive_norm": True},
}


@dataclasses.dataclass(frozen=True)
class CompareConfig:
    """Train DDPM objective variants at equal budgets and score them after every epoch."""

    data: str = option("mnist", "dataset name or path (looked up under $KGEN_DATA_DIR)")
    variants: tuple[str, ...] = option(("baseline", "min_snr", "adagn", "both"), f"variants: {', '.join(VARIANTS)}")
    epochs: int = option(2, "epochs of every variant (scored after each)")
    widths: tuple[int, ...] = option((16, 32, 64), "UNet channels per level")
    dtype_policy: str = option("mixed_bfloat16", "dtype policy of every run")
    per_class: int = option(50, "samples per class for accuracy and FID")
    sample_steps: int = option(25, "DDIM steps of the evaluation samples")
    guidance_scale: float = option(2.0, "classifier-free guidance of the evaluation samples")
    seed: int = option(0, "seed of training and sampling")
    output_dir: str = option("runs/objectives", "where the run folders go")
    report_dir: str = option("docs/objectives", "where results.json, tables.md and accuracy.png go")


def train(variant, epochs, config):
    data = os.path.basename(os.path.normpath(config.data))
    return train_run(TRAIN_DDPM, DDPMConfig(data=config.data, widths=config.widths, epochs=epochs, seed=config.seed,
                                            dtype_policy=config.dtype_policy, sample_steps=config.sample_steps,
                                            guidance_scale=config.guidance_scale,
                                            output_dir=os.path.join(config.output_dir, f"{data}_{variant}"),
                                            **VARIANTS[variant]))


def score(run_dir, classifier, real_features, num_classes, config):
    model, run = load_run_model(run_dir), read_run(run_dir)
    _, _, quality = conditional_quality(model, classifier, real_features, num_classes, config.per_class,
                                        num_steps=config.sample_steps, guidance_scale=config.guidance_scale,
                                        seed=config.seed)
    state = run["state"]
    return {"epoch": state["epoch"], "steps": state["step"], "train_time_s": state["elapsed_s"],
            "images_seen": state["step"] * DDPMConfig.batch_size,
            "epoch_loss": run["history"]["epochs"][-1]["loss"], "parameters": model.denoiser.count_params(),
            "conditional_accuracy": quality["conditional_accuracy"], "fid_classifier": quality["fid_classifier"],
            "samples": quality["samples"]}


@exit_on_bad_input
def main(argv=None):
    config = parse_config(CompareConfig, argv)
    names = config.variants
    require_known(names, VARIANTS, "variants")
    if config.epochs < 1 or config.per_class < 2:
        raise ValueError("epochs must be >= 1 and per_class >= 2.")
    data = os.path.basename(os.path.normpath(config.data))
    classifier_path = os.path.join(DEFAULT_CLASSIFIER_DIR, f"{data}.keras")
    if not os.path.isfile(classifier_path):
        raise ValueError(f"no shipped classifier for {data!r} ({classifier_path}); accepted: mnist, cifar10.")
    os.makedirs(config.report_dir, exist_ok=True)
    started = time.perf_counter()
    classifier, real_features, _, _ = classifier_reference(config.data, classifier_path)
    results = {name: [] for name in names}
    for epoch in range(1, config.epochs + 1):
        for name in names:  # epoch by epoch, so an early stop still compares equal budgets
            run_dir = train(name, epoch, config)
            results[name].append(score(run_dir, classifier, real_features, 10, config))
            r = results[name][-1]
            print(f"{name} epoch {epoch}: accuracy {r['conditional_accuracy']:.4f}, "
                  f"FID[classifier] {r['fid_classifier']:.2f}", flush=True)

    rows = [[name, VARIANTS[name]["snr_gamma"] or "-", "yes" if VARIANTS[name]["adaptive_norm"] else "no",
             f"{r['parameters']:,}", r["epoch"], f"{r['images_seen']:,}", f"{r['train_time_s']:.0f}",
             f"{r['epoch_loss']:.4f}", f"{r['conditional_accuracy']:.4f}", f"{r['fid_classifier']:.2f}"]
            for name in names for r in results[name]]
    md = [f"### {data}: objective variants (widths {','.join(map(str, config.widths))}, {config.dtype_policy}, "
          f"seed {config.seed}; DDIM-{config.sample_steps}, guidance {config.guidance_scale:g}, "
          f"{config.per_class} samples per class)", "",
          markdown_table(["variant", "Min-SNR gamma", "AdaGN", "parameters", "epochs", "images seen",
                          "train time (s)", "epoch loss", "classifier accuracy", "classifier FID"], rows)]
    plot_curves([
        {"title": f"{data}: conditional accuracy vs images seen", "xlabel": "images seen",
         "ylabel": "classifier accuracy", "series": {
             n: ([r["images_seen"] for r in rs], [r["conditional_accuracy"] for r in rs])
             for n, rs in results.items()}},
        {"title": f"{data}: classifier FID vs images seen", "xlabel": "images seen", "ylabel": "FID",
         "series": {n: ([r["images_seen"] for r in rs], [r["fid_classifier"] for r in rs])
                    for n, rs in results.items()}},
    ], os.path.join(config.report_dir, f"{data}_accuracy.png"))
    report = {"config": dataclasses.asdict(config), "variants": VARIANTS, "results": results,
              "backend": keras.backend.backend()}
    write_report(config.report_dir, report, md, started, prefix=f"{data}_")


if __name__ == "__main__":
    main()
