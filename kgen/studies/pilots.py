"""Equal-time pilots: the same training command with a few flag variants, each given the same minutes.

`recipes/pilots.py` is the command; these are its steps, so a study can call them too.
"""

import importlib
import shlex
import subprocess
import sys
from typing import Any, Optional, Sequence

from kgen.runs import RunFolder
from kgen.utils.cli import parse_config, require

FAMILIES = {"dcgan": "DCGANConfig", "vae": "VAEConfig", "ddpm": "DDPMConfig"}
# Flags the pilot sets itself: every variant trains the same minutes into its own folder.
RESERVED = ("--time-budget", "--output-dir", "--resume", "--init-from", "--override-flags")


def parse_variants(text: str) -> dict:
    """`NAME=FLAGS;NAME=FLAGS` -> {name: [flag, ...]} (FLAGS split as a shell would; empty: the defaults)."""
    variants = {}
    for entry in (e.strip() for e in text.split(";") if e.strip()):
        name, equals, flags = entry.partition("=")
        name = name.strip()
        require(equals and name.replace("_", "").replace("-", "").isalnum(),
                f"variants are NAME=FLAGS separated by ';' (NAME: letters, digits, - and _); got {entry!r}.")
        require(name not in variants, f"variant {name!r} is named twice.")
        variants[name] = shlex.split(flags)
    require(variants, "--variants is required: NAME=FLAGS;NAME=FLAGS (FLAGS may be empty: the defaults).")
    return variants


def pilot_configs(family: str, common: Sequence[str], variants: dict, minutes: float, output_dir: str) -> dict:
    """{name: the training command's parsed config}: every variant's flags checked before any training.

    Raises:
        ValueError: an unknown family, a flag the pilot sets itself, or a
            value the training command refuses (its own message).
    """
    require(family in FAMILIES, f"family must be one of {', '.join(FAMILIES)}; got {family!r}.")
    config_cls = getattr(importlib.import_module(f"kgen.train.{family}"), FAMILIES[family])
    configs = {}
    for name, flags in variants.items():
        argv = [*common, *flags]
        taken = [f for f in argv if f.split("=")[0] in RESERVED]
        require(not taken, f"variant {name!r}: {', '.join(taken)} is set by the pilot itself (each variant trains "
                           f"--minutes into {output_dir}/NAME).")
        configs[name] = parse_config(config_cls, [*argv, "--time-budget", str(minutes), "--output-dir",
                                                  f"{output_dir}/{name}"], prog=f"kgen.train {family}")
    return configs


def train_pilot(family: str, argv: Sequence[str], folder: str, minutes: float) -> dict:
    """Trains `kgen.train FAMILY ARGV` into `folder` until it has trained `minutes` in all; returns its record.

    An interrupted pilot continues with the minutes it has left (`--time-budget`
    is a changeable flag), so every variant gets the same training time; a
    finished one (its minutes, or its epochs, done) is not run again.
    """
    record = _record(folder)
    left = minutes - (record["train_time_s"] or 0.0) / 60.0
    if left > 0.01 * minutes and not _finished(folder):
        command = [sys.executable, "-m", "kgen.train", family, *argv, "--time-budget", f"{left:.3f}",
                   "--output-dir", folder]
        print("\n$", shlex.join(["python", *command[1:]]), flush=True)
        subprocess.run(command, check=True)
        record = _record(folder)
    return record


def last_probe(folder: str) -> dict:
    """The run's last per-epoch held-out probe (e.g. a DCGAN's `train_d_real` and `test_d_real`), {} if none."""
    epochs = RunFolder(folder).read("history").get("epochs") or [{}]
    return {k: v for k, v in epochs[-1].items() if k.startswith(("train_", "test_"))}


def _record(folder: str) -> dict:
    folder = RunFolder(folder)
    if not folder.state():
        return {"train_time_s": None, "steps": None, "images_seen": None, "epochs": None}
    return {k: v for k, v in folder.training_record().items() if k in ("train_time_s", "steps", "images_seen",
                                                                         "epochs")}


def _finished(folder: str) -> bool:
    folder = RunFolder(folder)
    state, epochs = folder.state(), folder.config().get("epochs")
    return bool(state) and epochs is not None and state.get("epoch", 0) >= epochs


def pilot_scores(checkpoint: str, samples: int, held_out_images: int = 0, inception_reference: int = 10_000,
                 seed: int = 0, guidance_scale: Optional[float] = None, steps: Optional[int] = None) -> dict:
    """Inception FID of `samples` images of the checkpoint (and its classifier scores and held-out measures).

    A class-conditional denoiser draws `samples / classes` per class with
    DDIM-`steps` at `guidance_scale`; the held-out measures are the trainer's
    own (`held_out_metrics`: a DCGAN discriminator's output on test images, a
    VAE's bound) on `held_out_images` test images.
    """
    from kgen.evaluate import evaluate
    from kgen.trainers import load_trainer

    model = load_trainer(checkpoint)
    classes = int(model.num_classes)
    options = {"sampler": "ddim", "num_steps": steps} if "num_steps" in model.sample_options else None
    results = evaluate(checkpoint, num_samples=None if classes else samples,
                       per_class=samples // classes if classes else None, options=options,
                       guidance_scales=[guidance_scale] if classes and guidance_scale is not None else None,
                       inception=True, inception_reference=inception_reference, held_out_images=held_out_images,
                       seed=seed)
    setting = results["settings"][0]
    classifier_fid = next((v["value"] for k, v in setting.items() if k.startswith("fid_classifier")), None)
    coverage = setting.get("coverage") or {}
    return {"fid_inception": setting["fid_inception"]["value"], "n": setting["fid_inception"]["n"],
            "fid_classifier": classifier_fid, "classes_covered": coverage.get("classes_covered"),
            "num_classes": coverage.get("num_classes"), "conditional_accuracy": setting.get("conditional_accuracy"),
            "held_out": results.get("held_out") or {}}


def sample_row(checkpoint: str, count: int = 10, seed: int = 0) -> Any:
    """`count` samples of the checkpoint (one per class of a conditional model), for the report's figure."""
    from kgen.trainers import load_trainer

    model = load_trainer(checkpoint)
    labels = [i % model.num_classes for i in range(count)] if model.class_conditional else None
    return model.sample(count, labels=labels, seed=seed)
