"""The diffusion study: two hyperparameter sets, class grids, guidance, partial denoising.

    python recipes/diffusion_study.py                          # MNIST, sets A and B
    python recipes/diffusion_study.py --data cifar10 --sets A --epochs 2 --widths 32,64,128

Trains each set with `recipes/train_ddpm.py` (one run folder each, resumable),
then measures on the EMA weights: class-conditional samples (accuracy of the
dataset classifier on `--per-class` samples per class, classifier-feature
FID against the test split) for each guidance scale, one sample per class as
a labelled grid, and partial denoising of test images noised for
`--denoise-t` steps (PSNR/SSIM of noised and denoised against the original).
Writes `results.json`, `tables.md` and figures to `--report-dir`.
This file is intentionally short: the logic lives in kgen.
"""

import dataclasses
import os
import time

import kgen.utils.quiet_start  # noqa: F401  (first: hides TensorFlow's start-up lines)

# isort: split
import keras
import numpy as np

from kgen.studies import (
    classifier_reference,
    conditional_quality,
    markdown_table,
    partial_denoising,
    read_run,
    train_run,
    write_report,
)
from kgen.studies.runs import load_run_model
from kgen.train.ddpm import DDPMConfig  # the command's own config, so flags cannot drift
from kgen.utils.cli import exit_on_bad_input, option, parse_config, require_known
from kgen.utils.plots import plot_class_grid, plot_curves, plot_image_rows, smooth

TRAIN_DDPM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train_ddpm.py")
# The two hyperparameter sets: they differ in learning rate, beta schedule and T.
SETS = {
    "A": {"learning_rate": 1e-3, "beta_schedule": "cosine", "timesteps": 1000},
    "B": {"learning_rate": 2e-4, "beta_schedule": "linear", "timesteps": 250},
}


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """Train and compare DDPM hyperparameter sets; class grids; partial denoising."""

    data: str = option("mnist", "dataset name or path (looked up under $KGEN_DATA_DIR)")
    sets: tuple[str, ...] = option(("A", "B"), "hyperparameter sets to run (A: lr 1e-3, cosine, T=1000; "
                                               "B: lr 2e-4, linear, T=250)")
    epochs: int = option(4, "training epochs of every set")
    widths: tuple[int, ...] = option((16, 32, 64), "UNet channels per level")
    batch_size: int = option(128, "images per training step")
    per_class: int = option(100, "samples per class for accuracy and FID")
    sample_steps: int = option(25, "DDIM steps of the evaluation samples")
    guidance_scales: tuple[float, ...] = option((1.0, 2.0, 4.0), "classifier-free guidance scales evaluated "
                                                                 "(first set only: its first)")
    denoise_t: tuple[int, ...] = option((50, 10, 5), "noising steps of the partial-denoising experiment")
    denoise_images: int = option(200, "test images of the partial-denoising measures")
    seed: int = option(0, "seed of training and sampling")
    output_dir: str = option("runs/ddpm", "where the run folders go")
    report_dir: str = option("docs/diffusion_study", "where results.json, tables.md and figures go")


def train(name, config):
    hp = SETS[name]
    data = os.path.basename(os.path.normpath(config.data))
    return train_run(TRAIN_DDPM, DDPMConfig(
        data=config.data, epochs=config.epochs, widths=config.widths, batch_size=config.batch_size,
        seed=config.seed, learning_rate=hp["learning_rate"], beta_schedule=hp["beta_schedule"],
        timesteps=hp["timesteps"], sample_steps=config.sample_steps,
        output_dir=os.path.join(config.output_dir, f"{data}_{name}"),
        # The study's models predate AdaGN and Min-SNR (train_ddpm's defaults since); keep them.
        adaptive_norm=False, snr_gamma=0.0))


@exit_on_bad_input
def main(argv=None):
    config = parse_config(StudyConfig, argv)
    names = config.sets
    require_known(names, SETS, "sets")
    guidances = config.guidance_scales
    data = os.path.basename(os.path.normpath(config.data))
    os.makedirs(config.report_dir, exist_ok=True)
    started = time.perf_counter()
    runs = {name: train(name, config) for name in names}

    classifier, real_features, test_images, test_labels = classifier_reference(config.data)
    report = {"config": dataclasses.asdict(config), "sets": {}, "backend": keras.backend.backend()}
    histories = {}
    for i, name in enumerate(names):
        run_dir = runs[name]
        model, run = load_run_model(run_dir), read_run(run_dir)
        class_names, summary, histories[name] = run["config"]["class_names"], run["summary"], run["history"]
        entry = {"hyperparameters": SETS[name], "train_time_s": summary["total_time_s"], "epochs": summary["epochs"],
                 "steps": summary["steps"], "parameters": model.denoiser.count_params(),
                 "final_epoch_loss": histories[name]["epochs"][-1]["loss"], "sampling": []}
        for guidance in (guidances if i == 0 else guidances[:1]):
            images, _, quality = conditional_quality(model, classifier, real_features, len(class_names),
                                                     config.per_class, num_steps=config.sample_steps,
                                                     guidance_scale=guidance, seed=config.seed)
            print(f"{data} set {name}, guidance {guidance:g}: accuracy {quality['conditional_accuracy']:.4f}, "
                  f"FID[classifier] {quality['fid_classifier']:.2f}", flush=True)
            entry["sampling"].append(quality)
            grid = images.reshape(len(class_names), config.per_class, *images.shape[1:])[:, :8]
            plot_class_grid(np.swapaxes(grid, 0, 1), class_names,
                            os.path.join(config.report_dir, f"{data}_{name}_classes_w{guidance:g}.png"),
                            f"{data}, set {name}: DDIM-{config.sample_steps}, guidance {guidance:g} "
                            "(one column per class)")
        one = model.sample(labels=np.arange(len(class_names)), num_steps=config.sample_steps,
                           guidance_scale=guidances[min(1, len(guidances) - 1)], seed=config.seed + 1)
        plot_class_grid(one[None], class_names, os.path.join(config.report_dir, f"{data}_{name}_one_per_class.png"))
        entry["partial_denoising"], rows = partial_denoising(model, test_images[: config.denoise_images],
                                                             config.denoise_t, seed=config.seed)
        plot_image_rows(rows, os.path.join(config.report_dir, f"{data}_{name}_partial_denoising.png"),
                        "test images noised for t steps with q(x_t|x_0), then denoised with t DDPM steps")
        report["sets"][name] = entry

    plot_curves([
        {"title": f"{data}: training loss per step (moving average)", "xlabel": "step", "ylabel": "MSE",
         "log_y": True, "series": {f"set {n}: lr {SETS[n]['learning_rate']:g}, {SETS[n]['beta_schedule']}, "
                                   f"T={SETS[n]['timesteps']}":
                                   ([r["step"] for r in h["steps"]],
                                    smooth([r["loss"] for r in h["steps"]], max(1, len(h["steps"]) // 50)))
                                   for n, h in histories.items()}},
        {"title": f"{data}: epoch mean loss", "xlabel": "epoch", "ylabel": "MSE",
         "series": {f"set {n}": ([r["epoch"] for r in h["epochs"]], [r["loss"] for r in h["epochs"]])
                    for n, h in histories.items()}},
    ], os.path.join(config.report_dir, f"{data}_losses.png"))

    quality = [[name, f"{SETS[name]['learning_rate']:g}", SETS[name]["beta_schedule"], SETS[name]["timesteps"],
                e["epochs"], f"{e['train_time_s']:.0f}", f"{e['final_epoch_loss']:.4f}", f"{q['guidance_scale']:g}",
                f"{q['conditional_accuracy']:.4f}", f"{q['fid_classifier']:.2f}"]
               for name, e in report["sets"].items() for q in e["sampling"]]
    denoising = [[name, t, f"{m['psnr_noised']:.2f}", f"{m['psnr_denoised']:.2f}", f"{m['ssim_noised']:.4f}",
                  f"{m['ssim_denoised']:.4f}"]
                 for name, e in report["sets"].items() for t, m in e["partial_denoising"].items()]
    md = [f"### {data}: sample quality (DDIM-{config.sample_steps}, {config.per_class} samples per class)", "",
          markdown_table(["set", "lr", "schedule", "T", "epochs", "train time (s)", "final loss", "guidance",
                          "classifier accuracy", "classifier FID"], quality),
          "", f"### {data}: partial denoising (DDPM from step t, {config.denoise_images} test images)", "",
          markdown_table(["set", "t", "PSNR noised (dB)", "PSNR denoised (dB)", "SSIM noised", "SSIM denoised"],
                         denoising)]
    write_report(config.report_dir, report, md, started, prefix=f"{data}_")

if __name__ == "__main__":
    main()
