"""One denoiser call on each engine, interleaved in one process: ratios that machine drift cannot skew.

    python benchmarks/bench_engines_interleaved.py exported/cifar10_denoiser.onnx
    python benchmarks/bench_engines_interleaved.py exported/mnist_denoiser.onnx \
        --int8 exported/mnist_denoiser_int8.onnx --threads 1,2

`bench_infer.py` runs each engine in its own subprocess, one after the
other, so a machine whose speed drifts (a shared 2-core CPU does) moves
the ratios between engines by 10-15%. Here every engine is loaded once and
the rounds alternate between them: round r times engine A, then B, ... then
A again in round r + 1; each engine's number is its best round's median.
Engines: onnxruntime float32 (kgen.infer's loader), its int8 copy
(`--int8`, a `kgen.export --quantize int8` file), OpenVINO bf16 (and f32
with `--openvino-f32`), and diffusers' `UNet2DModel` built as the identical
network (float32 and bfloat16 autocast; random weights, which do not change
the speed; skipped when diffusers is absent), each at every `--threads`.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def unet_config(onnx_path):
    """kgen's UNet config of an exported denoiser, from the recipe config in its model card."""
    import bench_infer

    config = bench_infer.card_recipe(onnx_path)
    return {"image_shape": config["image_shape"], "widths": config["widths"],
            "num_res_blocks": config["num_res_blocks"], "attention_resolution": config["attention_resolution"],
            "num_classes": len(config["class_names"]), "groups": 8, "adaptive_norm": config["adaptive_norm"]}


def engines(args, threads):
    """`{name: predict(x, t, y)}` for every engine at `threads` intra-op threads."""
    from kgen.infer import runtime

    found = {}
    found[f"onnxruntime f32, {threads}t"] = runtime.load(args.model, threads=threads).denoiser_predict()
    if args.int8:
        found[f"onnxruntime int8, {threads}t"] = runtime.load(args.int8, threads=threads).denoiser_predict()
    precisions = ("f32", "bf16") if args.openvino_f32 else ("bf16",)
    for precision in precisions:
        try:
            model = runtime.load(args.model, engine="openvino", precision=precision, threads=threads)
        except ValueError as error:  # bf16 on a CPU without bfloat16 instructions
            print(f"openvino {precision} skipped: {error}")
            continue
        found[f"openvino {precision}, {threads}t"] = model.denoiser_predict()
    try:
        import torch
    except ImportError:
        return found
    try:
        from peers import diffusers_unet

        unet = diffusers_unet(unet_config(args.model))
    except ImportError:
        print("diffusers is not installed (pip install diffusers): its engines are skipped")
        return found
    null = unet_config(args.model)["num_classes"]

    def diffusers(bf16):
        @torch.inference_mode()
        def predict(x, t, y):
            torch.set_num_threads(threads)
            y = np.where(y < 0, null, y)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = unet(torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(t.astype(np.int64)),
                           class_labels=torch.from_numpy(y.astype(np.int64))).sample
            return out.float().permute(0, 2, 3, 1).numpy()

        return predict

    found[f"diffusers f32, {threads}t"] = diffusers(False)
    found[f"diffusers bf16, {threads}t"] = diffusers(True)
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="an exported denoiser .onnx with its model card")
    parser.add_argument("--int8", help="its int8 copy (kgen.export --quantize int8)")
    parser.add_argument("--openvino-f32", action="store_true", help="also OpenVINO float32")
    parser.add_argument("--threads", default="2", help="comma-separated intra-op thread counts (default 2)")
    parser.add_argument("--batches", default="1,32", help="comma-separated batch sizes (default 1,32)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", help="write all numbers here")
    args = parser.parse_args()

    predict = {}
    for threads in (int(n) for n in args.threads.split(",")):
        predict.update(engines(args, threads))
    config = unet_config(args.model)
    rng = np.random.default_rng(0)
    report = {}
    for batch in (int(b) for b in args.batches.split(",")):
        x = rng.standard_normal((batch, *config["image_shape"])).astype(np.float32)
        t = rng.integers(0, 1000, batch).astype(np.int32)
        y = (np.arange(batch) % (config["num_classes"] + 1)).astype(np.int32)
        outputs = {name: fn(x, t, y) for name, fn in predict.items()}  # also the warm-up
        reference = next(iter(outputs.values()))
        repeats = 30 if batch < 8 else 7
        rounds = {name: [] for name in predict}
        for _ in range(args.rounds):
            for name, fn in predict.items():
                times = []
                for _ in range(repeats):
                    start = time.perf_counter()
                    fn(x, t, y)
                    times.append(time.perf_counter() - start)
                rounds[name].append(float(np.median(times)))
        best = {name: min(r) for name, r in rounds.items()}
        print(f"\n{os.path.basename(args.model)}, one denoiser call at batch {batch}: best of {args.rounds} "
              f"interleaved rounds (median ms per round)")
        fastest = min(best.values())
        for name, seconds in best.items():
            print(f"  {name:28s} {seconds * 1e3:8.2f} ms   {fastest / seconds:5.2f}x of the fastest   rounds "
                  + " ".join(f"{r * 1e3:.1f}" for r in rounds[name]))
        ours = {n: s for n, s in best.items() if not n.startswith("diffusers")}
        peers = {n: s for n, s in best.items() if n.startswith("diffusers")}
        if peers:
            own, peer = min(ours.items(), key=lambda kv: kv[1]), min(peers.items(), key=lambda kv: kv[1])
            print(f"  kgen's fastest framework-free ({own[0]}, {own[1] * 1e3:.1f} ms) vs diffusers' fastest "
                  f"({peer[0]}, {peer[1] * 1e3:.1f} ms): {peer[1] / own[1]:.2f}x")
        differences = {n: float(np.abs(out - reference).max()) for n, out in outputs.items()
                       if not n.startswith("diffusers")}  # diffusers' weights are random
        print("  largest |difference| from onnxruntime f32: "
              + ", ".join(f"{n} {d:.2g}" for n, d in differences.items()))
        report[f"batch {batch}"] = {"rounds_s": rounds, "best_s": best, "max_abs_diff_vs_onnxruntime_f32": differences}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
