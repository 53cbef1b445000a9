"""`kgen.train distill`: a student denoiser that samples a guided image in a few network passes.

    kgen.train distill --data mnist --output-dir runs/mnist_fast        # both stages, one command
    kgen.infer sample --model runs/mnist_fast/steps/exported/mnist_denoiser.onnx --labels all  # after kgen.export

Stage `guidance` (Meng et al.) trains a copy of a DDPM's denoiser, with the
guidance scale as a fourth input and v as its output, to give the
teacher's classifier-free-guided output in one pass (`--teacher-steps`
DDIM steps). Stage `steps` (Salimans & Ho) halves that student's DDIM steps
once per round of `--round-steps`, down to `--student-steps`. `--stage
both` (the default) runs the first into `<output-dir>/guidance`, exports it,
and runs the second into `<output-dir>/steps`; each is a resumable run
folder like every family's, and rerunning the same command continues
whichever is unfinished. The exported student samples with `kgen.infer
sample` at the steps it was trained for.
"""

import dataclasses
import math
import os
from typing import TYPE_CHECKING, Any, Callable, Optional, Sequence

from kgen.runs.options import TrainingRunOptions, default_of
from kgen.train.session import training_command
from kgen.utils.cli import finite, option, parse_config, require

if TYPE_CHECKING:
    from kgen.runs import FitStatus

STAGES = ("both", "guidance", "steps")


@dataclasses.dataclass(frozen=True)
class DistillConfig(TrainingRunOptions):
    """Distil a diffusion model's guidance (stage guidance), then its sampling steps (stage steps)."""

    epochs: int = default_of("epochs", 5)
    learning_rate: float = default_of("learning_rate", 1e-4)
    output_dir: str = default_of("output_dir", "runs/distill")
    stage: str = option("both", "what to distil: guidance (one pass per step), steps (halving rounds, from "
                                "--teacher), or both: guidance into <output-dir>/guidance for --guidance-epochs, "
                                "its export, then steps into <output-dir>/steps for --epochs")
    guidance_epochs: int = option(4, "--stage both: epochs of stage guidance")
    teacher: str = option("", "the model to distil: a kgen .onnx export of a DDPM denoiser (stages guidance and both; "
                              "default the shipped <data>_denoiser.onnx) or of a stage's student (stage steps)")
    guidance_min: float = option(1.0, "smallest guidance scale trained for")
    guidance_max: float = option(5.0, "largest guidance scale trained for")
    label_dropout: float = option(0.1, "probability of the null label (unconditional sampling)")
    teacher_steps: int = option(32, "DDIM steps the stage-guidance student samples with, where stage steps starts")
    student_steps: int = option(4, "DDIM steps at the end of stage steps (teacher_steps / 2^rounds)")
    round_steps: int = option(2000, "stage steps: training steps per halving round")
    guidance_scale: float = option(3.0, "guidance of the per-epoch sample grid")

    def __post_init__(self):
        super().__post_init__()
        require(self.stage in STAGES, f"stage must be one of {', '.join(STAGES)}; got {self.stage!r}.")
        require(self.stage != "steps" or self.teacher,
                "stage steps needs --teacher: the .onnx export of a stage's student.")
        require(not self.teacher or self.teacher.endswith(".onnx"),
                f"teacher must be a kgen .onnx export; got {self.teacher!r}.")
        require(finite(self.guidance_min) and finite(self.guidance_max) and 0 <= self.guidance_min <= self.guidance_max,
                f"guidance_min and guidance_max must satisfy 0 <= min <= max; got {self.guidance_min}, "
                f"{self.guidance_max}.")
        require(0 <= self.label_dropout < 1, f"label_dropout must be in [0, 1); got {self.label_dropout}.")
        require(self.round_steps >= 1 and self.guidance_epochs >= 1,
                f"round_steps and guidance_epochs must be >= 1; got {self.round_steps}, {self.guidance_epochs}.")
        ratio = self.teacher_steps / self.student_steps if self.student_steps >= 1 else 0
        require(self.teacher_steps >= 2 and ratio >= 2 and ratio == 2 ** round(math.log2(ratio)),
                "teacher_steps / student_steps must be a power of two >= 2; got "
                f"{self.teacher_steps} / {self.student_steps}.")
        require(finite(self.guidance_scale), f"guidance_scale must be a finite number; got {self.guidance_scale}.")


def teacher_network(path: str, read_card: Callable[[str], dict], guidance_input: bool = False) -> Any:
    """The `UNet` of a kgen denoiser export, rebuilt from its card (the flags, or the network, that trained it)."""
    from kgen.models import UNet

    card = read_card(path)
    flags = card.get("recipe_config") or {}
    if "network" in flags:
        return UNet.from_config(flags["network"])
    missing = [k for k in ("image_shape", "widths", "class_names") if k not in flags]
    if missing:
        raise ValueError(f"{path}: its model card does not say how the network was built (no {', '.join(missing)}); "
                         "distil a denoiser exported by kgen.export from a kgen.train ddpm run.")
    return UNet(flags["image_shape"], flags["widths"], flags.get("num_res_blocks", 1),
                flags.get("attention_resolution", 8), num_classes=len(flags["class_names"]),
                adaptive_norm=flags.get("adaptive_norm", False), guidance_input=guidance_input)


def build(config, teacher_path):
    """The stage's trainer (untrained student) and the warm start that loads the teacher into it."""
    from kgen.export.onnx_files import read_card, read_onnx_metadata
    from kgen.export.warm_start import load_export, prior_training, warm_start
    from kgen.trainers import DDPM, GuidanceDistillation, ProgressiveDistillation

    _, metadata = read_onnx_metadata(teacher_path)
    schedule = metadata.get("schedule") or {}
    guidance = (config.guidance_min, config.guidance_max)
    if config.stage == "guidance":
        if metadata.get("trainer") != "DDPM":
            raise ValueError(f"{teacher_path} holds a {metadata.get('trainer')} {metadata.get('kind')}; stage guidance "
                             "distils a DDPM denoiser.")
        teacher = DDPM(teacher_network(teacher_path, read_card), schedule["num_train_timesteps"],
                       schedule["beta_schedule"], schedule["prediction_type"])
        # After `load_export` both of the DDPM's networks hold the file's (EMA) weights; `denoiser` is the UNet.
        model = GuidanceDistillation(
            teacher.denoiser, GuidanceDistillation.student_of(teacher.denoiser),
            schedule["num_train_timesteps"], schedule["beta_schedule"], schedule["prediction_type"], guidance,
            config.label_dropout, config.teacher_steps, seed=config.seed)

        def load_teacher(trainer):
            error = load_export(teacher, teacher_path)  # into the DDPM's networks, the trainer's teacher among them
            for layer in teacher.denoiser.layers:
                if layer.weights:
                    trainer.student.get_layer(layer.name).set_weights(layer.get_weights())
            return error
    else:
        if metadata.get("trainer") not in ProgressiveDistillation.warm_start_trainers:
            raise ValueError(f"{teacher_path} holds a {metadata.get('trainer')} {metadata.get('kind')}; stage steps "
                             f"distils a student of {' or '.join(ProgressiveDistillation.warm_start_trainers)}.")
        own_steps = (metadata.get("sampling") or {}).get("num_steps")
        if own_steps != config.teacher_steps:
            raise ValueError(f"{teacher_path} samples in {own_steps} steps; give --teacher-steps {own_steps}.")
        model = ProgressiveDistillation(
            teacher_network(teacher_path, read_card), schedule["num_train_timesteps"], schedule["beta_schedule"],
            config.teacher_steps, config.student_steps, config.round_steps, guidance, config.label_dropout,
            seed=config.seed)

        def load_teacher(trainer):
            return load_export(trainer, teacher_path)

    def warm(trainer):
        error = load_teacher(trainer)
        line = f"Teacher {teacher_path} (the file and the loaded network differ by at most {error:.2g})."
        if config.init_from:
            line += "\n" + warm_start(trainer, config.init_from)
        return line, prior_training(config.init_from or teacher_path)

    return model, warm


@training_command
def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    """Parses the flags, distils (one stage, or both one after the other), and returns the exit status."""
    config = parse_config(DistillConfig, argv, prog=prog)
    from kgen.train.session import program
    from kgen.utils.cli import command_line
    from kgen.utils.shipped import shipped_path

    teacher = config.teacher or shipped_path(f"{config.data}_denoiser.onnx")
    require(os.path.isfile(teacher), f"teacher {teacher!r} does not exist; give --teacher FILE.onnx.")
    again = command_line(program("distill"), config)
    if config.stage != "both":
        return distil(config, teacher, again).exit_status
    return distil_both(config, teacher, again).exit_status


def stage_configs(config: DistillConfig, student: str) -> tuple:
    """The two stages of `--stage both`: guidance into `<output_dir>/guidance`, then steps from `student`."""
    guidance = dataclasses.replace(config, stage="guidance", epochs=config.guidance_epochs,
                                   output_dir=os.path.join(config.output_dir, "guidance"))
    steps = dataclasses.replace(config, stage="steps", teacher=student,
                                output_dir=os.path.join(config.output_dir, "steps"))
    return guidance, steps


def distil_both(config: DistillConfig, teacher: str, again: str) -> "FitStatus":
    """Stage guidance, its export (the next stage's teacher), then stage steps, within one time budget."""
    import time

    started = time.monotonic()
    student = os.path.join(config.output_dir, "guidance", "exported", f"{config.data}_denoiser.onnx")
    guidance, steps = stage_configs(config, student)
    status = distil(guidance, teacher, again)
    from kgen.runs import FitStatus  # after the first stage's prepare: TensorFlow imported quietly

    if status not in (FitStatus.FINISHED, FitStatus.NOTHING_TO_DO):
        return status
    checkpoint = os.path.join(guidance.output_dir, "checkpoints", "last.keras")
    if not os.path.isfile(student) or os.path.getmtime(student) < os.path.getmtime(checkpoint):
        from kgen.export.onnx_export import export_onnx

        export_onnx(checkpoint, output=student, overwrite=True, card_command=again)
        print(f"Stage guidance exported to {student}; stage steps starts from it.")
    if config.time_budget is not None:
        left = config.time_budget - (time.monotonic() - started) / 60
        if left <= 0:
            print(f"Time budget of {config.time_budget:g} min reached after stage guidance.\nContinue with:\n  {again}")
            return FitStatus.TIME_BUDGET
        steps = dataclasses.replace(steps, time_budget=left)
    return distil(steps, student, again)


def distil(config: DistillConfig, teacher_path: str, again: str) -> "FitStatus":
    """One stage into `config.output_dir`: a resumable run like every family's. Returns its `FitStatus`."""
    from kgen.train.session import prepare

    folder = prepare(config)

    import keras
    import numpy as np

    from kgen.data import load_images
    from kgen.runs import RunRecorder, fit_resumable, run_record

    dataset, info = load_images(config.data, batch_size=config.batch_size, limit=config.limit, seed=config.seed,
                                with_info=True)
    model, warm = build(config, teacher_path)
    if tuple(model.image_shape) != tuple(info.image_shape):
        raise ValueError(f"the teacher draws {model.image_shape} images and {config.data} holds {info.image_shape}.")
    model.compile(keras.optimizers.Adam(config.learning_rate))
    num_classes = model.num_classes
    grid_labels = np.tile(np.arange(num_classes), num_classes) if num_classes else None

    def sample_grid(trainer):
        return trainer.sample(num_samples=None if num_classes else 64, labels=grid_labels,
                              guidance_scale=config.guidance_scale, seed=config.seed)

    recorder = RunRecorder(
        folder, sample_fn=sample_grid, batch_size=config.batch_size, checkpoint_every=config.checkpoint_every,
        time_budget=config.time_budget,
        config=run_record(config, info, parameters=model.student.count_params(), network=model.student.get_config()),
    )
    # The round a resumed run is in is known after the restore; the plan is known now.
    steps = (f"DDIM {config.teacher_steps} -> {config.student_steps} steps in rounds of {config.round_steps}"
             if config.stage == "steps" else f"sampling in {config.teacher_steps} DDIM steps")
    description = (f"Stage {config.stage}: {type(model).__name__} of {teacher_path} on {info.name} "
                   f"{info.image_shape}, student of {model.student.count_params()} parameters, "
                   f"{steps}, backend {keras.backend.backend()}.")
    return fit_resumable(model, dataset, recorder, config.epochs, description, resume=config.resume,
                         warm_start=warm, continue_command=again)
