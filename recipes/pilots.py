"""Equal-time pilots: one training command, a few flag variants, the same minutes each, scored alike.

    KGEN_DATA_DIR=../shared/data python recipes/pilots.py --family dcgan --data cifar10 --minutes 12 \
        --common "--augment true --ema-decay 0.999" \
        --variants "adam2e-4=;ttur=--learning-rate 1e-4 --discriminator-learning-rate 4e-4;batch64=--batch-size 64" \
        --output-dir ~/kgen-runs/dcgan_pilots --report-dir docs/dcgan/pilots

Each variant is `kgen.train FAMILY --data DATA COMMON FLAGS` in its own run
folder (`--output-dir/NAME`), trained for `--minutes` of wall-clock time; every
variant's flags are checked before the first one trains. A rerun continues an
interrupted variant with the minutes it has left and skips finished ones. The
last checkpoint of each is scored by `kgen.evaluate` (Inception FID of
`--samples` images against the test split, the dataset classifier's FID and
class coverage; a conditional diffusion model draws `--samples / classes` per
class with DDIM-`--steps` at `--guidance-scale`), cached in its run folder, with
the run's last held-out probe beside it (e.g. a DCGAN discriminator's mean
output on training and on test images) and, with `--held-out-images`, the
trainer's own held-out measures (a VAE's IW bound and -ELBO in nats). Writes `results.json`, `tables.md` and
`samples.png` (one row per variant) to `--report-dir`. Pilots rank settings at
a small budget; a ranking can change with longer training.
This file is intentionally short: the logic lives in kgen.studies.pilots.
"""

import dataclasses
import os
import shlex
import sys
import time

import kgen.utils.quiet_start  # noqa: F401  (first: hides TensorFlow's start-up lines)
from kgen.runs import RunFolder
from kgen.studies import cached_measures, markdown_table, pilots, write_report
from kgen.utils.cli import exit_on_bad_input, finite, option, parse_config, require
from kgen.utils.plots import plot_image_rows

# The trainers' held-out measures (--held-out-images) that the table shows: a VAE's bounds, a DDPM's loss.
HELD_OUT_SHOWN = ("iw_nll", "neg_elbo", "denoising_mse", "d_real_held_out")


@dataclasses.dataclass(frozen=True)
class PilotsConfig:
    """Train flag variants of one command for equal minutes and score them alike."""

    family: str = option("dcgan", f"training command: {', '.join(pilots.FAMILIES)}")
    data: str = option("mnist", "dataset name or path (looked up under $KGEN_DATA_DIR)")
    variants: str = option("", "NAME=FLAGS;NAME=FLAGS: each variant's own flags (empty FLAGS: the defaults)")
    common: str = option("", "flags every variant shares, e.g. \"--augment true --epochs 400\"")
    minutes: float = option(12.0, "wall-clock minutes of training per variant")
    samples: int = option(1000, "generated images scored per variant (conditional: samples / classes per class)")
    guidance_scale: float = option(2.0, "classifier-free guidance of conditional diffusion pilots")
    steps: int = option(25, "DDIM steps of diffusion pilots")
    inception_reference: int = option(10_000, "test images of the Inception statistics")
    held_out_images: int = option(0, "test images for the trainer's own held-out measures (a VAE: its IW bound)")
    seed: int = option(0, "seed of the samples and of the metrics")
    output_dir: str = option("runs/pilots", "where the variants' run folders go (OUTPUT_DIR/NAME)")
    report_dir: str = option("runs/pilots/report", "where results.json, tables.md and samples.png go")

    def __post_init__(self):
        require(finite(self.minutes) and 0 < self.minutes <= 24 * 60, f"minutes must be in (0, 1440]; got "
                                                                       f"{self.minutes}.")
        require(10 <= self.samples <= 100_000, f"samples must be in 10..100000; got {self.samples}.")
        require(finite(self.guidance_scale), f"guidance_scale must be finite; got {self.guidance_scale}.")
        require(1 <= self.steps <= 1000, f"steps must be in 1..1000; got {self.steps}.")
        require(0 <= self.held_out_images <= 100_000, "held_out_images must be in 0..100000.")
        require(2 <= self.inception_reference <= 100_000, "inception_reference must be in 2..100000.")


@exit_on_bad_input
def main(argv=None):
    config = parse_config(PilotsConfig, argv)
    variants = pilots.parse_variants(config.variants)
    common = ["--data", config.data, *shlex.split(config.common)]
    # Every variant's flags are checked before the first one trains.
    pilots.pilot_configs(config.family, common, variants, config.minutes, config.output_dir)
    started = time.perf_counter()
    settings = {k: getattr(config, k) for k in ("samples", "guidance_scale", "steps", "held_out_images",
                                                    "inception_reference", "seed")}
    results, rows = {}, []
    for name, flags in variants.items():
        folder = os.path.join(config.output_dir, name)
        record = pilots.train_pilot(config.family, [*common, *flags], folder, config.minutes)
        checkpoint = RunFolder(folder).checkpoint
        print(f"== {name}: scoring {checkpoint}", flush=True)
        scores = cached_measures(folder, {**settings, "step": record["steps"]}, lambda: pilots.pilot_scores(
            checkpoint, config.samples, config.held_out_images, config.inception_reference, config.seed,
            config.guidance_scale, config.steps), name="pilot_scores.json")
        results[name] = {"flags": shlex.join(flags), **record, **scores, "probe": pilots.last_probe(folder)}
    for name, r in results.items():
        shown = {**r["probe"], **{k: v for k, v in r["held_out"].items() if k in HELD_OUT_SHOWN}}
        probe = ", ".join(f"{k} {v:.3f}" for k, v in shown.items() if isinstance(v, float)) or "—"
        covered = f"{r['classes_covered']}/{r['num_classes']}" if r["classes_covered"] is not None else "—"
        rows.append([name, f"`{r['flags']}`" if r["flags"] else "(defaults)", f"{r['steps']:,}",
                     f"{(r['train_time_s'] or 0) / 60:.1f}", f"{r['fid_inception']:.2f}",
                     "—" if r["fid_classifier"] is None else f"{r['fid_classifier']:.2f}", covered, probe])
    lines = [f"`{config.family}` on {config.data}, {config.minutes:g} minutes each; common flags: "
             f"`{config.common or '(none)'}`.", "",
             markdown_table(["variant", "flags", "steps", "minutes", f"Inception FID (n = {config.samples})",
                             "classifier FID", "classes covered", "held-out measures"], rows)]
    os.makedirs(config.report_dir, exist_ok=True)
    rows_of_samples = [(name, pilots.sample_row(RunFolder(os.path.join(config.output_dir, name)).checkpoint,
                                                 seed=config.seed)) for name in variants]
    plot_image_rows(rows_of_samples, os.path.join(config.report_dir, "samples.png"),
                    f"{config.family} pilots on {config.data}, {config.minutes:g} minutes each")
    write_report(config.report_dir, {"config": dataclasses.asdict(config), "variants": results}, lines, started)


if __name__ == "__main__":
    sys.exit(main())
