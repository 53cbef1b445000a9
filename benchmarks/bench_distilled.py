"""A guided image from a teacher and from its distilled student, side by side in one run (onnxruntime).

    python benchmarks/bench_distilled.py --teacher exported/mnist_denoiser.onnx \
        --student exported/mnist_denoiser_fast.onnx

Each row draws `batch` guided images (guidance 2, one label per image) with
`kgen.infer`'s sampling path and reports the median wall and process-CPU
milliseconds per image, the network passes per image, and the CPU ratio to
the teacher's DDIM-25 at the same batch. Rows alternate within each
repeat (after one warm-up call each), so a busy machine slows every row
alike. Name the CPU with the
numbers (lscpu).
"""

import argparse
import os
import platform
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import timed  # noqa: E402

from kgen.infer import runtime  # noqa: E402
from kgen.infer.sample import draw  # noqa: E402


def settings(teacher_steps, solver_steps, student_steps):
    rows = [("teacher", "ddim", teacher_steps), ("teacher", "dpmsolver++", solver_steps)]
    rows += [("student", "ddim", steps) for steps in student_steps]
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", required=True, help="the DDPM denoiser .onnx")
    parser.add_argument("--student", required=True, help="the distilled denoiser .onnx")
    parser.add_argument("--teacher-steps", type=int, default=25)
    parser.add_argument("--solver-steps", type=int, default=10, help="DPM-Solver++ steps of the teacher")
    parser.add_argument("--student-steps", default="4,2,1", help="comma-separated student steps")
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats; the median is reported")
    args = parser.parse_args(argv)
    models = {"teacher": runtime.load(args.teacher), "student": runtime.load(args.student)}
    rows = settings(args.teacher_steps, args.solver_steps, [int(s) for s in args.student_steps.split(",")])
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores (see lscpu)")
    print(f"{'batch':>5} {'model':>8} {'sampler':>12} {'steps':>5} {'passes':>6} {'ms/img':>8} {'CPU ms/img':>10} "
          f"{'CPU x':>7}")
    for batch in (int(b) for b in args.batches.split(",")):
        labels = np.arange(batch, dtype=np.int32) % max(1, models["teacher"].metadata.get("num_classes") or 1)
        calls = {row: (lambda m=models[row[0]], r=row: draw(m, batch, 0, labels, r[1], r[2], 0.0, 2.0,
                                                            progress=False)) for row in rows}
        for call in calls.values():  # warm-up
            call()
        samples = {row: [] for row in rows}
        for _ in range(args.repeats):  # interleaved: a busy machine slows every row alike
            for row, call in calls.items():
                samples[row].append(timed(call, min_repeats=1, min_seconds=0.0, cpu=True, warmup=0))
        measured = {}
        for row in rows:
            wall, cpu = (float(np.median([s[i] for s in samples[row]])) for i in (0, 1))
            measured[row] = (wall, cpu, row[2] * (1 if models[row[0]].guidance_input else 2))
        base = measured[rows[0]][1]
        for (who, sampler, steps), (wall, cpu, passes) in measured.items():
            print(f"{batch:>5} {who:>8} {sampler:>12} {steps:>5} {passes:>6} {1e3 * wall / batch:>8.1f} "
                  f"{1e3 * cpu / batch:>10.1f} {base / cpu:>6.1f}x")


if __name__ == "__main__":
    main()
