"""Keras callbacks shared by every kgen trainer."""

from kgen.callbacks.run_recorder import RunRecorder

__all__ = ["RunRecorder"]
