"""Helpers shared by recipes, callbacks and CLIs."""
