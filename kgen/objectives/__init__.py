"""Objectives: the math of each model, written once in `keras.ops`.

Nothing here imports tensorflow, jax or torch.
"""
