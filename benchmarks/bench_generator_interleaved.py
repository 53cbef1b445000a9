"""The DCGAN generator on the Keras backend against kgen.infer's engines, interleaved in one process.

    KERAS_BACKEND=jax python benchmarks/bench_generator_interleaved.py exported/mnist_generator.onnx

`bench_infer.py` times each engine in its own subprocess, one after the
other, and its "generator b64" row moved by more than the engines differ
(JAX 8.7 ms in one run, 17.8 ms in another the same afternoon). Here the
Keras generator (the backend of `KERAS_BACKEND`, `predict_on_batch` as in
bench_infer; the shipped architecture read from the file's model card,
random weights: they do not change the speed) and the exported file on
onnxruntime and OpenVINO (f32 and bf16, when installed) are loaded once, and
rounds alternate between them; each engine's number is the best of its
rounds' medians.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def median_ms(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def engines(path, threads):
    """name -> generate(latents) for the Keras backend and each installed framework-free engine."""
    import keras

    from kgen.infer import runtime
    from kgen.models import DCGANGenerator

    with open(os.path.splitext(path)[0] + ".json") as f:
        config = json.load(f)["recipe_config"]
    model = runtime.load(path, threads=threads)
    generator = DCGANGenerator(tuple(model.image_shape), config["latent_dim"], config["generator_width"])
    found = {f"Keras ({keras.backend.backend()})": lambda z: np.asarray(generator.predict_on_batch(z)),
             "onnxruntime": lambda z: model.run(latents=z)[0]}
    try:
        import openvino  # noqa: F401
    except ImportError:
        return found
    for precision in ("f32", "bf16"):
        ov = runtime.load(path, threads=threads, engine="openvino", precision=precision)
        found[f"openvino {precision}"] = lambda z, m=ov: m.run(latents=z)[0]
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a generator .onnx from kgen.export, with its model card beside it")
    parser.add_argument("--batches", default="1,64")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=20, help="calls per engine and round")
    parser.add_argument("--threads", type=int, default=None, help="framework-free engines (default: all cores)")
    parser.add_argument("--json", help="write the numbers here")
    args = parser.parse_args()
    fns = engines(args.model, args.threads)
    rng = np.random.default_rng(0)
    results = {}
    for batch in (int(b) for b in args.batches.split(",")):
        z = rng.standard_normal((batch, 100)).astype(np.float32)
        best = {name: np.inf for name in fns}
        for _ in range(args.rounds):
            for name, fn in fns.items():
                best[name] = min(best[name], median_ms(lambda: fn(z), args.repeats))
        keras_name = next(iter(fns))
        print(f"batch {batch}, best of {args.rounds} alternating rounds, median of {args.repeats} calls each:")
        for name, ms in best.items():
            print(f"  {name:18s} {ms:7.2f} ms   {best[keras_name] / ms:5.2f}x the Keras backend")
        results[f"b{batch}"] = best
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
