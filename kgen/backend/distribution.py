"""Data-parallel training on several devices, through the engine of the active backend.

JAX: `keras.distribution.DataParallel` (Keras' own; variables replicated, each
global batch split along its first axis across the devices, the step compiled
once for all of them by XLA, so gradients and batch statistics are those of
the global batch). TensorFlow: `tf.distribute.MirroredStrategy` (variables
mirrored, Keras splits each global batch across the replicas and runs the
step once per replica; `kgen.backend.tensorflow` and
`kgen.models.BatchNormalization` make that step equal to the one-device step
on the global batch). torch: several processes instead (`kgen.backend.processes`).
"""

import keras


def use_devices(num_devices: int) -> None:
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
    if backend == "jax":
        _use_jax_devices(num_devices)
    elif backend == "tensorflow":
        _use_tensorflow_devices(num_devices)
    else:
        raise ValueError(f"--devices {num_devices}: data-parallel training runs on the jax and tensorflow "
                         f"backends; {backend} is not supported: start one process per device with torchrun instead "
                         "(docs/scaling.md).")


def replicas_in_sync() -> int:
    """How many replicas run each step of a model built now: the TensorFlow strategy's count, else 1.

    Under JAX, `DataParallel` compiles one step for the global batch, so layers see it whole.
    """
    if keras.backend.backend() != "tensorflow":
        return 1
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync


def _use_jax_devices(num_devices):
    import jax

    devices = jax.devices()
    if len(devices) < num_devices:
        hint = (f"; on a CPU, start with XLA_FLAGS=--xla_force_host_platform_device_count={num_devices} "
                "to simulate them" if devices[0].platform == "cpu" else "")
        raise ValueError(f"--devices {num_devices}: JAX sees {len(devices)} {devices[0].platform} "
                         f"device(s){hint}.")
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices[:num_devices]))


_tf_strategies = {}  # one MirroredStrategy per device list: a second one would reuse its collective keys


def _use_tensorflow_devices(num_devices):
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        devices = [d.name for d in tf.config.list_logical_devices("GPU")]
        if len(devices) < num_devices:
            raise ValueError(f"--devices {num_devices}: TensorFlow sees {len(devices)} GPU(s).")
    else:
        # No GPU: split the CPU into logical devices. They share the same cores, so this tests the
        # distributed path and gives no speed-up (like XLA's virtual host devices under JAX).
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * num_devices)
        except RuntimeError:  # TensorFlow has started: its logical devices are fixed
            pass
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        if len(devices) < num_devices:
            raise ValueError(f"--devices {num_devices}: TensorFlow has started with {len(devices)} CPU device(s); "
                             "call use_devices before any TensorFlow work.")
    devices = tuple(devices[:num_devices])
    if devices not in _tf_strategies:
        if not gpus:
            print(f"TensorFlow sees no GPU: the CPU is split into {num_devices} logical devices "
                  "(same cores; the distributed step runs, without a speed-up).", flush=True)
        _tf_strategies[devices] = tf.distribute.MirroredStrategy(list(devices))
    tf.distribute.experimental_set_strategy(_tf_strategies[devices])
