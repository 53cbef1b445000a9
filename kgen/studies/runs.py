"""Training runs of a study: one recipe subprocess per run folder, and reading the folder back."""

import json
import os
import subprocess
import sys

from kgen.utils.atomic import write_json
from kgen.utils.cli import config_flags


def train_run(script, config):
    """Runs the recipe `script` with the flags of its config dataclass `config`; returns the run folder.

    The command line comes from `config_flags` (the inverse of `parse_config`),
    so a study cannot pass a flag the recipe does not have. The recipe resumes
    a run folder that already holds checkpoints, so an interrupted study
    continues where it stopped.
    """
    command = [sys.executable, script, *config_flags(config)]
    print("\n$", " ".join(command[1:]), flush=True)
    subprocess.run(command, check=True)
    return config.output_dir


def read_run(run_dir):
    """The JSON files a `RunRecorder` wrote: `config`, `summary`, `history` and `state` ({} when absent)."""
    run = {}
    for name in ("config", "summary", "history", "state"):
        path = os.path.join(run_dir, f"{name}.json")
        if os.path.isfile(path):
            with open(path) as f:
                run[name] = json.load(f)
        else:
            run[name] = {}
    return run


def load_run_model(run_dir):
    """The trainer of the run folder's last checkpoint."""
    from kgen.trainers import load_trainer

    return load_trainer(os.path.join(run_dir, "checkpoints", "last.keras"))


def cached_measures(run_dir, settings, compute, name="study_eval.json"):
    """`compute()`'s dict, cached in the run folder under `name` for these `settings`.

    A rerun with the same settings reads the cache (a study redraws its
    report without re-scoring); other settings recompute and replace it.
    """
    path = os.path.join(run_dir, name)
    if os.path.isfile(path):
        with open(path) as f:
            cached = json.load(f)
        if cached.get("settings") == settings:
            return cached["results"]
    results = compute()
    write_json(path, {"settings": settings, "results": results})
    return results
