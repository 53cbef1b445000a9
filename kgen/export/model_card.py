"""Model cards: the JSON record beside every exported model, and its Markdown in the sections users know.

The JSON (`<name>.json`, written by `write_card`) is the record tools read;
the Markdown (`<name>.md`) is the same content for people, in the sections
of Hugging Face model cards: model, intended use, limitations, training
data, training procedure, evaluation, license. Paths in both are portable:
relative to the repository, or under `~/` for a run folder kept outside it.
"""

from __future__ import annotations

import json
import os
from typing import Any

from kgen.utils.atomic import write_json, write_text
from kgen.utils.commands import runnable_command

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LICENSE = "Apache-2.0 (the weights, like kgen's code)"
DATASETS = {
    "mnist": "MNIST (LeCun, Cortes and Burges): 60,000 training and 10,000 test images of handwritten digits, "
             "28x28 grey, 10 classes",
    "cifar10": "CIFAR-10 (Krizhevsky, 2009): 50,000 training and 10,000 test photographs, 32x32 RGB, 10 classes "
               "(airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck)",
}
DISTILLED = ("GuidanceDistillation", "ProgressiveDistillation")  # students of `kgen.train distill`
USES = {
    "generator": "drawing new images of the training distribution from random latents (a GAN generator)",
    "vae_decoder": "drawing images from latents of a VAE's prior, and decoding an encoder's latents",
    "vae_encoder": "mapping images to a VAE's latent space (reconstruction, interpolation)",
    "denoiser": "class-conditional sampling with classifier-free guidance (DDIM, DPM-Solver++, DDPM), and "
                "partial denoising of real images (`kgen.infer denoise --t N`)",
    "sampler": "the whole guided sampler as one ONNX graph, for runtimes without Python (the browser demo)",
    "discriminator": "continuing the GAN's training elsewhere (`--init-from GENERATOR.onnx,DISCRIMINATOR.onnx`), and "
                     "scoring how real images look to it (a logit per image)",
}


def portable(value: Any) -> Any:
    """`value` (a string, or the strings inside lists and dicts) without a machine's absolute paths."""
    if isinstance(value, dict):
        return {k: portable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [portable(v) for v in value]
    if not isinstance(value, str):
        return value
    home = os.path.expanduser("~")
    for prefix, replacement in ((REPOSITORY + os.sep, ""), (REPOSITORY, "."), (home + os.sep, "~/")):
        value = value.replace(prefix, replacement)
    return value


def card_metrics(metrics: dict) -> dict:
    """`kgen.evaluate`'s JSON for a model card: an evaluated `.onnx` named without its folder.

    The folder is where the file sat on the evaluating machine (often a
    scratch copy), which means nothing to a reader of the shipped card. A
    checkpoint keeps its path: its run folder is the card's `output_dir`.
    """
    metrics = dict(metrics or {})
    if isinstance(metrics.get("source"), str) and metrics["source"].endswith(".onnx"):
        metrics["source"] = os.path.basename(os.path.normpath(metrics["source"]))
    return metrics


def record_metrics(onnx_path: str, metrics: dict) -> str:
    """Puts `kgen.evaluate`'s JSON into the card of an exported model (and its Markdown); returns the card's path.

    Raises:
        ValueError: the model has no card beside it.
    """
    json_path = os.path.splitext(onnx_path)[0] + ".json"
    if not os.path.isfile(json_path):
        raise ValueError(f"{onnx_path} has no model card ({json_path}); export it with kgen.export first.")
    with open(json_path) as f:
        card = json.load(f)
    card["metrics"] = card_metrics(metrics)
    return write_card_files(json_path, card)


def card_markdown(card: dict) -> str:
    """The Markdown model card of a JSON card."""
    name = os.path.splitext(card["file"])[0]
    dataset = card.get("dataset") or "unknown"
    config = card.get("recipe_config") or {}
    lines = [f"# {name}", "", "## Model", ""]
    shape = "x".join(map(str, card.get("image_shape") or [])) or "of unrecorded shape"
    lines += [f"- File: `{card['file']}` ({(card.get('export') or {}).get('size_bytes', 0) / 1e6:.1f} MB), "
              f"kind `{card.get('kind', 'unrecorded')}`, trained by kgen's `{card.get('trainer')}` on `{dataset}`, "
              f"images {shape} in [-1, 1]."]
    if config.get("parameters"):
        lines.append(f"- Parameters (every network of the trainer): {config['parameters']:,}.")
    export = card.get("export") or {}
    if export:
        lines.append(f"- ONNX opset {export.get('opset')}; largest difference from the Keras network on random "
                     f"inputs: {export.get('max_abs_error_vs_keras', float('nan')):.2g}.")
    if card.get("quantization"):
        lines.append(f"- Quantized: {json.dumps(card['quantization'])}.")
    use = USES.get(card.get("kind"), "inference with kgen.infer")
    if card.get("trainer") in DISTILLED:
        steps = (card.get("sampling") or {}).get("num_steps", "a few")
        use = (f"class-conditional sampling in {steps} DDIM steps (its default), one network pass each with the "
               f"classifier-free guidance scale as an input (distilled from a DDPM; trained for scales "
               f"{config.get('guidance_min')}-{config.get('guidance_max')})")
    lines += ["", "## Intended use", "",
              f"Research and teaching on {dataset}: {use}. "
              "Run it with `kgen.load` (Python) or `kgen.infer` (command line): onnxruntime, numpy and Pillow, no "
              "deep-learning framework.", "", "## Limitations", "",
              f"- Trained only on {DATASETS.get(dataset, dataset)}; it draws nothing outside those classes and "
              "that resolution, and carries that dataset's biases.",
              "- Trained on a 2-core CPU for a bounded budget (below): the samples are recognisable, not the state "
              "of the art; see the evaluation for how far.",
              "- Classifier-feature FIDs (`classifier[...]`) are measured with kgen's own dataset classifier and are "
              "not comparable with published Inception FIDs; Inception FIDs are stated with their n.", ""]
    lines += _training(card, dataset, config)
    lines += _evaluation(card)
    lines += ["## License", "", LICENSE + ".", ""]
    return "\n".join(lines)


def _training(card: dict, dataset: str, config: dict) -> list:
    hours = (card.get("train_time_s") or 0) / 3600
    lines = ["## Training data", "", f"{DATASETS.get(dataset, dataset)}: the train split"
             + (f", {config['num_examples']:,} images" if config.get("num_examples") else "") + ".", "",
             "## Training procedure", "",
             f"- {card.get('epochs') or 0:.1f} epochs, {card.get('steps') or 0:,} steps, "
             f"{card.get('images_seen') or 0:,} images seen, {hours:.1f} hours of training on 2 CPU cores "
             f"(backend {card.get('train_backend')}).",
             f"- Command: `{card.get('recipe_command') or 'not recorded'}`."]
    if card.get("warm_start"):
        lines.append(f"- Warm-started from `{card['warm_start'].get('from')}` (its training is counted above).")
    chunks = card.get("chunks") or []
    if chunks:
        lines += ["", "| chunk | started | steps | hours | backend, precision | command |", "|---|---|---|---|---|---|"]
        for i, chunk in enumerate(chunks, 1):
            lines.append(f"| {i} | {chunk.get('started', '')[:16]} | {chunk.get('step_start')}-{chunk.get('step_end')} "
                         f"| {(chunk.get('seconds') or 0) / 3600:.2f} | {chunk.get('backend')}, "
                         f"{chunk.get('dtype_policy', '')} | `{chunk.get('command', '')}` |")
    return lines + [""]


def _evaluation(card: dict) -> list:
    metrics = card.get("metrics") or {}
    lines = ["## Evaluation", ""]
    settings = metrics.get("settings") or []
    if not settings:
        values = {k: (v.get("value") if isinstance(v, dict) else v) for k, v in metrics.items()}
        values = {k: v for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if not values:
            return lines + ["Not scored on its own (a sampler graph is its denoiser's network; see that card)."
                            if card.get("kind") == "sampler" else "Not scored yet.", ""]
        lines += [f"Measured on {metrics.get('reference', 'the test split')} (source "
                  f"`{metrics.get('source', card['file'])}`):", "", "| measure | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" for k, v in values.items()]
        return lines + ([""] + [f"Command: `{metrics['command']}`."] if metrics.get("command") else []) + [""]
    lines += [f"`kgen.evaluate` against {metrics.get('reference')} ({metrics.get('num_real')} real images), "
              f"classifier `{metrics.get('classifier')}`:", "",
              "| setting | images | classifier FID | conditional accuracy | Inception FID |", "|---|---|---|---|---|"]
    for entry in settings:
        fid = next((v for k, v in entry.items() if k.startswith("fid_classifier")), {})
        inception = entry.get("fid_inception") or {}
        accuracy = entry.get("conditional_accuracy")
        accuracy = "-" if accuracy is None else f"{100 * accuracy:.1f}%"
        inception = (f"{inception['value']:.1f} (n = {inception.get('n')})"
                     if inception.get("value") is not None else "-")
        lines.append(f"| {json.dumps(entry.get('options', {}))} | {entry.get('num_generated')} "
                     f"| {fid.get('value', float('nan')):.2f} | {accuracy} | {inception} |")
    if metrics.get("command"):
        lines += ["", f"Command: `{metrics['command']}`."]
    held_out = metrics.get("held_out") or {}
    if held_out:
        lines += ["", f"Held-out measures: `{json.dumps(held_out)[:400]}`."]
    return lines + [""]


def write_card_files(json_path: str, card: dict) -> str:
    """Writes `card` (paths made portable, chunk commands runnable) as `json_path` and its Markdown; returns it."""
    card = portable(card)
    if card.get("chunks"):
        card["chunks"] = [{**chunk, "command": runnable_command(chunk["command"])} if "command" in chunk else chunk
                          for chunk in card["chunks"]]
    write_json(json_path, card)
    write_text(os.path.splitext(json_path)[0] + ".md", card_markdown(card))
    return json_path


def refresh_cards(folder: str) -> list:
    """Refreshes every model card in `folder` (a JSON beside an `.onnx`); returns the Markdown paths."""
    if not os.path.isdir(folder):
        raise ValueError(f"--refresh-cards needs a folder of exported models; {folder!r} is not one.")
    return [refresh_card(os.path.join(folder, name)) for name in sorted(os.listdir(folder))
            if name.endswith(".json") and os.path.isfile(os.path.join(folder, name[:-5] + ".onnx"))]


def refresh_card(json_path: str) -> str:
    """Rewrites a card's JSON with portable paths and writes its Markdown beside it; returns the Markdown path."""
    with open(json_path) as f:
        write_card_files(json_path, json.load(f))
    return os.path.splitext(json_path)[0] + ".md"

