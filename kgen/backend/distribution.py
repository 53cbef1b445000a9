"""Data-parallel training on several devices, through the engine of the active backend.

JAX: `keras.distribution.DataParallel` (Keras' own; variables replicated, each
global batch split along its first axis across the devices, the step compiled
once for all of them by XLA, so gradients and batch statistics are those of
the global batch). TensorFlow and torch: not yet (see docs/scaling.md).
"""

import keras


def use_devices(num_devices):
    """Makes the models built and trained after this call data-parallel over `num_devices` devices.

    Call it before building the model (like the dtype policy). One device is
    the default and changes nothing.

    Raises:
        ValueError: the backend has no data-parallel engine in kgen, or
            fewer devices than asked for.
    """
    num_devices = int(num_devices)
    if num_devices < 1:
        raise ValueError(f"devices must be >= 1; got {num_devices}.")
    if num_devices == 1:
        return
    backend = keras.backend.backend()
    if backend != "jax":
        raise ValueError(f"--devices {num_devices}: data-parallel training runs on the jax backend "
                         f"(keras.distribution.DataParallel); {backend} is not supported yet "
                         "(docs/scaling.md says why and what to use).")
    import jax

    devices = jax.devices()
    if len(devices) < num_devices:
        hint = (f"; on a CPU, start with XLA_FLAGS=--xla_force_host_platform_device_count={num_devices} "
                "to simulate them" if devices[0].platform == "cpu" else "")
        raise ValueError(f"--devices {num_devices}: JAX sees {len(devices)} {devices[0].platform} "
                         f"device(s){hint}.")
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices[:num_devices]))
