"""Warm starts: a new run's weights from an earlier checkpoint or a kgen ONNX export."""

from __future__ import annotations

import os
from typing import Any, Callable

from kgen.export.onnx_files import read_card, read_onnx_metadata
from kgen.export.onnx_import import part_weights
from kgen.runs import RunFolder


def load_export(trainer: Any, path: str) -> float:
    """Loads the weights of a kgen ONNX export of one of `trainer`'s parts; the other networks keep theirs.

    Returns the largest absolute difference between the file's outputs and
    the loaded network's. Calls the trainer's `loaded_export` hook after.

    Raises:
        ValueError: the file is not an export of one of this trainer's parts.
    """
    _, metadata = read_onnx_metadata(path)
    parts = trainer.inference_parts()
    accepted = getattr(trainer, "warm_start_trainers", (type(trainer).__name__,))
    if metadata.get("trainer") not in accepted or metadata.get("kind") not in parts:
        raise ValueError(f"{path} holds a {metadata.get('trainer')} {metadata.get('kind')}; this "
                         f"{type(trainer).__name__} exports {', '.join(parts)}.")
    weights, error = part_weights(trainer, metadata["kind"], path)
    network, _ = parts[metadata["kind"]]()
    network.set_weights(weights)
    trainer.loaded_export(metadata["kind"], network)
    return error


def warm_start(model: Any, path: str) -> str:
    """Loads the weights of an earlier model into `model`; returns a line saying what was loaded.

    `path` is a kgen checkpoint of the same model (`.keras`: every network,
    EMA included) or a kgen export of one of its parts (`.onnx`: e.g. a
    denoiser's EMA weights, which a DDPM trains on from; the other networks
    and the optimizer start fresh).
    """
    if not (isinstance(path, str) and path.endswith((".keras", ".onnx")) and os.path.isfile(path)):
        raise ValueError(f"--init-from must be an existing .keras checkpoint or kgen .onnx export of the "
                         f"same model; got {path!r}.")
    if path.endswith(".onnx"):
        error = load_export(model, path)
        return f"Warm start from {path} (the file and the loaded network differ by at most {error:.2g})."
    try:
        model.load_weights(path)
    except (ValueError, KeyError) as error:
        raise ValueError(f"cannot warm-start from {path}: its weights do not fit this model "
                         f"({str(error).splitlines()[0]}).") from None
    return f"Warm start from {path}."


def prior_training(path: str) -> dict:
    """What trained the model in `path` (`.onnx`: its card; `.keras`: its run folder), for `warm_start.json`.

    `from` is the path as given, relative to the working folder when it lies
    under it (a card never names a machine's absolute paths).
    """
    if path.endswith(".onnx"):
        card = read_card(path)
        history = {k: card.get(k) for k in ("epochs", "steps", "train_time_s", "images_seen")}
        history["chunks"] = card.get("chunks", [])
    else:
        history = RunFolder.of_checkpoint(path).training_record()
        history.pop("backend")
    return {"from": _portable(path), **history}


def warm_starter(path: str) -> Callable:
    """`fit_resumable`'s `warm_start`: `model -> (line, prior_training)` for the file `path`."""
    return lambda model: (warm_start(model, path), prior_training(path))


def _portable(path: str) -> str:
    relative = os.path.relpath(os.path.abspath(path))
    return relative if not relative.startswith("..") else os.path.abspath(path)
