"""Keras callbacks shared by every kgen trainer."""

from kgen.callbacks.run_recorder import RunRecorder, fit_resumable

__all__ = ["RunRecorder", "fit_resumable"]
