"""Conditional accuracy and FID against images seen, from a long run's evaluations.

    python recipes/long_run_progress.py --evals docs/diffusion_study/cifar10_long_run

Reads every `eval_step_<steps>.json` in `--evals` (the JSON of
`python -m kgen.evaluate ... --guidance-scale 1,3,5 --json`, written when a
training chunk ends), and draws `accuracy.png` there: the share of samples the
dataset classifier reads as the asked class, and the classifier-feature FID,
per guidance scale against the images the model had seen (steps x batch).
Prints the same as a Markdown table. This file is intentionally short.
"""

import dataclasses
import glob
import json
import os
import re
import sys

import kgen.utils.quiet_start  # noqa: F401  (first: hides TensorFlow's start-up lines)
from kgen.studies import markdown_table
from kgen.utils.cli import exit_on_bad_input, option, parse_config, require
from kgen.utils.plots import plot_curves


@dataclasses.dataclass(frozen=True)
class ProgressConfig:
    """Plot a long run's conditional accuracy against images seen."""

    evals: str = option("docs/diffusion_study/cifar10_long_run", "folder of eval_step_<steps>.json files")
    batch_size: int = option(128, "images per training step of the run")

    def __post_init__(self):
        require(os.path.isdir(self.evals), f"--evals {self.evals!r} is not a folder.")
        require(self.batch_size >= 1, f"batch_size must be >= 1; got {self.batch_size}.")


def read_sweep(path):
    """{guidance scale: (accuracy, classifier FID, samples)} of one evaluation JSON (both layouts kgen wrote)."""
    with open(path) as f:
        results = json.load(f)
    sweep = {}
    for entry in results.get("settings") or results.get("guidance", []):
        scale = entry.get("options", entry).get("guidance_scale")
        fid = next(v["value"] for k, v in entry.items() if k.startswith("fid_classifier"))
        count = entry.get("num_generated", results.get("num_generated"))
        sweep[float(scale)] = (entry["conditional_accuracy"], fid, count)
    return sweep


@exit_on_bad_input
def main(argv=None):
    config = parse_config(ProgressConfig, argv)
    points = {}
    for path in glob.glob(os.path.join(config.evals, "eval_step_*.json")):
        match = re.fullmatch(r"eval_step_(\d+)\.json", os.path.basename(path))
        if match:
            points[int(match.group(1)) * config.batch_size] = read_sweep(path)
    require(points, f"no eval_step_<steps>.json in {config.evals}.")
    seen = sorted(points)
    scales = sorted({g for sweep in points.values() for g in sweep})
    series = {key: {f"guidance {g:g}": ([n for n in seen if g in points[n]], [points[n][g][i] for n in seen
                                                                               if g in points[n]])
                    for g in scales} for key, i in (("accuracy", 0), ("fid", 1))}
    plot_curves([
        {"title": "samples read as the asked class", "xlabel": "images seen", "ylabel": "conditional accuracy",
         "series": series["accuracy"], "markers": True},
        {"title": "classifier-feature FID (lower is better)", "xlabel": "images seen", "ylabel": "FID",
         "series": series["fid"], "markers": True},
    ], os.path.join(config.evals, "accuracy.png"), f"{config.evals}: DDIM-25 samples, per guidance scale")
    rows = [[f"{n:,}", f"{n / 50_000:.1f}"] + [f"{points[n][g][0]:.1%} / {points[n][g][1]:.2f}" if g in points[n]
                                               else "—" for g in scales] for n in seen]
    print(markdown_table(["images seen", "epochs (50k)", *[f"w = {g:g}: accuracy / FID" for g in scales]], rows))
    print(f"wrote {os.path.join(config.evals, 'accuracy.png')}")


if __name__ == "__main__":
    sys.exit(main())
