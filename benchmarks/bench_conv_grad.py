"""One stride-2 convolution's forward and gradients: JAX (XLA CPU) vs TensorFlow.

    python benchmarks/bench_conv_grad.py

Explains why DCGAN training on JAX is slow on CPU for kgen and for the
native JAX loop alike: the discriminator's second convolution at batch 128
(128x28x28x64 -> 14x14x128, 4x4 kernel, stride 2, "same"), timed in one run.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import timed  # noqa: E402


def timeit(fn, repeats=10):
    """Milliseconds per call: the median of `timing.timed`."""
    return timed(fn, min_repeats=repeats, min_seconds=0.0) * 1000


def bench_jax(x, w):
    import jax
    from jax import lax

    x, w = jax.numpy.asarray(x), jax.numpy.asarray(w)

    def conv(x, w):
        return lax.conv_general_dilated(x, w, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))

    fwd = jax.jit(conv)
    dx = jax.jit(jax.grad(lambda x, w: conv(x, w).sum(), argnums=0))
    dw = jax.jit(jax.grad(lambda x, w: conv(x, w).sum(), argnums=1))
    return {name: timeit(lambda f=f: jax.block_until_ready(f(x, w))) for name, f in
            (("forward", fwd), ("input gradient", dx), ("kernel gradient", dw))}


def bench_tf(x, w):
    import tensorflow as tf

    x, w = tf.constant(x), tf.constant(w)

    @tf.function
    def fwd(x, w):
        return tf.nn.conv2d(x, w, 2, "SAME")

    def gradient(wrt):
        @tf.function
        def grad(x, w):
            with tf.GradientTape() as tape:
                tape.watch([x, w][wrt])
                y = tf.reduce_sum(tf.nn.conv2d(x, w, 2, "SAME"))
            return tape.gradient(y, [x, w][wrt])

        return grad

    dx, dw = gradient(0), gradient(1)

    return {name: timeit(lambda f=f: f(x, w).numpy()) for name, f in
            (("forward", fwd), ("input gradient", dx), ("kernel gradient", dw))}


def main():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((128, 28, 28, 64)).astype("float32")
    w = rng.standard_normal((4, 4, 64, 128)).astype("float32")
    jax_ms, tf_ms = bench_jax(x, w), bench_tf(x, w)
    print("| op | JAX (ms) | TensorFlow (ms) | JAX / TF |")
    print("| --- | --- | --- | --- |")
    for name in jax_ms:
        print(f"| {name} | {jax_ms[name]:.1f} | {tf_ms[name]:.1f} | {jax_ms[name] / tf_ms[name]:.1f} |")


if __name__ == "__main__":
    main()
