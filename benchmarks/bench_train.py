"""Training throughput of every kgen trainer, per backend and dtype policy, and the recipe's overhead.

    python benchmarks/bench_train.py                                   # tf + torch, both policies
    python benchmarks/bench_train.py --backends tensorflow --models unet_s,unet_m --rounds 3
    KGEN_DATA_DIR=../shared/data python benchmarks/bench_train.py --pipeline   # + recipe path vs in memory

Jobs (model x backend x policy) each run in their own process (the backend is
fixed at import), interleaved over `--rounds` rounds; the best round of each
is kept and every ratio compares numbers of the same run. Steps are timed
after 3 warm-up steps inside one `fit()` on random data in memory (as
bench_dcgan). Models, batch 128: the class-conditional UNet at 32x32x3 in two
widths (unet_s 16,32,64; unet_m 32,64,128; AdaGN), the CIFAR-10 DCGAN
(width 64) and VAE (widths 32,64,128, latent 128). Achieved FLOP/s counts
2 x multiply-adds of convolutions, dense layers and attention, x3 for
forward + backward, against this backend's measured matmul FLOP/s.

`--pipeline` adds the DDPM as `recipes/train_ddpm.py` runs it: the real
tf.data pipeline (CIFAR-10), the run recorder and the EMA, through
`fit_resumable`, against the same step on in-memory data, and in between the
recorder and `fit_resumable` on an in-memory stream, to attribute the cost.

`--peer` adds the network a torch user would pick instead: diffusers'
`UNet2DModel` built as kgen's UNet 32,64,128 without AdaGN (2,737,507
parameters in both), trained by a plain torch loop with the same step
(random t, cosine schedule, 10% label dropout, epsilon MSE, Adam, an EMA of
the weights with diffusers' `EMAModel`), float32 and bfloat16 autocast,
against kgen's DDPM on the torch backend with that UNet (`unet_plain`).
Needs `pip install diffusers` (the `bench` extra); skipped when absent.
Besides the ratio of the two bests, the peer table gives the median of the
rounds' ratios: within a round the two run one after the other, so each
round is a paired measurement that one fast or slow round does not move.
`--peer-models unet_plain,diffusers` leaves out the two ablations.

`--malloc default,tuned` runs every job both with the C library's default
malloc settings and with `kgen.utils.allocator.tune_malloc` applied first
(the recipes apply it under torch), peer included, so the two compare in one
run; a tuned job is named `<model>+malloc`.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peers import diffusers_unet  # noqa: E402
from timing import step_clock  # noqa: E402

BACKENDS = ("tensorflow", "jax", "torch")
POLICIES = ("float32", "mixed_bfloat16")
MODELS = ("unet_s", "unet_m", "dcgan", "vae")
PEER = ("unet_plain", "unet_plain_keras_ops", "unet_plain_torch_group_norm", "diffusers")
# unet_plain_keras_ops: kgen's torch fast paths off; unet_plain_torch_group_norm: torch's group norm kernel for
# every norm (kgen's ChannelsLastGroupNorm off, KGEN_TORCH_CHANNELS_LAST_GROUP_NORM=0).
SHAPE = (32, 32, 3)


def build(name):
    import keras

    from kgen.models import DCGANDiscriminator, DCGANGenerator, UNet, VAEDecoder, VAEEncoder
    from kgen.trainers import DCGAN, DDPM, VAE

    keras.utils.set_random_seed(0)
    if name == "unet_plain":  # the peer comparison's network and loss: no AdaGN, no loss weighting
        model = DDPM(UNet(SHAPE, (32, 64, 128), 1, 8, num_classes=10), beta_schedule="cosine", seed=0)
        model.compile(keras.optimizers.Adam(1e-3))
        return model, model.denoiser
    if name.startswith("unet"):
        widths = (16, 32, 64) if name == "unet_s" else (32, 64, 128)
        model = DDPM(UNet(SHAPE, widths, 1, 8, num_classes=10, adaptive_norm=True), beta_schedule="cosine",
                     snr_gamma=5.0, seed=0)
        model.compile(keras.optimizers.Adam(1e-3))
        return model, model.denoiser
    if name == "dcgan":
        model = DCGAN(DCGANGenerator(SHAPE, 100, 64), DCGANDiscriminator(SHAPE, 64), seed=0)
        model.compile()
        return model, [model.generator, model.discriminator, model.generator]  # G runs in both phases
    model = VAE(VAEEncoder(SHAPE, 128, (32, 64, 128)), VAEDecoder(SHAPE, 128, (32, 64, 128), likelihood="gaussian"),
                seed=0)
    model.compile()
    return model, [model.encoder, model.decoder]


def _pixels(shape, data_format):
    """Height x width of a (batch, ...) feature-map shape in `data_format`."""
    return shape[2] * shape[3] if data_format == "channels_first" else shape[1] * shape[2]


def forward_flops(networks):
    """2 x multiply-adds per image of the convolutions, dense layers and attention of `networks`.

    Independent of the layout the backend runs (tests/test_models.py checks
    both layouts against a count by hand).
    """
    import keras

    from kgen.models.unet import SpatialAttention

    total = 0
    for network in networks if isinstance(networks, list) else [networks]:
        for layer in network._flatten_layers(include_self=False):
            if isinstance(layer, keras.layers.Conv2D):  # Conv2DTranspose included: kernel x input pixels
                shape = (layer.input if isinstance(layer, keras.layers.Conv2DTranspose) else layer.output).shape
                total += 2 * _pixels(shape, layer.data_format) * int(np.prod(layer.kernel.shape))
            elif isinstance(layer, keras.layers.Dense):
                total += 2 * int(np.prod(layer.kernel.shape))
            elif isinstance(layer, SpatialAttention):
                shape = layer.input.shape
                n = _pixels(shape, layer.data_format)
                c = shape[1] if layer.data_format == "channels_first" else shape[-1]
                total += 2 * (4 * n * c * c + 2 * n * n * c)  # q, k, v, out projections; scores and mix
    return total


def data(name, n):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (n, *SHAPE)).astype("float32")
    return (x, (np.arange(n) % 10).astype("int32")) if name.startswith("unet") else (x, None)


def time_in_memory(name, batch, steps, warmup=3):

    model, networks = build(name)
    clock = step_clock(warmup, warmup + steps)
    x, y = data(name, batch * (warmup + steps))
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False, callbacks=[clock])
    return steps * batch / clock.seconds(), forward_flops(networks)


# kgen's UNet (32, 32, 3), (32, 64, 128), one block per level, attention at 8x8, 8 groups, 10 classes, no AdaGN.
PEER_UNET = {"image_shape": (32, 32, 3), "widths": (32, 64, 128), "num_res_blocks": 1, "attention_resolution": 8,
             "groups": 8, "num_classes": 10, "adaptive_norm": False}


def time_diffusers(batch, steps, policy, warmup=3):
    """kgen's DDPM step written as a diffusers user would, in plain torch, on the same data."""
    import torch
    from diffusers import DDPMScheduler
    from diffusers.training_utils import EMAModel

    torch.manual_seed(0)
    model = diffusers_unet(PEER_UNET).train()
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    ema = EMAModel(model.parameters(), decay=0.999, foreach=True)
    x, y = data("unet", batch * (warmup + steps))
    x, y = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(y).long()
    marks = []
    for i in range(warmup + steps):
        images, labels = x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch]
        noise = torch.randn_like(images)
        t = torch.randint(0, 1000, (batch,))
        labels = torch.where(torch.rand(batch) < 0.1, 10, labels)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=policy == "mixed_bfloat16"):
            prediction = model(scheduler.add_noise(images, noise, t), t, class_labels=labels).sample
        loss = torch.nn.functional.mse_loss(prediction.float(), noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        ema.step(model.parameters())
        if i + 1 in (warmup, warmup + steps):
            loss.item()
            marks.append(time.perf_counter())
    return steps * batch / (marks[1] - marks[0]), sum(p.numel() for p in model.parameters())


def time_recipe_path(batch, steps, warmup=3, source="cifar10"):
    """The DDPM step as train_ddpm runs it: CIFAR-10 tf.data pipeline, RunRecorder, fit_resumable.

    With `source="memory"`, the recorder and `fit_resumable` on a tf.data
    stream of the in-memory random batches (no decoding, shuffling or
    augmentation): what the run recorder alone costs.
    """
    import tensorflow as tf

    from kgen.data import load_images
    from kgen.runs import RunRecorder, fit_resumable

    model, networks = build("unet_m")
    if source == "memory":
        dataset = tf.data.Dataset.from_tensor_slices(data("unet_m", batch * (warmup + steps))).batch(batch)
    else:
        dataset = load_images("cifar10", batch_size=batch, seed=0, augment=True).take(warmup + steps)
    clock = step_clock(warmup, warmup + steps)
    with tempfile.TemporaryDirectory() as run_dir:
        recorder = RunRecorder(run_dir, batch_size=batch, checkpoint_every=None)
        original_fit = model.fit
        # The clock first: at the last timed step it reads the time before the recorder ends the epoch
        # (checkpoint, sample grid), which is not per-step cost.
        model.fit = lambda *a, **k: original_fit(*a, **{**k, "callbacks": [clock] + k["callbacks"]})
        fit_resumable(model, dataset, recorder, 1, "bench")
    return steps * batch / clock.seconds(), forward_flops(networks)


def matmul_flops(n=2048, repeats=7):
    """The backend's matmul FLOP/s, best single product of `repeats`, in float32 and bfloat16.

    A product that takes over 10 s (bfloat16 emulated on a CPU without its
    instructions) is timed once.
    """
    import keras

    a = keras.ops.convert_to_tensor(np.random.default_rng(0).standard_normal((n, n)).astype("float32"))
    best = {}
    for dtype in ("float32", "bfloat16"):
        m = keras.ops.cast(a, dtype)
        start = time.perf_counter()
        keras.ops.convert_to_numpy(keras.ops.cast(keras.ops.matmul(m, m), "float32"))
        seconds = [time.perf_counter() - start]
        for _ in range(repeats if seconds[0] < 10 else 0):
            start = time.perf_counter()
            keras.ops.convert_to_numpy(keras.ops.cast(keras.ops.matmul(m, m)[0, 0], "float32"))
            seconds.append(time.perf_counter() - start)
        best[dtype] = 2.0 * n**3 / min(seconds)
    return best


def worker(args):
    if os.environ.get("KGEN_BENCH_TUNE_MALLOC") == "1":
        from kgen.utils.allocator import tune_malloc

        if not tune_malloc():
            raise RuntimeError("tune_malloc() could not set glibc's malloc thresholds here")
    import keras

    keras.config.set_dtype_policy(args.policy)
    if args.worker == "matmul":
        print(json.dumps(matmul_flops()))
        return
    if args.worker == "diffusers":
        images_per_s, parameters = time_diffusers(args.batch_size, args.steps, args.policy)
        print(json.dumps({"images_per_s": images_per_s, "forward_flops": None, "parameters": parameters}))
        return
    if args.worker in ("recipe", "recorder"):
        source = "cifar10" if args.worker == "recipe" else "memory"
        fn = lambda b, s: time_recipe_path(b, s, source=source)  # noqa: E731
    else:
        fn = lambda b, s: time_in_memory(args.worker, b, s)  # noqa: E731
    images_per_s, flops = fn(args.batch_size, args.steps)
    print(json.dumps({"images_per_s": images_per_s, "forward_flops": flops}))


def measure(job, args):
    model, backend, policy = job
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    model, tuned, _ = model.partition("+malloc")
    env["KGEN_BENCH_TUNE_MALLOC"] = "1" if tuned == "+malloc" else "0"
    if model == "unet_plain_keras_ops":
        model, env["KGEN_TORCH_FAST_PATHS"] = "unet_plain", "0"
    if model == "unet_plain_torch_group_norm":
        model, env["KGEN_TORCH_CHANNELS_LAST_GROUP_NORM"] = "unet_plain", "0"
    cmd = [sys.executable, __file__, "--worker", model, "--policy", policy, "--steps", str(args.steps),
           "--batch-size", str(args.batch_size)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{'/'.join(job)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="tensorflow,torch")
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pipeline", action="store_true", help="also time the recipe path (needs CIFAR-10)")
    parser.add_argument("--peer", action="store_true",
                        help="also time diffusers' UNet2DModel as the identical network (torch; needs diffusers)")
    parser.add_argument("--peer-models", default=",".join(PEER),
                        help=f"which of the peer comparison's jobs to run (of {','.join(PEER)}); "
                             "the ablations (fast paths off, torch's group norm) can be left out")
    parser.add_argument("--malloc", default="default",
                        help="comma-separated malloc settings per job: default, tuned (kgen.utils.allocator)")
    parser.add_argument("--json", help="write results here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--policy", default="float32", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    backends, policies, models = ([x for x in v.split(",") if x] for v in (args.backends, args.policies, args.models))
    jobs = [(m, b, p) for b in backends for m in models for p in policies]
    if args.pipeline:
        jobs += [(m, "tensorflow", "mixed_bfloat16") for m in ("recipe", "recorder", "unet_m")]
    if args.peer:
        try:
            import diffusers  # noqa: F401
        except ImportError:
            print("diffusers is not installed (pip install diffusers): the peer comparison is skipped")
            args.peer = False
    peer_models = [m for m in args.peer_models.split(",") if m]
    if set(peer_models) - set(PEER) or not {"unet_plain", "diffusers"} <= set(peer_models):
        parser.error(f"--peer-models takes unet_plain and diffusers and any of {', '.join(PEER[1:3])}; "
                     f"got {args.peer_models!r}")
    if args.peer:
        jobs += [(m, "torch", p) for m in PEER if m in peer_models for p in policies]
    mallocs = [x for x in args.malloc.split(",") if x]
    if set(mallocs) - {"default", "tuned"}:
        parser.error(f"--malloc takes default and/or tuned, got {args.malloc!r}")
    jobs = [(m + ("+malloc" if a == "tuned" else ""), b, p) for a in mallocs for m, b, p in jobs]
    jobs = list(dict.fromkeys(jobs))
    best, flops, rounds = {}, {}, {}
    ceilings = {b: measure(("matmul", b, "float32"), args) for b in backends}
    for r in range(args.rounds):
        for job in jobs:
            result = measure(job, args)
            best[job] = max(best.get(job, 0.0), result["images_per_s"])
            rounds.setdefault(job, []).append(result["images_per_s"])
            if result["forward_flops"] is None:
                pass
            elif flops.setdefault(job[0].partition("+")[0], result["forward_flops"]) != result["forward_flops"]:
                counted = flops[job[0].partition("+")[0]]
                raise RuntimeError(f"{job[0]}: FLOP count differs between backends "
                                   f"({counted} vs {result['forward_flops']}); the count is wrong")
            print(f"round {r + 1}: {'/'.join(job):36s} {result['images_per_s']:8.1f} images/s", flush=True)

    import multiprocessing

    print(f"\n32x32x3, batch {args.batch_size}, {args.steps} timed steps, best of {args.rounds} rounds, "
          f"{multiprocessing.cpu_count()} CPU cores, no GPU\n")
    print("| model | backend | float32 (img/s) | mixed_bfloat16 (img/s) | bf16 / f32 | "
          "GFLOP/s achieved (f32, bf16) | matmul ceiling GFLOP/s (f32, bf16) |")
    print("|---" * 7 + "|")
    for m in [m + ("+malloc" if a == "tuned" else "") for m in models for a in mallocs]:
        for b in backends:
            f32, bf16 = best.get((m, b, "float32")), best.get((m, b, "mixed_bfloat16"))
            achieved = [3 * flops[m.partition("+")[0]] * v / 1e9 if v else None for v in (f32, bf16)]
            fmt = lambda v, d=0: "-" if v is None else f"{v:.{d}f}"  # noqa: E731
            print(f"| {m} | {b} | {fmt(f32)} | {fmt(bf16)} | {fmt(bf16 / f32 if f32 and bf16 else None, 2)} | "
                  f"{fmt(achieved[0])}, {fmt(achieved[1])} | "
                  f"{ceilings[b]['float32'] / 1e9:.0f}, {ceilings[b]['bfloat16'] / 1e9:.0f} |")
    if args.pipeline:
        recipe, recorder, memory = (best[(m, "tensorflow", "mixed_bfloat16")] for m in ("recipe", "recorder", "unet_m"))
        print(f"\nDDPM unet_m, tensorflow, mixed_bfloat16, the same step (EMA included) three ways:\n"
              f"  fit() on in-memory arrays                                  {memory:6.1f} img/s\n"
              f"  fit_resumable + run recorder, in-memory tf.data stream     {recorder:6.1f} img/s "
              f"({recorder / memory:.2f}x)\n"
              f"  the recipe: fit_resumable + recorder + CIFAR-10 pipeline   {recipe:6.1f} img/s "
              f"({recipe / memory:.2f}x)")
    if args.peer:
        print("\nThe identical UNet (32,64,128, no AdaGN, 2,737,507 parameters) on torch, same step and data:\n")
        print("| malloc | policy | kgen, torch backend (img/s) | the same, KGEN_TORCH_FAST_PATHS=0 (img/s) | "
              "the same, KGEN_TORCH_CHANNELS_LAST_GROUP_NORM=0 (img/s) | "
              "diffusers UNet2DModel, plain torch (img/s) | kgen / diffusers (bests) | "
              "median of the rounds' kgen / diffusers |")
        print("|---" * 8 + "|")
        for a in mallocs:
            for p in policies:
                suffix = "+malloc" if a == "tuned" else ""
                kgen, keras_ops, torch_norm, peer = (best.get((m + suffix, "torch", p)) for m in PEER)
                paired = np.median(np.divide(rounds[("unet_plain" + suffix, "torch", p)],
                                             rounds[("diffusers" + suffix, "torch", p)]))
                fmt = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
                print(f"| {a} | {p} | {kgen:.1f} | {fmt(keras_ops)} | {fmt(torch_norm)} | {peer:.1f} | "
                      f"{kgen / peer:.2f} | {paired:.2f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": {"/".join(k): v for k, v in best.items()},
                       "rounds": {"/".join(k): v for k, v in rounds.items()}, "forward_flops": flops,
                       "matmul_flops": ceilings, "args": vars(args)}, f, indent=1)


if __name__ == "__main__":
    main()
