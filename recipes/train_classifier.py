"""Train the dataset classifier used by kgen's metrics, and report test accuracy.

    python recipes/train_classifier.py                          # MNIST
    python recipes/train_classifier.py --data cifar10 --epochs 40 --widths 64,128,256 --flip true

Writes a run folder (curves, checkpoints, resume) and, at the end, the
inference model to --export (default exported/classifiers/<data>.keras) with
its measured test accuracy in a JSON file beside it.
This file is intentionally short: the logic lives in kgen and is tested there.
"""

import dataclasses
import json
import os
import sys

import kgen  # noqa: F401  (first: quiets TensorFlow's start-up logs)

# isort: split
import keras

from kgen.callbacks import RunRecorder
from kgen.data import load_images
from kgen.models import ImageClassifier
from kgen.utils.cli import exit_on_bad_input, option, parse_config, progress_verbosity
from kgen.utils.saving import save_inference_copy


@dataclasses.dataclass(frozen=True)
class ClassifierConfig:
    """Train a small CNN classifier on a dataset's train split; evaluate on test."""

    data: str = option("mnist", "TFDS name or path; names are first looked up under $KGEN_DATA_DIR")
    epochs: int = option(8, "epochs to train")
    batch_size: int = option(128, "images per step")
    learning_rate: float = option(2e-3, "peak Adam learning rate (cosine decay to 0)")
    widths: str = option("32,64,128", "channels per block, comma-separated")
    translate: float = option(0.1, "random translation during training (fraction of size)")
    flip: bool = option(False, "random horizontal flips (natural images only)")
    seed: int = option(0, "seed of weights and data order")
    output_dir: str = option("", "run folder (default runs/classifier_<data>)")
    export: str = option("", "inference model path (default exported/classifiers/<data>.keras)")


@exit_on_bad_input
def main(argv=None):
    config = parse_config(ClassifierConfig, argv)
    if config.epochs < 1 or config.learning_rate <= 0:
        raise ValueError("epochs must be >= 1 and learning_rate > 0.")
    widths = tuple(int(w) for w in config.widths.split(","))
    name = os.path.basename(os.path.normpath(config.data))
    output_dir = config.output_dir or f"runs/classifier_{name}"
    export = config.export or f"exported/classifiers/{name}.keras"
    keras.utils.set_random_seed(config.seed)

    train, info = load_images(config.data, batch_size=config.batch_size, seed=config.seed, with_info=True)
    test = load_images(config.data, split="test", batch_size=500, shuffle=False, drop_remainder=False)
    model = ImageClassifier(info.image_shape, info.num_classes, widths, translate=config.translate, flip=config.flip)
    steps = config.epochs * (info.num_examples // config.batch_size)
    model.compile(
        optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(config.learning_rate, steps)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    recorder = RunRecorder(output_dir, batch_size=config.batch_size, config=dataclasses.asdict(config))
    initial_epoch = recorder.restore(model)
    try:
        model.fit(train, epochs=config.epochs, initial_epoch=initial_epoch, validation_data=test,
                  callbacks=[recorder], verbose=progress_verbosity(), shuffle=False)
    except KeyboardInterrupt:
        print(f"\nInterrupted. Rerun the same command to resume ({output_dir}).")
        sys.exit(130)
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
    with open(os.path.splitext(export)[0] + ".json", "w") as f:
        json.dump(card, f, indent=1)
    print(f"Saved {export} and its card.")


if __name__ == "__main__":
    main()
