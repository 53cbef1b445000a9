"""Run folders: the one module that reads and writes them, and the training run that fills them.

`RunFolder` owns the layout (config, commits, views, lock); `RunRecorder` is
the Keras callback that records a run in it; `fit_resumable` trains in
resumable, time-budgeted chunks; `TrainingRunOptions` are the flags every
training command shares.

Names load on first use, so a command's `--help` (which needs only
`TrainingRunOptions`) does not import Keras.
"""

from kgen.utils.lazy import lazy_attributes

_HOMES = {
    "describe_checkpoint": "checkpoints",
    **dict.fromkeys(("FitStatus", "TrainingDiverged", "fit_resumable"), "fit"),
    **dict.fromkeys(("TrainingRunOptions", "apply_training_options", "cpu_bfloat16_support"), "options"),
    **dict.fromkeys(("CHANGEABLE_FLAGS", "CheckpointWriteError", "Commit", "NonFiniteState", "RunFolder",
                     "RunFolderInUse", "first_non_finite", "open_run", "optimizers"), "run_folder"),
    **dict.fromkeys(("RunRecorder", "run_record"), "run_recorder"),
}

__all__ = sorted(_HOMES)
__getattr__ = lazy_attributes(__name__, _HOMES)


def __dir__():
    return __all__
