"""kgen: image generative models (DCGAN, VAEs, diffusion) on Keras 3, for any backend."""

import os

# TensorFlow's C++ start-up chatter buries the progress bar; keep warnings.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
