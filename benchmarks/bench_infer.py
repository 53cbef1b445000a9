"""Inference speed: Keras on each backend vs onnxruntime, same models, one run.

    python benchmarks/bench_infer.py                 # fresh models of the shipped architectures
    python benchmarks/bench_infer.py --gan runs/dcgan_mnist/checkpoints/last.keras \
        --ddpm runs/ddpm_long/mnist_A/checkpoints/last.keras
    python benchmarks/bench_infer.py --ddpm exported/mnist_denoiser.onnx --engines onnxruntime --threads 1

Engines: Keras on each backend, onnxruntime (and `onnxruntime-unfused`: the
denoiser with its group norms as tf2onnx traced them, `kgen.export
--unfused`, what kgen shipped before), OpenVINO f32 and bf16 (the
openvino extra) on the same ONNX files, and onnxruntime on their static int8
copies (`kgen.export --quantize int8`; calibrated here on random inputs, which
changes nothing in the speed; the quality gate is in docs/performance.md).
Rows: DCGAN generator at batch 1 and 64; one denoiser call at batch 1 and
32 (32 = 16 samples with guidance); DDIM-50 sampling at batch 1 and 16
(guidance 1, one network call per step); DPM-Solver++(2M) with guidance 4
at batch 16 (`--dpm-steps`, default 20: 20 calls at batch 32), also as CPU
seconds of the process (all threads) per image; `denoise --t 10` (10 DDPM steps, one image). The
diffusers engines (`diffusers`, `diffusers-bf16`: torch float32 and bfloat16
autocast; needs `pip install diffusers`) run diffusers' `UNet2DModel` built
as the identical network to the DDPM's UNet (same widths, blocks, attention
levels, groups, class embedding; random weights, which do not change the
speed) inside the same numpy samplers: the peer a torch user would pick,
on the denoiser rows only. Keras runs `predict_on_batch` (the compiled predict function of
each backend) inside the same numpy sampler that onnxruntime uses. Each
engine runs in its own subprocess, one after the other. Also measured here:
the machine's fp32 matrix-multiply ceiling (numpy and onnxruntime MatMul,
2048^2) and the generator's FLOPs, giving its share of that ceiling.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from peers import diffusers_unet  # noqa: E402
from timing import timed  # noqa: E402

# No openvino-int8: OpenVINO 2026.4 reads onnxruntime's QDQ file but fails to compile it (constant folding).
ENGINES = ("tensorflow", "jax", "torch", "onnxruntime", "onnxruntime-unfused", "openvino", "openvino-bf16",
           "onnxruntime-int8", "diffusers", "diffusers-bf16")
FRAMEWORK_FREE = ("onnxruntime", "onnxruntime-unfused", "openvino", "openvino-bf16", "onnxruntime-int8")


def worker(engine, paths, threads, dpm_steps=(20,)):
    from kgen.infer import runtime
    from kgen.schedulers import make_scheduler, partial_denoise
    from kgen.schedulers.sampling import denoise_loop

    generate = None
    if engine.startswith("diffusers"):
        import torch

        torch.manual_seed(0)
        unet = diffusers_unet(paths["unet_config"])
        bf16 = engine.endswith("bf16")
        null = paths["unet_config"]["num_classes"]

        @torch.inference_mode()
        def predict(x, t, y):
            y = np.where(y < 0, null, y)  # -1: "no class", as ONNX's Gather reads it (the last row)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = unet(torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(t.astype(np.int64)),
                           class_labels=torch.from_numpy(y.astype(np.int64))).sample
            return out.float().permute(0, 2, 3, 1).numpy()

        meta = paths["ddpm_meta"]
    elif engine in FRAMEWORK_FREE:
        options = {"threads": threads, "engine": engine.split("-")[0],
                   "precision": "bf16" if engine.endswith("bf16") else "f32"}
        suffix = {"int8": "_int8", "unfused": "_unfused"}.get(engine.rsplit("-", 1)[-1], "")
        gan = runtime.load(paths.get(f"gan_onnx{suffix}", paths["gan_onnx"]), **options)
        ddpm = runtime.load(paths[f"ddpm_onnx{suffix}"], **options)
        generate = lambda z: gan.run(latents=z)[0]  # noqa: E731
        predict = ddpm.denoiser_predict()
        meta = ddpm.metadata
    else:
        import keras

        import kgen.trainers  # noqa: F401

        generator = keras.saving.load_model(paths["gan"], compile=False).generator
        ddpm_model = keras.saving.load_model(paths["ddpm"], compile=False)
        denoiser = ddpm_model.ema_denoiser
        generate = lambda z: np.asarray(generator.predict_on_batch(z))  # noqa: E731

        def predict(x, t, y):
            return np.asarray(denoiser.predict_on_batch([x, t.astype("int32"), y.astype("int32")]))

        meta = {"schedule": ddpm_model.schedule.get_config(), "null_label": ddpm_model.null_label,
                "image_shape": list(ddpm_model.image_shape)}
    schedule = {k: v for k, v in meta["schedule"].items() if k != "alphas_cumprod"}
    shape = tuple(meta["image_shape"])
    rng = np.random.default_rng(0)
    rows = {}
    for batch in (1, 64) if generate else ():
        z = rng.standard_normal((batch, 100)).astype(np.float32)
        rows[f"generator b{batch}"] = (timed(lambda: generate(z)), batch)
    for batch in (1, 32):
        x = rng.standard_normal((batch, *shape)).astype(np.float32)
        t = rng.integers(0, 1000, batch).astype(np.int32)
        y = (np.arange(batch) % 11).astype(np.int32)
        rows[f"denoiser b{batch}"] = (timed(lambda: predict(x, t, y), 5, 2.0), batch)
    for batch in (1, 16):
        x = rng.standard_normal((batch, *shape)).astype(np.float32)
        labels = np.arange(batch, dtype=np.int32) % 10

        def sample():
            scheduler = make_scheduler("ddim", schedule)
            scheduler.set_timesteps(50)
            denoise_loop(predict, scheduler, x, labels, meta["null_label"], 1.0, np.random.default_rng(0))

        rows[f"DDIM-50 b{batch}"] = (timed(sample, 2, 3.0), batch)

    for steps in dpm_steps:
        def guided():
            scheduler = make_scheduler("dpmsolver++", schedule)
            scheduler.set_timesteps(steps)
            denoise_loop(predict, scheduler, x, labels, meta["null_label"], 4.0, np.random.default_rng(0))

        seconds, cpu_seconds = timed(guided, 2, 3.0, cpu=True)
        rows[f"DPM++-{steps} w=4 b16"] = (seconds, batch)
        rows[f"  CPU s, DPM++-{steps}"] = (cpu_seconds, batch)
    image = rng.uniform(-1, 1, (1, *shape)).astype(np.float32)
    rows["denoise t=10 b1"] = (timed(lambda: partial_denoise(
        predict, make_scheduler("ddpm", schedule), image, 10, rng=np.random.default_rng(0)), 2, 2.0), 1)
    report = {name: {"seconds": s, "batch": b} for name, (s, b) in rows.items()}
    if engine.startswith("diffusers"):
        report["parameters"] = sum(p.numel() for p in unet.parameters())
    print(json.dumps(report))


def unet_description(ddpm_path):
    """The DDPM's UNet config and sampling metadata, for the diffusers engines."""
    import keras

    import kgen.trainers  # noqa: F401

    model = keras.saving.load_model(ddpm_path, compile=False)
    meta = {"schedule": model.schedule.get_config(), "null_label": model.null_label,
            "image_shape": list(model.image_shape)}
    meta["schedule"].pop("alphas_cumprod", None)
    return model.denoiser.get_config(), meta, model.denoiser.count_params()


def generator_flops(gan_path):
    """Multiply-adds x 2 of the generator's Dense and (transposed) convolutions, per image."""
    import keras

    import kgen.trainers  # noqa: F401

    generator = keras.saving.load_model(gan_path, compile=False).generator
    flops = 0
    for layer in generator.layers:
        if isinstance(layer, keras.layers.Dense):
            flops += 2 * layer.kernel.shape[0] * layer.kernel.shape[1]
        elif isinstance(layer, keras.layers.Conv2DTranspose):
            in_shape = layer.input.shape
            spatial = in_shape[1] * in_shape[2] if layer.data_format == "channels_last" else in_shape[2] * in_shape[3]
            flops += 2 * spatial * int(np.prod(layer.kernel.shape))
        elif isinstance(layer, keras.layers.Conv2D):
            out_shape = layer.output.shape
            last = layer.data_format == "channels_last"
            spatial = out_shape[1] * out_shape[2] if last else out_shape[2] * out_shape[3]
            flops += 2 * spatial * int(np.prod(layer.kernel.shape))
    return flops


def matmul_ceiling(threads, n=2048):
    """fp32 matrix-multiply FLOP/s: the better of numpy and onnxruntime MatMul."""
    import onnx
    import onnxruntime as ort

    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    numpy_s = timed(lambda: a @ a, 5, 2.0)
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("MatMul", ["a", "b"], ["c"])], "mm",
        [onnx.helper.make_tensor_value_info(k, onnx.TensorProto.FLOAT, [n, n]) for k in "ab"],
        [onnx.helper.make_tensor_value_info("c", onnx.TensorProto.FLOAT, [n, n])])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(
        onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)], ir_version=8)
        .SerializeToString(), options, providers=["CPUExecutionProvider"])
    ort_s = timed(lambda: session.run(None, {"a": a, "b": a}), 5, 2.0)
    flop = 2.0 * n**3
    return {"numpy": flop / numpy_s, "onnxruntime": flop / ort_s}


def card_recipe(onnx_path):
    """The recipe config in an exported file's model card (`kgen.export` writes the card beside it)."""
    card_path = os.path.splitext(onnx_path)[0] + ".json"
    if not os.path.isfile(card_path):
        raise SystemExit(f"{onnx_path}: no model card {card_path} beside it to rebuild the UNet from.")
    with open(card_path) as f:
        return json.load(f)["recipe_config"]


def ddpm_from_export(onnx_path, output):
    """Writes a DDPM `.keras` at `output` holding an exported denoiser's weights; returns `output`.

    The architecture comes from the recipe config in the file's model card
    (`kgen.export` writes it beside the file); the weights are read back from
    the ONNX graph (`kgen.export.warm_start.load_export`), so the Keras engines and
    the re-export run the shipped model, not a fresh one.
    """
    from kgen.models import UNet
    from kgen.trainers import DDPM

    config = card_recipe(onnx_path)
    ddpm = DDPM(UNet(tuple(config["image_shape"]), config["widths"], config["num_res_blocks"],
                     config["attention_resolution"], num_classes=len(config["class_names"]),
                     adaptive_norm=config["adaptive_norm"]),
                num_train_timesteps=config["timesteps"], beta_schedule=config["beta_schedule"],
                prediction_type=config["prediction_type"])
    from kgen.export.warm_start import load_export

    error = load_export(ddpm, onnx_path)
    print(f"{onnx_path}: weights read back into a DDPM (outputs within {error:.1e} of the file)")
    os.makedirs(os.path.dirname(output), exist_ok=True)
    ddpm.save(output)
    return output


def random_inputs(onnx_path, count=64):
    """Random calibration inputs for an exported file: only the speed of its int8 copy is measured here."""
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    inputs = {}
    for spec in ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"]).get_inputs():
        if spec.type == "tensor(int32)":  # timesteps and labels
            inputs[spec.name] = rng.integers(0, 10, count).astype(np.int32)
        else:
            inputs[spec.name] = rng.standard_normal((count, *spec.shape[1:])).astype(np.float32)
    return inputs


def prepare(args, folder):
    """Checkpoints (given, or fresh models of the shipped architectures) and their ONNX files."""
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import keras

    from kgen.export import export_onnx
    from kgen.models import DCGANDiscriminator, DCGANGenerator, UNet
    from kgen.trainers import DCGAN, DDPM

    paths = {"gan": args.gan, "ddpm": args.ddpm}
    if paths["ddpm"] and paths["ddpm"].endswith(".onnx"):
        paths["ddpm"] = ddpm_from_export(paths["ddpm"], os.path.join(folder, "shipped", "checkpoints", "last.keras"))
    if not paths["gan"]:
        paths["gan"] = os.path.join(folder, "gan", "checkpoints", "last.keras")
        os.makedirs(os.path.dirname(paths["gan"]))
        DCGAN(DCGANGenerator((28, 28, 1), 100, 64), DCGANDiscriminator((28, 28, 1), 64)).save(paths["gan"])
    if not paths["ddpm"]:
        paths["ddpm"] = os.path.join(folder, "ddpm", "checkpoints", "last.keras")
        os.makedirs(os.path.dirname(paths["ddpm"]))
        keras.utils.set_random_seed(0)
        DDPM(UNet((28, 28, 1), (16, 32, 64), num_classes=10), beta_schedule="cosine").save(paths["ddpm"])
    paths["gan_onnx"] = export_onnx(paths["gan"], output=os.path.join(folder, "gan.onnx"), dataset="mnist")["path"]
    paths["ddpm_onnx"] = export_onnx(paths["ddpm"], output=os.path.join(folder, "ddpm.onnx"), dataset="mnist")["path"]
    if "onnxruntime-unfused" in args.engines.split(","):  # the denoiser as kgen exported it before the fusion
        paths["ddpm_onnx_unfused"] = export_onnx(paths["ddpm"], output=os.path.join(folder, "ddpm_unfused.onnx"),
                                                 dataset="mnist", fuse=False)["path"]
    paths["unet_config"], paths["ddpm_meta"], paths["unet_parameters"] = unet_description(paths["ddpm"])
    if any(e.endswith("-int8") for e in args.engines.split(",")):
        from kgen.export.quantize import quantize_int8

        for key in ("gan_onnx", "ddpm_onnx"):
            paths[f"{key}_int8"] = quantize_int8(paths[key], inputs=random_inputs(paths[key]))["path"]
    return paths


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gan", help="DCGAN .keras (default: fresh DCGAN of the shipped size)")
    parser.add_argument("--ddpm", help="DDPM .keras, or a kgen denoiser .onnx with its card "
                        "(default: fresh UNet 16,32,64 of MNIST shape)")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="onnxruntime intra-op threads")
    parser.add_argument("--dpm-steps", default="20",
                        help="comma-separated DPM-Solver++ step counts of the guided sampling rows (default 20)")
    parser.add_argument("--json", help="write all numbers here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--paths", help=argparse.SUPPRESS)
    args = parser.parse_args()
    try:
        dpm_steps = [int(n) for n in args.dpm_steps.split(",")]
    except ValueError:
        parser.error(f"--dpm-steps takes comma-separated step counts; got {args.dpm_steps!r}")
    if args.worker:
        return worker(args.worker, json.loads(args.paths), args.threads, dpm_steps)

    engines = args.engines.split(",")
    if any(e.startswith("diffusers") for e in engines):
        try:
            import diffusers  # noqa: F401
        except ImportError:
            print("diffusers is not installed (pip install diffusers): its engines are skipped")
            engines = [e for e in engines if not e.startswith("diffusers")]
    with tempfile.TemporaryDirectory() as folder:
        paths = prepare(args, folder)
        results = {}
        for engine in engines:
            framework_free = engine in FRAMEWORK_FREE
            env = dict(os.environ, KERAS_BACKEND="tensorflow" if framework_free else engine)
            out = subprocess.run([sys.executable, __file__, "--worker", engine, "--paths", json.dumps(paths),
                                  "--threads", str(args.threads), "--dpm-steps", args.dpm_steps],
                                 env=env, capture_output=True, text=True)
            if out.returncode:
                print(f"{engine} failed:\n{out.stderr[-2000:]}")
                continue
            results[engine] = json.loads(out.stdout.strip().splitlines()[-1])
            if engine.startswith("diffusers"):
                parameters = results[engine].pop("parameters")
                print(f"{engine}: UNet2DModel with {parameters:,} parameters; kgen's UNet has "
                      f"{paths['unet_parameters']:,}")
            print(f"measured {engine}", flush=True)
        flops = generator_flops(paths["gan"])
    ceiling = matmul_ceiling(args.threads)
    peak = max(ceiling.values())

    keras_engines = [e for e in results if e in ("tensorflow", "jax", "torch")]
    print(f"\nmachine: {os.cpu_count()} cores; fp32 matmul ceiling {peak / 1e9:.1f} GFLOP/s "
          f"(numpy {ceiling['numpy'] / 1e9:.1f}, onnxruntime {ceiling['onnxruntime'] / 1e9:.1f}); "
          f"generator {flops / 1e6:.1f} MFLOP per image\n")
    width = {e: max(14, len(e) + 2) for e in results}
    header = f"{'row':<18}" + "".join(f"{e:>{width[e]}}" for e in results) + f"{'ORT / best Keras':>18}"
    print(header + "\n" + "-" * len(header))
    rows = list(dict.fromkeys(row for r in results.values() for row in r))
    for row in rows:
        cells, per_engine = [], {}
        for engine in results:
            if row not in results[engine]:
                cells.append(f"{'-':>{width[engine]}}")
                continue
            r = results[engine][row]
            per_engine[engine] = r["seconds"]
            cells.append(f"{r['seconds'] * 1000:>{width[engine] - 3}.1f} ms")
        best = min((per_engine[e], e) for e in keras_engines) if keras_engines else None
        ratio = (f"{best[0] / per_engine['onnxruntime']:>10.2f}x ({best[1][:5]})"
                 if best and "onnxruntime" in per_engine else "")
        print(f"{row:<18}" + "".join(cells) + f"{ratio:>18}")
    if "onnxruntime" in results:
        r = results["onnxruntime"]["generator b64"]
        achieved = flops * 64 / r["seconds"]
        print(f"\ngenerator b64 on onnxruntime: {64 / r['seconds']:.0f} images/s, {achieved / 1e9:.1f} GFLOP/s = "
              f"{100 * achieved / peak:.0f}% of the measured matmul ceiling")
        for row in [r for r in results["onnxruntime"] if not r.startswith(" ")]:
            b = results["onnxruntime"][row]["batch"]
            print(f"  {row:<18} onnxruntime {b / results['onnxruntime'][row]['seconds']:8.1f} images/s")
    if "onnxruntime-unfused" in results and "onnxruntime" in results:
        fused, unfused = results["onnxruntime"], results["onnxruntime-unfused"]
        ratios = ", ".join(f"{row} {unfused[row]['seconds'] / fused[row]['seconds']:.2f}x"
                           for row in fused if not row.startswith("generator"))
        print(f"fused group norms (onnxruntime) speed-up over tf2onnx's (onnxruntime-unfused): {ratios}")
    for fast in ("openvino", "openvino-bf16", "onnxruntime-int8"):
        if fast in results and "onnxruntime" in results:
            ratios = ", ".join(f"{row} {results['onnxruntime'][row]['seconds'] / results[fast][row]['seconds']:.2f}x"
                               for row in results["onnxruntime"])
            print(f"{fast} speed-up over onnxruntime f32: {ratios}")
    peers = [e for e in results if e.startswith("diffusers")]
    if peers:
        ours = [e for e in results if e in FRAMEWORK_FREE]
        for row in ("denoiser b1", "denoiser b32"):
            peer = min((results[e][row]["seconds"], e) for e in peers)
            own = min((results[e][row]["seconds"], e) for e in ours) if ours else None
            if own:
                print(f"{row}: kgen's fastest framework-free ({own[1]}, {own[0] * 1e3:.1f} ms) vs diffusers' "
                      f"fastest ({peer[1]}, {peer[0] * 1e3:.1f} ms): {peer[0] / own[0]:.2f}x")
    for engine in results:
        for steps in dpm_steps:
            wall, cpu = (results[engine][row]["seconds"] / 16e-3
                         for row in (f"DPM++-{steps} w=4 b16", f"  CPU s, DPM++-{steps}"))
            print(f"{engine}: DPM-Solver++(2M)-{steps}, guidance 4, batch 16, {args.threads} thread(s): "
                  f"{wall:.1f} ms wall, {cpu:.1f} ms CPU per image")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "matmul_flops": ceiling, "generator_flops": flops}, f, indent=1)


if __name__ == "__main__":
    main()
