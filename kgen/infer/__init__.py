"""Inference without a deep-learning framework: onnxruntime, numpy and Pillow."""
