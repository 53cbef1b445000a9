"""The VAE architecture study: four variants, same budget, then a beta sweep.

    python recipes/compare_vaes.py                        # MNIST and CIFAR-10
    python recipes/compare_vaes.py --datasets mnist --seeds 0,1

Trains every (dataset, variant, seed) with `recipes/train_vae.py` (one run
folder each, so an interrupted study resumes where it stopped), evaluates the
checkpoints on the test split with `kgen.evaluate.evaluate_vae`, then trains
the best MNIST variant (lowest importance-weighted NLL) with each beta of
`--betas`. Writes to `--report-dir`: `results.json`, `tables.md` and the
figures (reconstructions, prior samples, interpolations, loss curves, the
beta trade-off). This file is intentionally short: the logic lives in kgen.
"""

import dataclasses
import os
import time

import kgen.utils.quiet_start  # noqa: F401  (first: hides TensorFlow's start-up lines)

# isort: split
import keras
import numpy as np

from kgen.evaluate import DEFAULT_CLASSIFIER_DIR, ClassifierFeatures, evaluate_vae, load_split
from kgen.studies import (
    aggregate_seeds,
    cached_measures,
    latent_walks,
    measure_table,
    read_run,
    train_run,
    write_report,
)
from kgen.studies.runs import load_run_model
from kgen.train.vae import VAEConfig  # the command's own config, so flags cannot drift
from kgen.utils.cli import exit_on_bad_input, option, parse_config
from kgen.utils.plots import plot_curves, plot_image_rows, smooth

VARIANTS = ("vanilla", "hourglass_encoder", "hourglass_decoder", "hourglass_both")
TRAIN_VAE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train_vae.py")


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """Compare the four VAE architectures, then sweep beta on the best one."""

    datasets: tuple[str, ...] = option(("mnist", "cifar10"), "comma-separated dataset names (looked up under "
                                                             "$KGEN_DATA_DIR)")
    variants: tuple[str, ...] = option(VARIANTS, "comma-separated variants")
    epochs: str = option("mnist=5,cifar10=3", "epochs per dataset, name=epochs pairs")
    latent_dim: int = option(32, "latent size, the same for every variant")
    widths: tuple[int, ...] = option((32, 64), "channels per stride-2 stage, the same for every variant")
    batch_size: int = option(128, "images per training step")
    seeds: tuple[int, ...] = option((0,), "comma-separated seeds; more than one gives mean ± std")
    betas: tuple[float, ...] = option((0.5, 1.0, 4.0), "betas of the sweep on the best MNIST variant (empty: no sweep)")
    iw_samples: int = option(100, "k of the importance-weighted NLL")
    iw_images: int = option(1000, "test images the importance-weighted NLL is computed on")
    prior_samples: int = option(5000, "prior samples for the classifier-feature FID")
    output_dir: str = option("runs/vae_study", "where the run folders go")
    report_dir: str = option("docs/vae_study", "where results.json, tables.md and the figures go")


def train(data, variant, seed, epochs, config, beta=1.0):
    run_dir = os.path.join(config.output_dir, data, f"{variant}_beta{beta:g}_seed{seed}")
    return train_run(TRAIN_VAE, VAEConfig(data=data, variant=variant, epochs=epochs, latent_dim=config.latent_dim,
                                          widths=config.widths, beta=beta, batch_size=config.batch_size, seed=seed,
                                          output_dir=run_dir))


def evaluate_run(run_dir, images, labels, classifier, config, seed):
    """The run's test measures; cached in the run folder, so a rerun only redraws the report."""
    model = load_run_model(run_dir)
    summary = read_run(run_dir)["summary"]
    settings = {"iw_samples": config.iw_samples, "iw_images": config.iw_images,
                "prior_samples": config.prior_samples, "seed": seed, "epochs": summary["epochs"]}

    def compute():
        results = evaluate_vae(model, images, labels, classifier, iw_samples=config.iw_samples,
                               iw_images=config.iw_images, num_prior_samples=config.prior_samples, seed=seed)
        return {**results, "train_time_s": summary["total_time_s"], "epochs": summary["epochs"]}

    return model, cached_measures(run_dir, settings, compute)


ROWS = [("iw_nll", "IW NLL (nats) ↓", 2), ("neg_elbo", "-ELBO (nats) ↓", 2), ("kl", "KL (nats)", 2),
        ("mse", "MSE ↓", 4), ("psnr", "PSNR (dB) ↑", 2), ("binarized_accuracy", "binarised acc. ↑", 4),
        ("recon_accuracy", "classifier acc. of recon. ↑", 4), ("fid_classifier", "classifier FID of samples ↓", 2),
        ("parameters", "parameters", 0), ("train_time_s", "training time (s)", 0)]


@exit_on_bad_input
def main(argv=None):
    config = parse_config(StudyConfig, argv)
    datasets, variants, seeds, betas = config.datasets, config.variants, config.seeds, config.betas
    epochs = {k: int(v) for k, v in (pair.split("=") for pair in config.epochs.split(","))}
    if unknown := set(variants) - set(VARIANTS):
        raise ValueError(f"unknown variants {sorted(unknown)}; accepted: {', '.join(VARIANTS)}.")
    if missing := [d for d in datasets if d not in epochs]:
        raise ValueError(f"--epochs has no entry for {missing}; give name=epochs pairs, e.g. mnist=5.")
    os.makedirs(config.report_dir, exist_ok=True)
    started = time.perf_counter()
    report = {"config": dataclasses.asdict(config), "backend": keras.backend.backend(), "datasets": {}}
    md = []
    for data in datasets:
        images, labels = load_split(data)
        name = os.path.basename(os.path.normpath(data))
        classifier = ClassifierFeatures(os.path.join(DEFAULT_CLASSIFIER_DIR, f"{name}.keras"))
        per_variant, models, histories = {}, {}, {}
        for variant in variants:
            runs = [train(data, variant, seed, epochs[data], config) for seed in seeds]
            results = []
            for seed, run_dir in zip(seeds, runs):
                model, res = evaluate_run(run_dir, images, labels, classifier, config, seed)
                print(f"{data} {variant} seed {seed}: " + ", ".join(
                    f"{k}={v:.4g}" for k, v in res.items() if isinstance(v, float)), flush=True)
                results.append(res)
            per_variant[variant] = {"per_seed": results, "aggregate": aggregate_seeds(results)}
            models[variant] = model  # the last seed's model, for the figures
            histories[variant] = read_run(runs[-1])["history"]
        report["datasets"][data] = per_variant
        cols = [per_variant[v]["aggregate"] for v in variants]
        seed_list = ",".join(map(str, config.seeds))
        md += [f"### {data} ({epochs[data]} epochs, seeds {seed_list})", "", measure_table(cols, variants, ROWS), ""]

        shown = images[:12]
        plot_image_rows([("input", shown)] + [(v, keras.ops.convert_to_numpy(models[v].reconstruct(shown)))
                                              for v in variants],
                        os.path.join(config.report_dir, f"{name}_reconstructions.png"),
                        f"{data}: test inputs and reconstructions")
        z = np.random.default_rng(0).standard_normal((12, config.latent_dim)).astype("float32")
        plot_image_rows([(v, keras.ops.convert_to_numpy(models[v].generate(z))) for v in variants],
                        os.path.join(config.report_dir, f"{name}_prior_samples.png"),
                        f"{data}: samples from the prior (same latents for every variant)")
        plot_image_rows([(f"{v}", latent_walks(models[v], images[20:22])) for v in variants],
                        os.path.join(config.report_dir, f"{name}_interpolations.png"),
                        f"{data}: decoded straight line between two test images' posterior means")
        plot_curves([
            {"title": f"{data}: {key} per step (moving average)", "xlabel": "step", "ylabel": "nats (log)",
             "log_y": True,
             "series": {v: ([r["step"] for r in h["steps"]],
                            smooth([r[key] for r in h["steps"]], max(1, len(h["steps"]) // 50)))
                        for v, h in histories.items()}}
            for key in ("neg_elbo", "kl")
        ], os.path.join(config.report_dir, f"{name}_losses.png"), f"{data}: training curves of the four variants")

    if betas and "mnist" in report["datasets"]:
        per_variant = report["datasets"]["mnist"]
        best = min(per_variant, key=lambda v: per_variant[v]["aggregate"]["iw_nll"]["mean"])
        images, labels = load_split("mnist")
        classifier = ClassifierFeatures(os.path.join(DEFAULT_CLASSIFIER_DIR, "mnist.keras"))
        sweep = {}
        for beta in betas:
            run_dir = train("mnist", best, seeds[0], epochs["mnist"], config, beta=beta)
            _, res = evaluate_run(run_dir, images, labels, classifier, config, seeds[0])
            sweep[f"{beta:g}"] = res
        report["beta_sweep"] = {"variant": best, "results": sweep}
        cols = [{k: {"mean": v, "std": 0.0} for k, v in r.items() if isinstance(v, (int, float))}
                for r in sweep.values()]
        md += [f"### beta sweep: {best} on mnist ({epochs['mnist']} epochs, seed {seeds[0]})", "",
               measure_table(cols, [f"beta={b}" for b in sweep], ROWS), ""]
        recon = [r["reconstruction_nll"] for r in sweep.values()]
        plot_curves([{"title": f"mnist, {best}: test reconstruction vs KL", "xlabel": "KL (nats)",
                      "ylabel": "reconstruction -log p(x|z) (nats)", "points": True,
                      "series": {f"beta={b}": ([r["kl"]], [rc]) for (b, r), rc in zip(sweep.items(), recon)}}],
                    os.path.join(config.report_dir, "mnist_beta_tradeoff.png"))

    write_report(config.report_dir, report, md, started)

if __name__ == "__main__":
    main()
