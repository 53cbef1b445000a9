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

`--graph` adds the student's sampler graph (`kgen.export --sampler`): the
same steps, the loop inside one onnxruntime call (what the browser demo runs).

`--threads 0,1` repeats every kgen row with onnxruntime's default intra-op
threads (0) and with one thread: at batch 1 the second thread of a small
network mostly spins, so one thread can cost less CPU per image for more
wall time. The ratio column is to the teacher's DDIM-25 at the same threads.

`--peer` adds diffusers' fastest CPU path on the identical network (the
teacher's UNet rebuilt as diffusers' `UNet2DModel` by `peers.diffusers_unet`,
torch bfloat16 autocast, classifier-free guidance as diffusers' pipelines do
it: conditional and null-label halves in one doubled batch) with diffusers'
DDIM and DPM-Solver++ schedulers at the teacher's step counts. Its weights
are random: the rows measure cost, and its images would be the teacher's
(same network, same samplers). Needs `pip install -e ".[bench]"`.
"""

import argparse
import json
import os
import platform
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import timed  # noqa: E402

from kgen.infer import runtime  # noqa: E402
from kgen.infer.sample import draw  # noqa: E402


def settings(teacher_steps, solver_steps, student_steps, graph_steps=None):
    rows = [("teacher", "ddim", teacher_steps), ("teacher", "dpmsolver++", solver_steps)]
    rows += [("student", "ddim", steps) for steps in student_steps]
    if graph_steps:
        rows.append(("graph", "ddim", graph_steps))
    return rows


def diffusers_sampler(teacher_path, metadata):
    """`sample(batch, labels, sampler, steps, guidance)` of diffusers on the teacher's UNet, torch bf16 autocast."""
    import torch
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler
    from peers import diffusers_unet

    card = json.loads(open(os.path.splitext(teacher_path)[0] + ".json").read())
    flags = card["recipe_config"]  # the network's config, or the ddpm flags that built it (UNet's defaults)
    config = flags.get("network") or {
        "widths": flags["widths"], "num_res_blocks": flags.get("num_res_blocks", 1),
        "attention_resolution": flags.get("attention_resolution", 8), "groups": 8,
        "num_classes": len(flags["class_names"]), "adaptive_norm": flags.get("adaptive_norm", False)}
    config = {**config, "image_shape": metadata["image_shape"]}
    torch.manual_seed(0)
    unet = diffusers_unet(config)
    schedule = metadata["schedule"]
    betas = {"cosine": "squaredcos_cap_v2", "linear": "linear"}[schedule["beta_schedule"]]
    common = dict(num_train_timesteps=schedule["num_train_timesteps"], beta_schedule=betas,
                  prediction_type=schedule["prediction_type"])
    schedulers = {"ddim": lambda: DDIMScheduler(clip_sample=True, **common),
                  "dpmsolver++": lambda: DPMSolverMultistepScheduler(algorithm_type="dpmsolver++", **common)}
    height, width, channels = metadata["image_shape"]

    @torch.inference_mode()
    def sample(batch, labels, sampler, steps, guidance):
        scheduler = schedulers[sampler]()
        scheduler.set_timesteps(steps)
        generator = torch.Generator().manual_seed(0)
        x = torch.randn((batch, channels, height, width), generator=generator)
        y = torch.cat([torch.from_numpy(labels.astype(np.int64)), torch.full((batch,), metadata["null_label"])])
        for t in scheduler.timesteps:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = unet(torch.cat([x, x]), t, class_labels=y).sample.float()
            conditional, unconditional = out.chunk(2)
            x = scheduler.step(unconditional + guidance * (conditional - unconditional), t, x).prev_sample
        return x.permute(0, 2, 3, 1).numpy()

    return sample


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", required=True, help="the DDPM denoiser .onnx")
    parser.add_argument("--student", required=True, help="the distilled denoiser .onnx")
    parser.add_argument("--teacher-steps", type=int, default=25)
    parser.add_argument("--solver-steps", type=int, default=10, help="DPM-Solver++ steps of the teacher")
    parser.add_argument("--student-steps", default="4,2,1", help="comma-separated student steps")
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats; the median is reported")
    parser.add_argument("--peer", action="store_true",
                        help="add diffusers' bf16 DDIM and DPM-Solver++ on the teacher's network (needs diffusers)")
    parser.add_argument("--threads", default="0",
                        help="comma-separated intra-op threads of kgen's sessions (0: onnxruntime's default)")
    parser.add_argument("--graph", help="the student's sampler graph .onnx (kgen.export --sampler): one more row, "
                                        "the whole sampler in one onnxruntime call")
    args = parser.parse_args(argv)
    threads = [int(t) for t in args.threads.split(",")]
    paths = {"teacher": args.teacher, "student": args.student, **({"graph": args.graph} if args.graph else {})}
    models = {(name, t): runtime.load(path, threads=t or None) for name, path in paths.items() for t in threads}
    for t in threads if args.graph else ():
        models["graph", t].require("sampler")
    teacher = models["teacher", threads[0]]
    kgen_rows = settings(args.teacher_steps, args.solver_steps, [int(s) for s in args.student_steps.split(",")],
                         graph_steps=models["graph", threads[0]].metadata["num_steps"] if args.graph else None)
    rows = [(*row, t) for t in threads for row in kgen_rows]
    if args.peer:
        rows += [("diffusers", sampler, steps, 0) for sampler, steps in
                 (("ddim", args.teacher_steps), ("dpmsolver++", args.solver_steps))]
    peer = diffusers_sampler(args.teacher, teacher.metadata) if args.peer else None
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores (see lscpu)")
    print(f"{'batch':>5} {'model':>9} {'sampler':>12} {'steps':>5} {'threads':>7} {'passes':>6} {'ms/img':>8} "
          f"{'CPU ms/img':>10} {'CPU x':>7}")
    for batch in (int(b) for b in args.batches.split(",")):
        labels = np.arange(batch, dtype=np.int32) % max(1, teacher.metadata.get("num_classes") or 1)
        calls = {row: (lambda r=row: peer(batch, labels, r[1], r[2], 2.0)) if row[0] == "diffusers" else
                 (lambda m=models[row[0], row[3]], r=row: draw(m, batch, 0, labels, r[1], r[2], 0.0, 2.0,
                                                              progress=False))
                 for row in rows}
        for call in calls.values():  # warm-up
            call()
        samples = {row: [] for row in rows}
        for _ in range(args.repeats):  # interleaved: a busy machine slows every row alike
            for row, call in calls.items():
                samples[row].append(timed(call, min_repeats=1, min_seconds=0.0, cpu=True, warmup=0))
        measured = {}
        for row in rows:
            wall, cpu = (float(np.median([s[i] for s in samples[row]])) for i in (0, 1))
            single = row[0] == "graph" or (row[0] != "diffusers" and models[row[0], row[3]].guidance_input)
            measured[row] = (wall, cpu, row[2] * (1 if single else 2))
        for (who, sampler, steps, t), (wall, cpu, passes) in measured.items():
            base = measured[("teacher", "ddim", args.teacher_steps, t if who != "diffusers" else threads[0])][1]
            print(f"{batch:>5} {who:>9} {sampler:>12} {steps:>5} {t or 'default':>7} {passes:>6} "
                  f"{1e3 * wall / batch:>8.1f} {1e3 * cpu / batch:>10.1f} {base / cpu:>6.1f}x")

if __name__ == "__main__":
    main()
