"""Keras callbacks shared by every kgen trainer (the run recorder lives with the run folder, `kgen.runs`)."""

from kgen.callbacks.probe import GeneralizationProbe

__all__ = ["GeneralizationProbe"]
