"""kgen: image generative models (DCGAN, VAEs, diffusion) on Keras 3, for any backend.

The Python API in three lines (onnxruntime, numpy and Pillow; no deep-learning framework):

    import kgen
    images = kgen.load("cifar10_denoiser").sample(labels=["cat", "ship"], seed=0)   # numpy, [-1, 1]
    kgen.to_pil(images)[0].save("cat.png")

`kgen.list_models()` names the shipped models with their cards. Training is
`kgen.train {dcgan,vae,ddpm,classifier,distill}`; export `kgen.export`; scores
`kgen.evaluate`.
"""

import os

# TensorFlow's C++ start-up chatter buries the progress bar; keep warnings.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
__all__ = ["Pipeline", "list_models", "load", "to_pil"]


def __getattr__(name):
    # The API loads on first use: `import kgen` stays instant and imports no framework.
    if name in __all__:
        from kgen.infer import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'kgen' has no attribute {name!r}")
