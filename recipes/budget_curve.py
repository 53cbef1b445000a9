"""Inception FID against training CPU hours, one curve per model family.

    python recipes/budget_curve.py --models "DDPM=git:exported/cifar10_denoiser.onnx,\
DCGAN=git:exported/cifar10_generator_equal_budget.onnx" --budget-hours 6.04

Each entry is FAMILY=FILE.onnx (an export with its model card),
FAMILY=git:PATH.onnx: every committed version of that shipped file, which is
the run's state at every export along the way, with the card committed beside
it, or FAMILY=git:COMMIT:PATH.onnx: the one version of that commit. A point's
CPU hours are its card's `train_time_s` (warm starts included).
Every point is sampled and scored the same way (`kgen.evaluate`: Inception FID
against the test split's Inception statistics; conditional models `--samples /
classes` per class at one guidance scale, DDIM) and cached in `--report-dir`
by the file's SHA-256 and the settings, so a rerun scores only new points.
Writes `budget_curve.png`, `results.json` and `tables.md` there. This file is
intentionally short.
"""

import dataclasses
import json
import os
import sys
import tempfile
import time

import kgen.utils.quiet_start  # noqa: F401  (first: hides TensorFlow's start-up lines)
from kgen.evaluate import evaluate
from kgen.export.onnx_files import read_card
from kgen.infer import runtime
from kgen.studies import markdown_table, write_report
from kgen.studies.committed import committed_version, committed_versions, parse_committed, sha256_of
from kgen.utils.atomic import write_json
from kgen.utils.cli import exit_on_bad_input, finite, option, parse_config, require
from kgen.utils.plots import plot_curves


@dataclasses.dataclass(frozen=True)
class BudgetCurveConfig:
    """Inception FID of each family's models against the CPU hours they were trained for."""

    models: tuple[str, ...] = option((), "comma-separated FAMILY=FILE.onnx, FAMILY=git:PATH.onnx (every "
                                               "committed version) or FAMILY=git:COMMIT:PATH.onnx (one) entries")
    samples: int = option(1000, "generated images per point (class-conditional: samples / classes per class)")
    guidance_scale: float = option(2.0, "classifier-free guidance of class-conditional diffusion models")
    steps: int = option(25, "DDIM steps of diffusion models")
    max_hours: float = option(float("inf"), "leave out points trained for longer")
    min_gap_hours: float = option(0.0, "keep a family's point only this many hours after its previous kept one "
                                       "(the last point is always kept)")
    budget_hours: float = option(0.0, "draw the equal budget as a vertical line at these hours (0: none)")
    inception_reference: int = option(10_000, "test images of the Inception statistics")
    seed: int = option(0, "seed of the samples and of the metrics")
    report_dir: str = option("docs/comparison/budget", "where budget_curve.png, results.json and tables.md go")

    def __post_init__(self):
        require(self.models, "--models is required: FAMILY=FILE.onnx, FAMILY=git:PATH.onnx or "
                             "FAMILY=git:COMMIT:PATH.onnx, comma-separated.")
        for entry in self.models:
            family, _, source = entry.partition("=")
            require(family and source, f"models are FAMILY=FILE.onnx, FAMILY=git:PATH.onnx or "
                                       f"FAMILY=git:COMMIT:PATH.onnx; got {entry!r}.")
            commit, path = parse_committed(source)
            require(commit != "", f"{entry!r}: the commit of git:COMMIT:PATH.onnx is empty.")
            path = path or source
            require(path.endswith(".onnx"), f"{entry!r}: {path!r} is not an .onnx path.")
            require(source.startswith("git:") or os.path.isfile(path), f"{entry!r}: no file {path!r}.")
        require(10 <= self.samples <= 100_000, f"samples must be in 10..100000; got {self.samples}.")
        require(finite(self.guidance_scale), f"guidance_scale must be finite; got {self.guidance_scale}.")
        require(1 <= self.steps <= 1000, f"steps must be in 1..1000; got {self.steps}.")
        require(self.max_hours > 0 and self.min_gap_hours >= 0 and self.budget_hours >= 0,
                "max_hours must be > 0, min_gap_hours and budget_hours >= 0.")
        require(2 <= self.inception_reference <= 100_000, "inception_reference must be in 2..100000.")


def points_of(config, folder):
    """{family: [(hours, file, origin)]} sorted by hours, thinned by `min_gap_hours`, cut at `max_hours`."""
    families = {}
    for entry in config.models:
        family, _, source = entry.partition("=")
        commit, committed = parse_committed(source)
        if commit:
            files = [(committed_version(commit, committed, folder), commit)]
        else:
            files = committed_versions(committed, folder) if committed else [(source, source)]
        for path, origin in files:
            card = read_card(path)
            require(card.get("train_time_s") is not None, f"{origin}: its model card records no training time.")
            hours = card["train_time_s"] / 3600
            if hours <= config.max_hours:
                families.setdefault(family, []).append((hours, path, origin))
    for family, points in families.items():
        points.sort()
        kept = [points[0]]
        for point in points[1:]:
            if point[0] - kept[-1][0] >= config.min_gap_hours or point is points[-1]:
                kept.append(point)
        families[family] = kept
    return families


def score(path, config):
    """Inception FID (and conditional accuracy) of one export, cached by its SHA-256 and the settings."""
    digest = sha256_of(path)
    settings = {k: v for k, v in dataclasses.asdict(config).items() if k in (
        "samples", "guidance_scale", "steps", "inception_reference", "seed")}
    cache = os.path.join(config.report_dir, "cache", f"{digest[:16]}.json")
    if os.path.isfile(cache):
        with open(cache) as f:
            cached = json.load(f)
        if cached["settings"] == settings:
            return cached["results"]
    model = runtime.load(path)
    diffusion = model.kind == "denoiser"
    classes = int(model.metadata.get("num_classes") or 0) if diffusion else 0
    started = time.perf_counter()
    results = evaluate(path, num_samples=None if classes else config.samples,
                       per_class=config.samples // classes if classes else None,
                       options={"sampler": "ddim", "num_steps": config.steps} if diffusion else None,
                       guidance_scales=[config.guidance_scale] if classes else None, inception=True,
                       inception_reference=config.inception_reference, held_out_images=0, seed=config.seed)
    setting = results["settings"][0]
    measured = {"fid_inception": setting["fid_inception"]["value"], "n": setting["fid_inception"]["n"],
                "conditional_accuracy": setting.get("conditional_accuracy"), "kind": model.kind,
                "scoring_s": time.perf_counter() - started}
    write_json(cache, {"settings": settings, "results": measured})
    return measured


def training_of(path):
    """What the model card says of the training: CPU hours, steps, epochs, images seen."""
    card = read_card(path)
    return {"hours": card["train_time_s"] / 3600, "steps": card.get("steps"), "epochs": card.get("epochs"),
            "images_seen": card.get("images_seen")}


@exit_on_bad_input
def main(argv=None):
    config = parse_config(BudgetCurveConfig, argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        families = points_of(config, folder)  # every file and card read before any scoring
        os.makedirs(config.report_dir, exist_ok=True)
        results = {}
        for family, points in families.items():
            for hours, path, origin in points:
                print(f"== {family}: {origin} ({hours:.2f} CPU hours)", flush=True)
                results.setdefault(family, []).append({"origin": origin, **training_of(path), **score(path, config)})
    series = {family: ([p["hours"] for p in points], [p["fid_inception"] for p in points])
              for family, points in results.items()}
    panel = {"title": f"Inception FID, n = {config.samples} (lower is better)", "xlabel": "training CPU hours",
             "ylabel": "Inception FID", "series": series, "markers": True, "log_y": True}
    if config.budget_hours:
        panel["vertical_line"] = (config.budget_hours, f"equal budget, {config.budget_hours:g} h")
    plot_curves([panel], os.path.join(config.report_dir, "budget_curve.png"),
                f"FID against CPU hours (diffusion: DDIM-{config.steps}, guidance {config.guidance_scale:g})")
    rows = [[family, f"{p['hours']:.2f}", f"{p['steps']:,}" if p["steps"] else "—",
             f"{p['fid_inception']:.2f}", "—" if p["conditional_accuracy"] is None
             else f"{p['conditional_accuracy']:.1%}", f"`{p['origin'][:8]}`" if len(p["origin"]) == 40
             else f"`{p['origin']}`"] for family, points in results.items() for p in points]
    lines = [markdown_table(["family", "CPU hours", "steps", f"Inception FID (n = {config.samples})",
                             "conditional accuracy", "file (commit)"], rows)]
    write_report(config.report_dir, {"config": dataclasses.asdict(config), "families": results}, lines, started)


if __name__ == "__main__":
    sys.exit(main())
