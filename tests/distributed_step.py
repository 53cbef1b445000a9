"""Run in a subprocess by test_distribution.py: `python tests/distributed_step.py FOLDER BACKEND`.

The devices must exist before the backend starts: 2 virtual CPU devices (XLA's host platform
device count under JAX, logical CPU devices under TensorFlow, set by `use_devices`). For each
trainer, two training steps on global batches of 16 with one device, then the same steps
data-parallel over 2 devices from the same initial weights and seed; prints one JSON line with the
largest weight difference, both runs' logs, the layouts of the weights, optimizer variables and
batch, and the result of saving the distributed model and sampling from it on one device.
"""

import json
import os
import sys

BACKEND = sys.argv[2] if len(sys.argv) > 2 else "jax"
os.environ["KERAS_BACKEND"] = BACKEND
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"

import keras  # noqa: E402
import numpy as np  # noqa: E402
from multiprocess_step import build  # noqa: E402  (the same three tiny trainers; run as a script from tests/)

from kgen.backend.distribution import use_devices  # noqa: E402


def numpy(values):
    return [np.asarray(keras.ops.convert_to_numpy(v)) for v in values]


def single_device():
    if BACKEND == "jax":
        keras.distribution.set_distribution(None)
    else:
        import tensorflow as tf

        tf.distribute.experimental_set_strategy(None)


def replicated(variables):
    """Every variable has one copy on each of the 2 devices."""
    if BACKEND == "jax":
        return all(v.value.sharding.is_fully_replicated and len(v.value.sharding.device_set) == 2
                   for v in variables)
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    return all(len({c.device for c in strategy.experimental_local_results(v.value)}) == 2 for v in variables)


def batch_split():
    """How a global batch of 16 is split: JAX's layout axes, TensorFlow's per-replica batch sizes."""
    if BACKEND == "jax":
        return list(keras.distribution.distribution().get_data_layout((16, 8, 8, 1)).axes)
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    batch = next(iter(strategy.experimental_distribute_dataset(tf.data.Dataset.range(16).batch(16))))
    return [int(t.shape[0]) for t in strategy.experimental_local_results(batch)]


def main(folder):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (32, 8, 8, 1)).astype("float32")
    y = (np.arange(32) % 10).astype("int32")
    use_devices(2)  # first: TensorFlow's logical devices are fixed when it starts
    results = {"devices": len(keras.distribution.list_devices("cpu"))}
    for kind in ("DCGAN", "VAE", "DDPM"):
        data = (x, y) if kind == "DDPM" else (x,)
        single_device()
        single = build(kind)
        single_logs = single.fit(*data, batch_size=16, epochs=1, verbose=0, shuffle=False).history
        use_devices(2)
        dist = build(kind)
        before = {id(v): np.asarray(keras.ops.convert_to_numpy(v)).copy() for v in dist.trainable_variables}
        dist_logs = dist.fit(*data, batch_size=16, epochs=1, verbose=0, shuffle=False).history
        moved = {id(v): float(np.abs(before[id(v)] - keras.ops.convert_to_numpy(v)).max())
                 for v in dist.trainable_variables}
        parts = {"DCGAN": ("generator", "discriminator"), "VAE": ("encoder", "decoder"), "DDPM": ("denoiser",)}[kind]
        entry = {
            "smallest_largest_update_per_network": min(
                max(moved[id(v)] for v in getattr(dist, part).trainable_variables) for part in parts),
            "max_weight_difference": max(float(np.abs(a - b).max())
                                         for a, b in zip(numpy(single.weights), numpy(dist.weights))),
            "max_log_difference": max(abs(single_logs[k][0] - dist_logs[k][0]) for k in single_logs),
            "weights_replicated": replicated(dist.weights),
            "optimizer_replicated": replicated(dist.optimizer.variables),
            "optimizer_variables": len(dist.optimizer.variables),
            "batch_split": batch_split(),
        }
        path = os.path.join(folder, f"{kind}.keras")
        dist.save(path)
        single_device()
        loaded = keras.saving.load_model(path)
        images = loaded.sample(4, labels=[0, 1, 2, 3] if kind == "DDPM" else None, seed=1,
                               **({"num_steps": 3} if kind == "DDPM" else {}))
        entry["loaded_samples_shape"] = list(images.shape)
        entry["loaded_matches"] = max(float(np.abs(a - b).max())
                                      for a, b in zip(numpy(dist.weights), numpy(loaded.weights))) == 0.0
        results[kind] = entry
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1])
