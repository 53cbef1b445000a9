"""One part of a kgen checkpoint with its metadata, named from the run that trained it."""

from typing import Optional, Sequence

from kgen.runs.run_folder import RunFolder
from kgen.trainers import load_trainer


def describe_checkpoint(path: str, part: Optional[str] = None, dataset: Optional[str] = None,
                        class_names: Optional[Sequence[str]] = None) -> tuple:
    """`(network, metadata)` of one part of a checkpoint, named from its run's config.

    Args:
        path: str. A `.keras` file.
        part: str or None. A part of the trainer's `inference_parts()`;
            None is the main one.
        dataset: str or None. Overrides the run's dataset name.
        class_names: list of str or None. Overrides the run's class names.
    """
    model = load_trainer(path)
    if class_names:  # given, not read from the run: check them against the model
        if not model.class_conditional:
            raise ValueError(f"{path} holds an unconditional {type(model).__name__}; --class-names applies to "
                             "class-conditional models.")
        if len(class_names) != model.num_classes:
            raise ValueError(f"{path} has {model.num_classes} classes; --class-names gave {len(class_names)}.")
    run_dataset, run_classes = RunFolder.of_checkpoint(path).names()
    return model.export_part(part, dataset or run_dataset, class_names or run_classes)
