"""Run in a subprocess by test_distribution.py: XLA must see 2 CPU devices before JAX starts.

For each trainer, one training step on a global batch of 16 with one device, then the same step
data-parallel over 2 devices from the same initial weights and seed; prints one JSON line with the
largest weight difference, both runs' logs, the layouts of the weights, optimizer variables and
batch, and the result of saving the distributed model and sampling from it on one device.
"""

import json
import os
import sys

os.environ["KERAS_BACKEND"] = "jax"
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from kgen.backend.distribution import use_devices  # noqa: E402
from kgen.models import DCGANDiscriminator, DCGANGenerator, UNet, VAEDecoder, VAEEncoder  # noqa: E402
from kgen.trainers import DCGAN, DDPM, VAE  # noqa: E402


def build(kind):
    keras.utils.set_random_seed(0)
    if kind == "DCGAN":
        model = DCGAN(DCGANGenerator((8, 8, 1), 4, 8), DCGANDiscriminator((8, 8, 1), 8), seed=0)
        model.compile()
    elif kind == "VAE":
        model = VAE(VAEEncoder((8, 8, 1), 4, (4, 8)), VAEDecoder((8, 8, 1), 4, (4, 8)), seed=0)
        model.compile()
    else:
        model = DDPM(UNet((8, 8, 1), widths=(8, 16), attention_resolution=4, num_classes=10), num_train_timesteps=50,
                     seed=0)
        model.compile(keras.optimizers.Adam(1e-2))
    return model


def numpy(values):
    return [np.asarray(keras.ops.convert_to_numpy(v)) for v in values]


def main(folder):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (16, 8, 8, 1)).astype("float32")
    y = (np.arange(16) % 10).astype("int32")
    results = {"devices": len(jax.devices())}
    for kind in ("DCGAN", "VAE", "DDPM"):
        data = (x, y) if kind == "DDPM" else (x,)
        keras.distribution.set_distribution(None)
        single = build(kind)
        single_logs = single.fit(*data, batch_size=16, epochs=1, verbose=0, shuffle=False).history
        use_devices(2)
        dist = build(kind)
        before = {id(v): np.asarray(keras.ops.convert_to_numpy(v)).copy() for v in dist.trainable_variables}
        dist_logs = dist.fit(*data, batch_size=16, epochs=1, verbose=0, shuffle=False).history
        distribution = keras.distribution.distribution()
        moved = {id(v): float(np.abs(before[id(v)] - keras.ops.convert_to_numpy(v)).max())
                 for v in dist.trainable_variables}
        parts = {"DCGAN": ("generator", "discriminator"), "VAE": ("encoder", "decoder"), "DDPM": ("denoiser",)}[kind]
        entry = {
            "smallest_largest_update_per_network": min(
                max(moved[id(v)] for v in getattr(dist, part).trainable_variables) for part in parts),
            "max_weight_difference": max(float(np.abs(a - b).max())
                                         for a, b in zip(numpy(single.weights), numpy(dist.weights))),
            "max_log_difference": max(abs(single_logs[k][0] - dist_logs[k][0]) for k in single_logs),
            "weights_replicated": all(v.value.sharding.is_fully_replicated and len(v.value.sharding.device_set) == 2
                                      for v in dist.weights),
            "optimizer_replicated": all(v.value.sharding.is_fully_replicated and len(v.value.sharding.device_set) == 2
                                        for v in dist.optimizer.variables),
            "optimizer_variables": len(dist.optimizer.variables),
            "batch_axis_sharded": list(distribution.get_data_layout((16, 8, 8, 1)).axes),
        }
        path = os.path.join(folder, f"{kind}.keras")
        dist.save(path)
        keras.distribution.set_distribution(None)
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
