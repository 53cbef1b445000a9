"""Keras callbacks shared by every kgen trainer."""

from kgen.callbacks.run_recorder import RunRecorder, TrainingDiverged, fit_resumable, warm_start

__all__ = ["RunRecorder", "TrainingDiverged", "fit_resumable", "warm_start"]
