"""Training throughput on one process and on two processes of one launch, side by side (CIFAR-10 DDPM).

    KGEN_DATA_DIR=../shared/data python benchmarks/bench_processes.py --backends torch,tensorflow,jax

For each backend, `kgen.train ddpm --data cifar10` on a small UNet for 2
epochs of `--limit` images, once as one process and once as two processes
of one launch on this machine (the engines' variables from
`kgen.utils.launch.local_environments`; each process sees every core).
Reports the second epoch's images per second from each run folder's
`history_epochs.csv` (the first holds the compilation) and the ratio
two / one, repeated `--repeats` times with the settings alternating. On a
2-core CPU the two processes share the cores that one process uses alone:
the ratio measures the cost of the collectives and of the split, not a
speed-up. Name the CPU with the numbers (lscpu).
"""

import argparse
import csv
import os
import platform
import shutil
import subprocess
import sys
import tempfile

from kgen.utils.launch import free_local_ports, local_environments


def images_per_second(backend, processes, folder, args):
    shutil.rmtree(folder, ignore_errors=True)
    command = [sys.executable, "-m", "kgen.train", "ddpm", "--data", "cifar10", "--limit", str(args.limit),
               "--batch-size", str(args.batch_size), "--epochs", "2", "--widths", args.widths,
               "--sample-steps", "2", "--output-dir", folder]
    environments = local_environments(backend, free_local_ports(processes)) if processes > 1 else [{}]
    runs = [subprocess.Popen(command, env=dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", **env),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for env in environments]
    for run in runs:
        _, err = run.communicate(timeout=1800)
        if run.returncode:
            raise SystemExit(f"{backend}, {processes} process(es) failed:\n{err[-2000:]}")
    with open(os.path.join(folder, "history_epochs.csv")) as f:
        return float(list(csv.DictReader(f))[-1]["images_per_s"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="torch,tensorflow,jax")
    parser.add_argument("--limit", type=int, default=2048, help="training images per epoch")
    parser.add_argument("--batch-size", type=int, default=64, help="the global batch")
    parser.add_argument("--widths", default="16,32", help="UNet widths")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; DDPM on cifar10, widths "
          f"{args.widths}, global batch {args.batch_size}, {args.limit} images per epoch")
    print("| backend | 1 process (images/s) | 2 processes (images/s) | 2 / 1 |")
    print("| --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as scratch:
        for backend in args.backends.split(","):
            one, two = [], []
            for _ in range(args.repeats):
                one.append(images_per_second(backend, 1, os.path.join(scratch, "one"), args))
                two.append(images_per_second(backend, 2, os.path.join(scratch, "two"), args))
            a, b = sum(one) / len(one), sum(two) / len(two)
            print(f"| {backend} | {a:.1f} | {b:.1f} | {b / a:.2f} |", flush=True)


if __name__ == "__main__":
    main()
