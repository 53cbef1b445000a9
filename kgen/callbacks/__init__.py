"""Keras callbacks shared by every kgen trainer."""

from kgen.callbacks.probe import GeneralizationProbe
from kgen.callbacks.run_recorder import FitStatus, RunRecorder, TrainingDiverged, fit_resumable, run_record, warm_start

__all__ = ["FitStatus", "GeneralizationProbe", "RunRecorder", "TrainingDiverged", "fit_resumable", "run_record",
           "warm_start"]
