"""One DCGAN training step on torch: kgen's `train_step` against the native loop, profiled.

    KERAS_BACKEND=torch python benchmarks/profile_torch_dcgan.py

The networks and steps of `bench_dcgan.py` (kgen's step called directly, no
`fit()`), both in one process: milliseconds per step over 5 interleaved
rounds of 5 steps, then for each `torch.profiler`'s self-CPU time and aten
calls per step over 3 steps. Wall time above the self-CPU time is Python.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from native import torch_dcgan  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from kgen.models import DCGANDiscriminator, DCGANGenerator  # noqa: E402
from kgen.trainers import DCGAN  # noqa: E402


def main(batch=128):
    keras.utils.set_random_seed(0)
    gan = DCGAN(DCGANGenerator((28, 28, 1), 100, 64), DCGANDiscriminator((28, 28, 1), 64), seed=0)
    gan.compile()
    x = np.random.default_rng(0).uniform(-1, 1, (batch * 4, 28, 28, 1)).astype("float32")
    gan.fit(x, batch_size=batch, epochs=1, verbose=0)  # builds the optimizers as a run does
    data = keras.ops.convert_to_tensor(x[:batch])
    native_step, to_input, sync = torch_dcgan.make_step(batch)
    real = to_input(x[:batch])
    steps = {"kgen": lambda: float(gan.train_step(data)["d_loss"]), "native": lambda: sync(native_step(real))}
    for step in steps.values():
        step()
        step()
    rounds = {name: [] for name in steps}
    for _ in range(5):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(5):
                step()
            rounds[name].append((time.perf_counter() - start) / 5 * 1e3)
    for name, times in rounds.items():
        print(f"{name}: {np.median(times):.1f} ms per step (median of 5 rounds: "
              + ", ".join(f"{t:.0f}" for t in times) + ")")
    for name, step in steps.items():
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            start = time.perf_counter()
            for _ in range(3):
                step()
            wall = (time.perf_counter() - start) / 3 * 1e3
        events = prof.key_averages()
        self_cpu = sum(e.self_cpu_time_total for e in events) / 1e3 / 3
        calls = sum(e.count for e in events if e.key.startswith("aten::")) / 3
        print(f"{name} profiled: {wall:.1f} ms wall, {self_cpu:.1f} ms self CPU in ops, "
              f"{calls:.0f} aten calls per step")


if __name__ == "__main__":
    main()
