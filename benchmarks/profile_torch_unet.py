"""One training step of the identical UNet on torch: kgen's DDPM step against diffusers', profiled.

    KERAS_BACKEND=torch python benchmarks/profile_torch_unet.py kgen float32
    KERAS_BACKEND=torch python benchmarks/profile_torch_unet.py diffusers float32
    KERAS_BACKEND=torch python benchmarks/profile_torch_unet.py kgen mixed_bfloat16 --tune-malloc

The networks and steps of `bench_train.py --peer` (kgen: `train_step` called
directly on one batch, outside `fit()`; diffusers: the plain torch loop with
its EMA). Prints images/s over 4 steps after 2 warm-up steps, then
`torch.profiler`'s table (self CPU time per aten op) over 2 more steps.
With `--tune-malloc`, `kgen.utils.allocator.tune_malloc()` is applied first
(as the recipes do under torch; for both networks).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_train  # noqa: E402
import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402


def kgen_step(policy, batch):
    import keras

    keras.config.set_dtype_policy(policy)
    model, _ = bench_train.build("unet_plain")
    x, y = bench_train.data("unet", batch * 4)
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
    data = (keras.ops.convert_to_tensor(x[:batch]), keras.ops.convert_to_tensor(y[:batch]))

    def step():
        float(model.train_step(data)["loss"])

    return step


def diffusers_step(policy, batch):
    from diffusers import DDPMScheduler
    from diffusers.training_utils import EMAModel

    model = bench_train.diffusers_unet()
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    ema = EMAModel(model.parameters(), decay=0.999, foreach=True)
    x, y = bench_train.data("unet", batch)
    x, y = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(y).long()

    def step():
        noise, t = torch.randn_like(x), torch.randint(0, 1000, (batch,))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=policy != "float32"):
            prediction = model(scheduler.add_noise(x, noise, t), t, class_labels=y).sample
        loss = torch.nn.functional.mse_loss(prediction.float(), noise)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ema.step(model.parameters())
        loss.item()

    return step


def main():
    args = [a for a in sys.argv[1:] if a != "--tune-malloc"]
    which, policy = args[0], args[1] if len(args) > 1 else "float32"
    if "--tune-malloc" in sys.argv:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from kgen.utils.allocator import tune_malloc

        assert tune_malloc(), "glibc's malloc thresholds could not be set here"
    step = (kgen_step if which == "kgen" else diffusers_step)(policy, 128)
    step()
    step()
    start = time.perf_counter()
    for _ in range(4):
        step()
    print(f"{which} {policy}: {4 * 128 / (time.perf_counter() - start):.1f} images/s, step called directly")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(2):
            step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=22))


if __name__ == "__main__":
    main()
