"""Training runs of a study: one recipe subprocess per run folder, and reading the folder back."""

import subprocess
import sys
from typing import Any, Callable

from kgen.runs import RunFolder
from kgen.utils.cli import config_flags


def train_run(script: str, config: Any) -> str:
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


def read_run(run_dir: str) -> dict:
    """The views of a run folder: `config`, `summary`, `history` and `state` ({} when absent)."""
    folder = RunFolder(run_dir)
    return {name: folder.read(name) for name in ("config", "summary", "history", "state")}


def load_run_model(run_dir: str) -> Any:
    """The trainer of the run folder's last checkpoint."""
    from kgen.trainers import load_trainer

    return load_trainer(RunFolder(run_dir).checkpoint)


def cached_measures(run_dir: str, settings: Any, compute: Callable[[], Any], name: str = "study_eval.json") -> Any:
    """`compute()`'s dict, cached in the run folder under `name` for these `settings`.

    A rerun with the same settings reads the cache (a study redraws its
    report without re-scoring); other settings recompute and replace it.
    """
    folder = RunFolder(run_dir)
    cached = folder.read(name.removesuffix(".json"))
    if cached.get("settings") == settings:
        return cached["results"]
    results = compute()
    folder.write_json(name, {"settings": settings, "results": results})
    return results
