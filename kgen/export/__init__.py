"""Export of kgen checkpoints to ONNX (`python -m kgen.export`)."""

from kgen.export.describe import PARTS, describe_checkpoint, inference_network
from kgen.export.onnx_export import export_onnx

__all__ = ["PARTS", "describe_checkpoint", "export_onnx", "inference_network"]
