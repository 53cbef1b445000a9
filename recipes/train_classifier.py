"""Train the dataset classifier used by kgen's metrics, and report test accuracy.

    python recipes/train_classifier.py                          # MNIST
    python recipes/train_classifier.py --data cifar10 --epochs 40 --widths 64,128,256 --flip true

Writes a run folder (curves, checkpoints, resume) and, at the end, the
inference model to --export (default exported/classifiers/<data>.keras) with
its measured test accuracy in a JSON file beside it.
This file is intentionally short: the logic lives in kgen and is tested there.
"""

import dataclasses
import os
import sys

import kgen  # noqa: F401  (first: quiets TensorFlow's start-up logs)

# isort: split
import keras

from kgen.backend.distribution import use_devices
from kgen.data import load_images
from kgen.export.warm_start import warm_starter
from kgen.models import ImageClassifier
from kgen.runs import (
    FitStatus,
    RunRecorder,
    TrainingRunOptions,
    apply_training_options,
    fit_resumable,
    open_run,
    run_record,
)
from kgen.utils.atomic import write_json
from kgen.utils.cli import (
    check_output_folder,
    command_line,
    exit_on_bad_input,
    finite,
    option,
    parse_config,
    require,
)
from kgen.utils.saving import save_inference_copy


@dataclasses.dataclass(frozen=True)
class ClassifierConfig(TrainingRunOptions):
    """Train a small CNN classifier on a dataset's train split; evaluate on test."""

    data: str = option("mnist", "TFDS name or path; names are first looked up under $KGEN_DATA_DIR")
    epochs: int = option(8, "epochs to train (in total, counting resumed ones)")
    batch_size: int = option(128, "images per step")
    learning_rate: float = option(2e-3, "peak Adam learning rate (cosine decay to 0)")
    widths: tuple[int, ...] = option((32, 64, 128), "channels per block, comma-separated")
    translate: float = option(0.1, "random translation during training (fraction of size)")
    flip: bool = option(False, "random horizontal flips (natural images only)")
    seed: int = option(0, "seed of weights and data order")
    output_dir: str = option("", "run folder (default runs/classifier_<data>)")
    export: str = option("", "inference model path (default exported/classifiers/<data>.keras)")

    def __post_init__(self):
        super().__post_init__()
        require(finite(self.translate) and 0 <= self.translate < 0.5,
                f"translate must be in [0, 0.5); got {self.translate}.")
        require(not self.export or self.export.endswith(".keras"),
                f"export must be a .keras path; got {self.export!r}.")


@exit_on_bad_input
def main(argv=None):
    config = parse_config(ClassifierConfig, argv)
    name = os.path.basename(os.path.normpath(config.data))
    output_dir = config.output_dir or f"runs/classifier_{name}"
    export = config.export or f"exported/classifiers/{name}.keras"
    check_output_folder(output_dir)
    check_output_folder(os.path.dirname(os.path.abspath(export)), "export")
    folder = open_run(dataclasses.replace(config, output_dir=output_dir))  # before any data or model
    apply_training_options(config)
    use_devices(config.devices)
    keras.utils.set_random_seed(config.seed)

    train, info = load_images(config.data, batch_size=config.batch_size, seed=config.seed, with_info=True)
    test = load_images(config.data, split="test", batch_size=500, shuffle=False, drop_remainder=False)
    model = ImageClassifier(info.image_shape, info.num_classes, config.widths, translate=config.translate,
                            flip=config.flip)
    steps = config.epochs * (info.num_examples // config.batch_size)
    model.compile(
        optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(config.learning_rate, steps)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    recorder = RunRecorder(folder, batch_size=config.batch_size, checkpoint_every=config.checkpoint_every,
                           time_budget=config.time_budget,
                           config=run_record(config, info, parameters=model.count_params()))
    description = (f"Classifier {config.widths} on {info.name} {info.image_shape}, {info.num_classes} classes, "
                   f"{model.count_params()} parameters, backend {keras.backend.backend()}.")
    status = fit_resumable(model, train, recorder, config.epochs, description,
                           warm_start=warm_starter(config.init_from) if config.init_from else None,
                           continue_command=command_line(__file__, config), validation_data=test)
    if status not in (FitStatus.FINISHED, FitStatus.NOTHING_TO_DO):
        return status.exit_status
    loss, accuracy = model.evaluate(test, verbose=0)
    print(f"test accuracy {accuracy:.4f} (loss {loss:.4f}) on {info.name} test split")
    save_inference_copy(model, export)
    card = {
        "data": info.name, "image_shape": info.image_shape, "class_names": info.class_names,
        "test_accuracy": accuracy, "test_loss": loss, "epochs": config.epochs,
        "parameters": model.count_params(), "backend": keras.backend.backend(),
        "train_time_s": recorder.summary()["total_time_s"],
        "command": "python recipes/train_classifier.py " + " ".join(sys.argv[1:] if argv is None else argv),
    }
    write_json(os.path.splitext(export)[0] + ".json", card)
    print(f"Saved {export} and its card.")


if __name__ == "__main__":
    sys.exit(main())
