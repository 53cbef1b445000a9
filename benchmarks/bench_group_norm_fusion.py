"""Group norms as tf2onnx traced them vs fused (InstanceNormalization), interleaved on onnxruntime.

    python benchmarks/bench_group_norm_fusion.py --json docs/results/bench_group_norm_fusion.json
    python benchmarks/bench_group_norm_fusion.py old_denoiser.onnx --batches 1,16,32

For each ONNX denoiser, both graphs come from the same file: tf2onnx's
(a file exported `--unfused`, or before kgen fused group norms) and the one
`kgen.export.graph_rewrites.fuse_group_norms` makes of it. The default files
are the shipped architectures with random weights (N(0, 0.05): the speed
does not depend on them, but a fresh model's unit scales and zero shifts
and its zero output layer would be folded away by tf2onnx or hide every
difference) exported `--unfused`: the CIFAR-10 UNet (32,64,128)
and the MNIST one (16,32,64), both with AdaGN. One network call
is timed with kgen.infer's onnxruntime settings, the two graphs alternating
over `--rounds` rounds (so drift of a shared machine hits both alike); each
keeps the best of its rounds' medians. Also printed: the largest output
difference between the two on the same inputs, and process CPU time per
call.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
SHIPPED = {"cifar10_unet": ((32, 32, 3), (32, 64, 128)), "mnist_unet": ((28, 28, 1), (16, 32, 64))}


def fresh_unfused_files(folder):
    """The shipped UNet architectures with fresh weights, exported as tf2onnx traces them."""
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import keras

    from kgen.export import export_onnx
    from kgen.models import UNet
    from kgen.trainers import DDPM

    files = []
    for name, (shape, widths) in SHIPPED.items():
        keras.utils.set_random_seed(0)
        checkpoint = os.path.join(folder, name, "checkpoints", "last.keras")
        os.makedirs(os.path.dirname(checkpoint))
        ddpm = DDPM(UNet(shape, widths, num_classes=10, adaptive_norm=True), snr_gamma=5.0)
        rng = np.random.default_rng(0)
        ddpm.ema_denoiser.set_weights([rng.normal(0, 0.05, w.shape) for w in ddpm.ema_denoiser.get_weights()])
        ddpm.save(checkpoint)
        files.append(export_onnx(checkpoint, output=os.path.join(folder, f"{name}.onnx"), dataset=name,
                                 fuse=False)["path"])
    return files


def _inputs(metadata, batch):
    rng = np.random.default_rng(0)
    shape = tuple(metadata["image_shape"])
    return {"images": rng.standard_normal((batch, *shape)).astype(np.float32),
            "timesteps": rng.integers(0, metadata["schedule"]["num_train_timesteps"], batch).astype(np.int32),
            "labels": (np.arange(batch) % ((metadata["num_classes"] or 0) + 1)).astype(np.int32)}


def _median(session, inputs, min_seconds):
    session.run(None, inputs)
    wall, cpu = [], []
    while len(wall) < 5 or sum(wall) < min_seconds:
        start, start_cpu = time.perf_counter(), time.process_time()
        session.run(None, inputs)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return float(np.median(wall)), float(np.median(cpu))


def main():
    import onnxruntime as ort

    from kgen.export.graph_rewrites import fuse_group_norms
    from kgen.export.onnx_files import read_onnx_metadata

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="unfused kgen denoiser .onnx files (default: fresh shipped UNets)")
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0, help="timing per graph, batch and round")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--json", help="write all numbers here")
    args = parser.parse_args()

    options = ort.SessionOptions()  # kgen.infer's settings (benchmarks/bench_ort_settings.py)
    options.intra_op_num_threads = args.threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    results = {}
    folder = tempfile.mkdtemp()
    for path in args.files or fresh_unfused_files(folder):
        model, metadata = read_onnx_metadata(path)
        unfused = model.SerializeToString()
        count = fuse_group_norms(model)
        if not count:
            sys.exit(f"{path} has no unfused group norm; give a file exported --unfused or before kgen fused them.")
        sessions = {"tf2onnx": ort.InferenceSession(unfused, options, providers=["CPUExecutionProvider"]),
                    "fused": ort.InferenceSession(model.SerializeToString(), options,
                                                  providers=["CPUExecutionProvider"])}
        for batch in (int(b) for b in args.batches.split(",")):
            inputs = _inputs(metadata, batch)
            a, b = (s.run(None, inputs)[0] for s in sessions.values())
            best = {name: (float("inf"), float("inf")) for name in sessions}
            for _ in range(args.rounds):
                for name, session in sessions.items():
                    best[name] = min(best[name], _median(session, inputs, args.seconds))
            key = f"{os.path.basename(path)} b{batch}"
            results[key] = {"group_norms": count, "max_abs_difference": float(np.abs(a - b).max()),
                            **{f"{name}_ms": 1e3 * t for name, (t, _) in best.items()},
                            **{f"{name}_cpu_ms": 1e3 * c for name, (_, c) in best.items()},
                            "speedup": best["tf2onnx"][0] / best["fused"][0]}
            r = results[key]
            print(f"{key:<28} {count} group norms  tf2onnx {r['tf2onnx_ms']:8.1f} ms  fused {r['fused_ms']:8.1f} ms  "
                  f"{r['speedup']:.2f}x  (CPU {r['tf2onnx_cpu_ms']:.1f} -> {r['fused_cpu_ms']:.1f} ms; "
                  f"max |diff| {r['max_abs_difference']:.1e})", flush=True)
    shutil.rmtree(folder)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "rounds": args.rounds, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
