"""Where onnxruntime spends one call of an exported file: kernel time per op type.

    python benchmarks/profile_onnx.py exported/cifar10_denoiser.onnx --batch 32

onnxruntime's own profiler (CPU, the settings kgen.infer uses: all cores,
all graph optimisations), `--runs` calls after one warm-up; prints, per op
type, the mean kernel milliseconds per call, its share and its node count.
"""

import argparse
import collections
import json
import os
import tempfile

import numpy as np
import onnxruntime as ort


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="an .onnx file from kgen.export")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(folder, "profile")
        session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        feeds = {i.name: rng.integers(0, 10, args.batch).astype(np.int32) if i.type == "tensor(int32)"
                 else rng.standard_normal((args.batch, *i.shape[1:])).astype(np.float32)
                 for i in session.get_inputs()}
        session.run(None, feeds)  # warm-up, profiled too: skipped below by counting from the end
        for _ in range(args.runs):
            session.run(None, feeds)
        with open(session.end_profiling()) as f:
            events = json.load(f)
    runs = [e for e in events if e.get("cat") == "Session" and e["name"] == "model_run"][-args.runs:]
    start = runs[0]["ts"]
    time_per_op, nodes = collections.Counter(), collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= start:
            time_per_op[e["args"]["op_name"]] += e["dur"] / args.runs / 1000
            nodes[e["args"]["op_name"]] += 1
    total = sum(time_per_op.values())
    print(f"{os.path.basename(args.model)}, batch {args.batch}: {total:.1f} ms of kernel time per call")
    for op, ms in time_per_op.most_common(args.top):
        print(f"  {op:24s} {ms:8.2f} ms  {100 * ms / total:5.1f}%  {nodes[op] // args.runs:4d} nodes")


if __name__ == "__main__":
    main()
