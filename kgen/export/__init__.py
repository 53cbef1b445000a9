"""Export of kgen checkpoints to ONNX (`python -m kgen.export`)."""

from kgen.export.onnx_export import export_onnx

__all__ = ["export_onnx"]
