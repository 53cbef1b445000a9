"""kgen: image generative models (DCGAN, VAEs, diffusion) on Keras 3, for any backend."""

__version__ = "0.1.0"
