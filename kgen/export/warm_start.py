"""Warm starts: a new run's weights from an earlier checkpoint or a kgen ONNX export."""

from __future__ import annotations

import os
from typing import Any, Callable

from kgen.export.onnx_files import read_card, read_onnx_metadata
from kgen.export.onnx_import import part_weights
from kgen.runs import RunFolder
from kgen.runs.options import init_files


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
    EMA included) or kgen exports of its parts, comma-separated (`.onnx`:
    e.g. a denoiser's EMA weights, which a DDPM trains on from, or a VAE's
    decoder and encoder; the networks no file holds, and the optimizer,
    start fresh).
    """
    files = init_files(path)
    if files is None:
        raise ValueError(f"--init-from must be an existing .keras checkpoint of the same model, or one or more "
                         f"comma-separated kgen .onnx exports of its parts; got {path!r}.")
    if files[0].endswith(".onnx"):
        lines, parts = [], set()
        for file in files:
            kind = read_onnx_metadata(file)[1].get("kind")
            if kind in parts:
                raise ValueError(f"--init-from names two exports of the {kind}; give one file per part.")
            parts.add(kind)
            error = load_export(model, file)
            lines.append(f"Warm start from {file} (the file and the loaded network differ by at most {error:.2g}).")
        return "\n".join(lines)
    try:
        model.load_weights(path)
    except (ValueError, KeyError) as error:
        raise ValueError(f"cannot warm-start from {path}: its weights do not fit this model "
                         f"({str(error).splitlines()[0]}).") from None
    return f"Warm start from {path}."


def prior_training(path: str) -> dict:
    """What trained the model in `path` (`.onnx`: its card; `.keras`: its run folder), for `warm_start.json`.

    `from` is the path as given, relative to the working folder when it lies
    under it (a card never names a machine's absolute paths). Of several
    exports, the first file's card (the parts of one checkpoint share it).
    """
    files = init_files(path) or [path]
    if len(files) > 1:
        return {**prior_training(files[0]), "from": ",".join(_portable(f) for f in files)}
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
