"""`kgen.train classifier`: the small CNN classifier behind kgen.evaluate's classifier FID and accuracy.

    kgen.train classifier                          # MNIST
    kgen.train classifier --data cifar10 --widths 64,128,256 --flip true --epochs 30

Trains on the train split, evaluates on test, and saves an inference copy
(`exported/classifiers/<data>.keras`) with a card.
"""

import dataclasses
import os
import sys
from typing import Optional, Sequence

from kgen.runs.options import TrainingRunOptions, default_of
from kgen.train.session import training_command
from kgen.utils.cli import check_output_folder, finite, option, parse_config, require


@dataclasses.dataclass(frozen=True)
class ClassifierConfig(TrainingRunOptions):
    """Train a small CNN classifier on a dataset's train split; evaluate on test."""

    epochs: int = default_of("epochs", 8)
    learning_rate: float = option(2e-3, "peak Adam learning rate (cosine decay to 0)")
    output_dir: str = option("", "run folder (default runs/classifier_<data>)")
    widths: tuple[int, ...] = option((32, 64, 128), "channels per block, comma-separated")
    translate: float = option(0.1, "random translation during training (fraction of size)")
    flip: bool = option(False, "random horizontal flips (natural images only)")
    export: str = option("", "inference model path (default exported/classifiers/<data>.keras)")

    def __post_init__(self):
        super().__post_init__()
        require(finite(self.translate) and 0 <= self.translate < 0.5,
                f"translate must be in [0, 0.5); got {self.translate}.")
        require(not self.export or self.export.endswith(".keras"),
                f"export must be a .keras path; got {self.export!r}.")


@training_command
def main(argv: Optional[Sequence[str]] = None, prog: Optional[str] = None) -> int:
    """Parses the flags, trains, evaluates, saves the inference copy; returns the exit status."""
    config = parse_config(ClassifierConfig, argv, prog=prog)
    name = os.path.basename(os.path.normpath(config.data))
    config = dataclasses.replace(config, output_dir=config.output_dir or f"runs/classifier_{name}")
    export = config.export or f"exported/classifiers/{name}.keras"
    check_output_folder(os.path.dirname(os.path.abspath(export)), "export")
    from kgen.train.session import prepare

    folder = prepare(config)

    import keras

    from kgen.data import load_images
    from kgen.models import ImageClassifier
    from kgen.runs import FitStatus, RunRecorder, run_record
    from kgen.train.session import train
    from kgen.utils.atomic import write_json
    from kgen.utils.saving import save_inference_copy

    train_data, info = load_images(config.data, batch_size=config.batch_size, limit=config.limit, seed=config.seed,
                                   with_info=True)
    test = load_images(config.data, split="test", batch_size=500, shuffle=False, drop_remainder=False)
    model = ImageClassifier(info.image_shape, info.num_classes, config.widths, translate=config.translate,
                            flip=config.flip)
    steps = config.epochs * int(train_data.cardinality())
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
    status = train(model, train_data, recorder, config, description, "classifier", validation_data=test)
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
    return 0
