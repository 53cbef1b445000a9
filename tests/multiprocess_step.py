"""Run by test_processes.py on every process of a launch, or alone: `python tests/multiprocess_step.py FOLDER`.

The launch comes from the engine's environment (`kgen.utils.launch`). For the
DCGAN, the VAE and the DDPM: two training steps on global batches of 16 from
the same initial weights, seed and data, the data sharded across the
processes as `fit_resumable` does. The chief (or the lone process) writes
`FOLDER/<kind>.npz` (every weight, and the logs) and `FOLDER/<kind>.keras`;
given `--compare OTHER`, the lone process also loads OTHER's checkpoints and
reports how they differ from its own weights in `FOLDER/compare.json`.
"""

import json
import os
import sys
import tempfile

import keras
import numpy as np
import tensorflow as tf

from kgen.backend.processes import current_launch, start_processes
from kgen.data import shard_for_processes
from kgen.models import DCGANDiscriminator, DCGANGenerator, UNet, VAEDecoder, VAEEncoder
from kgen.trainers import DCGAN, DDPM, VAE

KINDS = ("DCGAN", "VAE", "DDPM")


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


def weights(model):
    return {f"{i}": np.asarray(keras.ops.convert_to_numpy(v), np.float32) for i, v in enumerate(model.weights)}


def main(folder, compare=None):
    launch = start_processes()
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (32, 8, 8, 1)).astype("float32")
    y = (np.arange(32) % 10).astype("int32")
    for kind in KINDS:
        model = build(kind)
        before = [np.array(keras.ops.convert_to_numpy(v)) for v in model.trainable_variables]
        data = (x, y) if kind == "DDPM" else (x,)
        stream = shard_for_processes(tf.data.Dataset.from_tensor_slices(data).batch(16, drop_remainder=True), launch)
        history = model.fit(stream, epochs=1, verbose=0).history
        after = weights(model)
        if launch.chief:
            update = max(float(np.abs(keras.ops.convert_to_numpy(v) - b).max())
                         for v, b in zip(model.trainable_variables, before))
            np.savez(os.path.join(folder, f"{kind}.npz"), **after)
            with open(os.path.join(folder, f"{kind}.json"), "w") as f:
                json.dump({"logs": {k: float(v[-1]) for k, v in history.items()}, "update": update,
                           "processes": launch.count, "local_batch": int(next(iter(stream))[0].shape[0])}, f)
        # Every process takes part in a save: under JAX, reading a weight of a multi-process run is a collective.
        with tempfile.TemporaryDirectory() as scratch:
            model.save(os.path.join(folder if launch.chief else scratch, f"{kind}.keras"))
        if compare and not launch.several:
            report = {}
            other = np.load(os.path.join(compare, f"{kind}.npz"))
            loaded = keras.saving.load_model(os.path.join(compare, f"{kind}.keras"))
            report["max_weight_difference"] = max(float(np.abs(after[k] - other[k]).max()) for k in after)
            with open(os.path.join(compare, f"{kind}.json")) as f:
                theirs = json.load(f)
            report["max_log_difference"] = max(abs(float(history[k][-1]) - theirs["logs"][k]) for k in history)
            report["loaded_equals_saved"] = all(np.array_equal(weights(loaded)[k], other[k]) for k in other)
            images = loaded.sample(4, labels=[0, 1, 2, 3] if kind == "DDPM" else None, seed=1,
                                   **({"num_steps": 3} if kind == "DDPM" else {}))
            report["loaded_samples_shape"] = list(images.shape)
            with open(os.path.join(folder, f"compare_{kind}.json"), "w") as f:
                json.dump(report, f)
    print(f"process {current_launch().index} of {current_launch().count}: done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--compare" else None)
