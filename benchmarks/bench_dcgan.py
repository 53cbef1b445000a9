"""DCGAN training throughput: kgen on each Keras backend vs hand-written loops.

    python benchmarks/bench_dcgan.py              # kgen vs native, 3 backends
    python benchmarks/bench_dcgan.py --layouts    # also kgen in both layouts

Every measurement runs in its own process (the Keras backend is fixed at
import). Jobs are interleaved over `--rounds` rounds and the best round of
each job is kept, since this machine is noisy; the ratios printed compare
numbers from the same run only. Steps are timed after 3 warm-up steps,
inside one `fit()` call for kgen (see `_StepClock`). Same network everywhere: MNIST-sized DCGAN
(28x28x1, latent 100, width 64), batch 128, random data in memory, two
generator forwards per step (one per phase). `--tune-malloc` applies
`kgen.utils.allocator.tune_malloc()` in every worker, kgen's and native.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import step_clock  # noqa: E402

BACKENDS = ("tensorflow", "jax", "torch")


def run_kgen(batch_size, steps, data_format, warmup=3):
    import keras

    from kgen.models import DCGANDiscriminator, DCGANGenerator
    from kgen.trainers import DCGAN

    keras.utils.set_random_seed(0)
    fmt = None if data_format == "auto" else data_format
    gan = DCGAN(
        DCGANGenerator((28, 28, 1), 100, 64, data_format=fmt),
        DCGANDiscriminator((28, 28, 1), 64, data_format=fmt),
        seed=0,
    )
    gan.compile()
    n = batch_size * (steps + warmup)
    x = np.random.default_rng(0).uniform(-1, 1, (n, 28, 28, 1)).astype("float32")
    clock = step_clock(warmup, warmup + steps)
    gan.fit(x, batch_size=batch_size, epochs=1, verbose=0, shuffle=False, callbacks=[clock])
    return clock.seconds()


def run_native(backend, batch_size, steps, data_format, warmup=3):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    if backend == "torch":
        from native import torch_dcgan as impl

        step, to_input, sync = impl.make_step(batch_size, channels_last=data_format == "channels_last")
    else:
        from native import jax_dcgan, tf_dcgan

        impl = jax_dcgan if backend == "jax" else tf_dcgan
        step, to_input, sync = impl.make_step(batch_size)
    x = np.random.default_rng(0).uniform(-1, 1, (steps + warmup, batch_size, 28, 28, 1)).astype("float32")
    for i in range(warmup):
        sync(step(to_input(x[i])))
    start = time.perf_counter()
    for i in range(warmup, warmup + steps):
        out = step(to_input(x[i]))
    sync(out)
    return time.perf_counter() - start


def worker(args):
    if args.tune_malloc:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from kgen.utils.allocator import tune_malloc

        if not tune_malloc():
            raise RuntimeError("tune_malloc() could not set glibc's malloc thresholds here")
    if args.worker == "kgen":
        seconds = run_kgen(args.batch_size, args.steps, args.data_format)
    else:
        seconds = run_native(args.backend, args.batch_size, args.steps, args.data_format)
    print(json.dumps({"images_per_s": args.steps * args.batch_size / seconds}))


def measure(impl, backend, layout, args):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    if impl == "kgen-no-fast-paths":
        impl, env["KGEN_TORCH_FAST_PATHS"] = "kgen", "0"
    cmd = [sys.executable, __file__, "--worker", impl, "--backend", backend,
           "--data-format", layout, "--steps", str(args.steps), "--batch-size", str(args.batch_size)]
    cmd += ["--tune-malloc"] if args.tune_malloc else []
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{impl}/{backend} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["images_per_s"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--layouts", action="store_true", help="also time kgen in both layouts")
    parser.add_argument("--tune-malloc", action="store_true",
                        help="apply kgen.utils.allocator.tune_malloc() in every worker (kgen and native)")
    parser.add_argument("--json", help="write results here")
    parser.add_argument("--worker", choices=["kgen", "native"], help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--data-format", default="auto", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    backends = args.backends.split(",")
    jobs = []
    for b in backends:
        jobs += [("kgen", b, "auto"), ("native", b, "auto")]
        if args.layouts:
            jobs += [("kgen", b, "channels_last"), ("kgen", b, "channels_first")]
            if b == "torch":
                jobs += [("native", b, "channels_last"), ("kgen-no-fast-paths", b, "auto")]
    best, rounds = {}, []
    for r in range(args.rounds):
        rounds.append({})
        for job in jobs:
            value = rounds[-1][job] = measure(*job, args)
            best[job] = max(best.get(job, 0.0), value)
            print(f"round {r + 1}: {'/'.join(job):32s} {value:8.1f} images/s", flush=True)

    import multiprocessing
    print(f"\nDCGAN 28x28x1, batch {args.batch_size}, {args.steps} timed steps, best of "
          f"{args.rounds} rounds, {multiprocessing.cpu_count()} CPU cores, no GPU\n")
    # Both loops drift together within a round (they run one after the other),
    # so each round's ratio is a paired measurement; its median is robust to
    # one fast or slow round, which the ratio of the bests is not.
    print("| backend | kgen (images/s) | native loop (images/s) | kgen / native (bests) "
          "| median of the rounds' ratios |")
    print("| --- | --- | --- | --- | --- |")
    for b in backends:
        k, n = best[("kgen", b, "auto")], best[("native", b, "auto")]
        paired = float(np.median([one[("kgen", b, "auto")] / one[("native", b, "auto")] for one in rounds]))
        print(f"| {b} | {k:.0f} | {n:.0f} | {k / n:.2f} | {paired:.2f} |")
    if args.layouts:
        print("\n| backend | kgen channels_last | kgen channels_first | first / last |")
        print("| --- | --- | --- | --- |")
        for b in backends:
            last, first = best[("kgen", b, "channels_last")], best[("kgen", b, "channels_first")]
            print(f"| {b} | {last:.0f} | {first:.0f} | {first / last:.2f} |")
        if "torch" in backends:
            print(f"\nnative torch: NCHW {best[('native', 'torch', 'auto')]:.0f}, "
                  f"channels_last memory format {best[('native', 'torch', 'channels_last')]:.0f} images/s")
            off, on = best[("kgen-no-fast-paths", "torch", "auto")], best[("kgen", "torch", "auto")]
            print(f"kgen torch without its fast paths (KGEN_TORCH_FAST_PATHS=0): {off:.0f} images/s, "
                  f"{off / best[('native', 'torch', 'auto')]:.2f}x native; with them {on / off:.2f}x faster")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"best": {"/".join(k): v for k, v in best.items()},
                       "rounds": [{"/".join(k): v for k, v in one.items()} for one in rounds]}, f, indent=1)


if __name__ == "__main__":
    main()
