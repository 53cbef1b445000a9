"""Sampling time: the whole sampler as one ONNX graph vs kgen.infer's numpy loop around the denoiser.

    python benchmarks/bench_sampler_graph.py --rounds 3

Both run in onnxruntime (CPU, default threads) on the shipped MNIST model, DDIM-25 with guidance 2,
for one image and for one image per class; rounds alternate the two and the best round of each is
kept. The ratio compares numbers from this run only.
"""

import argparse
import time

import numpy as np

from kgen.infer import runtime
from kgen.infer.sample import draw, draw_with_graph


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--denoiser", default="exported/mnist_denoiser.onnx")
    parser.add_argument("--sampler", default="exported/mnist_sampler.onnx")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    graph, denoiser = runtime.load(args.sampler), runtime.load(args.denoiser)
    steps = graph.metadata["num_steps"]
    for labels in (np.array([3], np.int32), np.arange(graph.metadata["num_classes"], dtype=np.int32)):
        jobs = {"sampler graph": lambda: draw_with_graph(graph, len(labels), 0, labels, 2.0),
                "numpy loop + denoiser": lambda: draw(denoiser, len(labels), 0, labels, "ddim", steps, 0.0, 2.0,
                                                      progress=False)}
        best = {name: float("inf") for name in jobs}
        for name, job in jobs.items():
            job()  # warm-up
        for _ in range(args.rounds):
            for name, job in jobs.items():
                start = time.perf_counter()
                job()
                best[name] = min(best[name], time.perf_counter() - start)
        print(f"batch {len(labels)}: " + ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in best.items())
              + f"; graph / loop time {best['sampler graph'] / best['numpy loop + denoiser']:.2f}")


if __name__ == "__main__":
    main()
