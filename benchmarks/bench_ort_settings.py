"""onnxruntime session settings, measured: threads, graph optimisation level, execution mode, spinning.

    python benchmarks/bench_ort_settings.py --json docs/results/bench_ort_settings.json

For each shipped ONNX file and batch (the CIFAR-10 and MNIST denoisers at
batch 1 and 32, the MNIST generator at batch 1 and 64), one network call is
timed under every combination of: intra-op threads (1, all cores), graph
optimisation (basic, extended, all), execution mode (sequential, parallel
with as many inter-op threads) and intra-op spinning (on, off). Settings are
interleaved over `--rounds` rounds, and each keeps the best of its rounds'
medians, so drift of a shared machine hits all settings alike. Printed: per
file and batch, kgen.infer's settings, the fastest setting and its ratio,
and the median ratio of each choice against its alternative with the rest
held fixed, in wall time and in process CPU time (all threads: what a
spinning thread pool costs a machine that has other work).

    python benchmarks/bench_ort_settings.py --sampling [--rounds 12]

times instead whole guided sampling runs (kgen.infer's numpy DPM-Solver++,
15 steps, guidance 4, 16 images: 15 calls at batch 32 with numpy work
between them) on the MNIST denoiser, kgen.infer's session against the same
session with intra-op spinning switched the other way, rounds alternating.
"""

import argparse
import itertools
import json
import os
import time

import numpy as np
import onnxruntime as ort

LEVELS = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
          "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
          "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
MODES = {"sequential": ort.ExecutionMode.ORT_SEQUENTIAL, "parallel": ort.ExecutionMode.ORT_PARALLEL}
CASES = (("exported/cifar10_denoiser.onnx", (1, 32)), ("exported/mnist_denoiser.onnx", (1, 32)),
         ("exported/mnist_generator.onnx", (1, 64)))


def session(path, threads, level, mode, spinning):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = LEVELS[level]
    options.execution_mode = MODES[mode]
    if mode == "parallel":
        options.inter_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def feeds(sess, batch):
    rng = np.random.default_rng(0)
    inputs = {}
    for spec in sess.get_inputs():
        if spec.type == "tensor(int32)":  # timesteps, labels
            inputs[spec.name] = rng.integers(0, 10, batch).astype(np.int32)
        else:
            inputs[spec.name] = rng.standard_normal((batch, *spec.shape[1:])).astype(np.float32)
    return inputs


def median_seconds(sess, inputs, min_seconds):
    """Median wall and process CPU seconds of one call."""
    sess.run(None, inputs)
    times, cpu = [], []
    while len(times) < 5 or sum(times) < min_seconds:
        start, start_cpu = time.perf_counter(), time.process_time()
        sess.run(None, inputs)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return float(np.median(times)), float(np.median(cpu))


def sampling(rounds, path="exported/mnist_denoiser.onnx"):
    """Guided DPM-Solver++-15 runs at batch 16, kgen.infer's session against spinning switched."""
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from kgen.infer import runtime
    from kgen.infer.sample import draw

    kgen = runtime.load(path)
    other = session(path, os.cpu_count(), "all", "sequential", False)
    names = [o.name for o in other.get_outputs()]
    models = {"kgen.infer (spinning)": kgen,
              "spinning off": runtime.InferenceModel(path, kgen.metadata, lambda x: other.run(names, x), "cpu")}
    labels = np.arange(16) % 10
    found = {name: [] for name in models}
    for r in range(rounds + 1):  # the first round warms up
        for name, model in models.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            draw(model, 16, 0, labels, "dpmsolver++", 15, 0.0, 4.0, progress=False)
            if r:
                found[name].append((time.perf_counter() - start, time.process_time() - start_cpu))
    print(f"{os.path.basename(path)}: DPM-Solver++-15, guidance 4, 16 images, median of {rounds} alternating rounds")
    medians = {name: np.median(np.array(v), axis=0) for name, v in found.items()}
    for name, (wall, cpu) in medians.items():
        print(f"  {name:22s} {wall * 1e3:8.1f} ms wall {cpu * 1e3:8.1f} ms CPU")
    (w_on, c_on), (w_off, c_off) = medians.values()
    print(f"  spinning off / on: wall time {w_off / w_on:.2f}, CPU time {c_off / c_on:.2f}")
    return {name: {"wall_s": float(m[0]), "cpu_s": float(m[1])} for name, m in medians.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=0.5, help="timing per setting and round")
    parser.add_argument("--sampling", action="store_true", help="time whole sampling runs instead (see above)")
    parser.add_argument("--json", help="write all numbers here")
    args = parser.parse_args()
    if args.sampling:
        found = sampling(args.rounds)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(found, f, indent=1)
        return
    cores = os.cpu_count()
    settings = list(itertools.product(sorted({1, cores}), LEVELS, MODES, (True, False)))
    # kgen.infer's settings (kgen/infer/runtime.py): all cores, every optimisation, sequential, spinning.
    current = (cores, "all", "sequential", True)
    results, results_cpu = {}, {}
    for path, batches in CASES:
        best, best_cpu = {}, {}
        for _ in range(args.rounds):
            for setting in settings:
                sess = session(path, *setting)
                for batch in batches:
                    seconds, cpu_seconds = median_seconds(sess, feeds(sess, batch), args.seconds)
                    key = (batch, setting)
                    best[key] = min(best.get(key, np.inf), seconds)
                    best_cpu[key] = min(best_cpu.get(key, np.inf), cpu_seconds)
        results[path], results_cpu[path] = best, best_cpu
        for batch in batches:
            times = {s: best[(batch, s)] for s in settings}
            cpu_times = {s: best_cpu[(batch, s)] for s in settings}
            fastest = min(times, key=times.get)
            print(f"{os.path.basename(path)} batch {batch}: kgen.infer {times[current] * 1e3:.2f} ms "
                  f"{current}; fastest {times[fastest] * 1e3:.2f} ms {fastest}: "
                  f"{times[current] / times[fastest]:.2f}x")
            for index, name, values in ((0, "threads", sorted({1, cores})), (1, "level", list(LEVELS)),
                                        (2, "mode", list(MODES)), (3, "spinning", [True, False])):
                ref = values[-1] if index == 0 else ("all" if index == 1 else values[0])
                for value in values:
                    if value == ref:
                        continue
                    ratios, cpu_ratios = ([t[s] / t[s[:index] + (ref,) + s[index + 1:]]
                                           for s in settings if s[index] == value] for t in (times, cpu_times))
                    print(f"    {name} {value} vs {ref}: median time ratio {np.median(ratios):.2f}, "
                          f"CPU time ratio {np.median(cpu_ratios):.2f}")
            print(f"    kgen.infer's settings: CPU time {cpu_times[current] * 1e3:.2f} ms per call")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"wall_s": {os.path.basename(p): {f"b{b} {s}": t for (b, s), t in r.items()}
                                  for p, r in results.items()},
                       "cpu_s": {os.path.basename(p): {f"b{b} {s}": t for (b, s), t in r.items()}
                                 for p, r in results_cpu.items()}}, f, indent=1)


if __name__ == "__main__":
    main()
