"""Per-backend training mechanics, chosen once at import.

Trainers subclass `kgen.backend.Trainer`. Like `keras/src/models/model.py`,
the concrete class depends on `keras.backend.backend()`; these modules are the
only place in kgen where gradients are taken with framework code.
"""

import keras

from kgen.backend.phase import Phase

_BACKEND = keras.backend.backend()

if _BACKEND == "tensorflow":
    from kgen.backend.tensorflow import TensorFlowTrainer as Trainer
elif _BACKEND == "jax":
    from kgen.backend.jax import JAXTrainer as Trainer
elif _BACKEND == "torch":
    from kgen.backend.torch import TorchTrainer as Trainer
else:
    raise ImportError(
        f"kgen supports the Keras backends 'tensorflow', 'jax' and 'torch'; "
        f"KERAS_BACKEND is '{_BACKEND}'."
    )

__all__ = ["Phase", "Trainer"]
