"""DCGAN in plain JAX: parameter pytrees, lax convolutions, hand-written Adam."""

import jax
import jax.numpy as jnp
from jax import lax

DN = ("NHWC", "HWIO", "NHWC")


def _normal(key, shape, mean=0.0):
    return mean + 0.02 * jax.random.normal(key, shape)


def init(key, latent=100, width=64):
    k = jax.random.split(key, 10)
    c = 2 * width
    g = {
        "project": _normal(k[0], (latent, 7 * 7 * c)),
        "bn0": {"g": _normal(k[1], (7 * 7 * c,), 1.0), "b": jnp.zeros(7 * 7 * c)},
        "up": _normal(k[2], (4, 4, width, c)),  # HWOI for conv_transpose(transpose_kernel)
        "bn1": {"g": _normal(k[3], (width,), 1.0), "b": jnp.zeros(width)},
        "out": _normal(k[4], (4, 4, 1, width)),
        "out_b": jnp.zeros(1),
    }
    d = {
        "c0": _normal(k[5], (4, 4, 1, width)),
        "c0_b": jnp.zeros(width),
        "c1": _normal(k[6], (4, 4, width, c)),
        "bn1": {"g": _normal(k[7], (c,), 1.0), "b": jnp.zeros(c)},
        "logit": _normal(k[8], (7 * 7 * c, 1)),
        "logit_b": jnp.zeros(1),
    }
    return g, d


def _bn(x, p, axes):
    mean = x.mean(axes)
    var = x.var(axes)
    return (x - mean) * lax.rsqrt(var + 1e-3) * p["g"] + p["b"]


def _convT(x, w):
    return lax.conv_transpose(x, w, (2, 2), "SAME", dimension_numbers=DN, transpose_kernel=True)


def _conv(x, w):
    return lax.conv_general_dilated(x, w, (2, 2), "SAME", dimension_numbers=DN)


def generator(p, z):
    x = jax.nn.relu(_bn(z @ p["project"], p["bn0"], (0,)))
    x = x.reshape(z.shape[0], 7, 7, -1)
    x = jax.nn.relu(_bn(_convT(x, p["up"]), p["bn1"], (0, 1, 2)))
    return jnp.tanh(_convT(x, p["out"]) + p["out_b"])


def discriminator(p, x):
    x = jax.nn.leaky_relu(_conv(x, p["c0"]) + p["c0_b"], 0.2)
    x = jax.nn.leaky_relu(_bn(_conv(x, p["c1"]), p["bn1"], (0, 1, 2)), 0.2)
    return x.reshape(x.shape[0], -1) @ p["logit"] + p["logit_b"]


def _bce(logits, target):
    return jnp.mean(target * jax.nn.softplus(-logits) + (1 - target) * jax.nn.softplus(logits))


def _adam(params, grads, state, lr=2e-4, b1=0.5, b2=0.999, eps=1e-7):
    m, v, t = state
    t = t + 1
    m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
    v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
    scale = lr * jnp.sqrt(1 - b2**t) / (1 - b1**t)
    params = jax.tree.map(lambda p, m, v: p - scale * m / (jnp.sqrt(v) + eps), params, m, v)
    return params, (m, v, t)


def make_step(batch_size, latent=100, real_label=0.9):
    g, d = init(jax.random.PRNGKey(0), latent)
    zeros = lambda tree: jax.tree.map(jnp.zeros_like, tree)
    state = {"g": g, "d": d, "og": (zeros(g), zeros(g), 0), "od": (zeros(d), zeros(d), 0),
             "key": jax.random.PRNGKey(1)}

    @jax.jit
    def train_step(state, real):
        key, sub = jax.random.split(state["key"])
        z = jax.random.normal(sub, (batch_size, latent))
        g, d = state["g"], state["d"]
        fake = generator(g, z)

        def d_loss_fn(d):
            return _bce(discriminator(d, real), real_label) + _bce(discriminator(d, fake), 0.0)

        d_loss, d_grads = jax.value_and_grad(d_loss_fn)(d)
        d, od = _adam(d, d_grads, state["od"])

        def g_loss_fn(g):
            return _bce(discriminator(d, generator(g, z)), 1.0)

        g_loss, g_grads = jax.value_and_grad(g_loss_fn)(g)
        g, og = _adam(g, g_grads, state["og"])
        return {"g": g, "d": d, "og": og, "od": od, "key": key}, (d_loss, g_loss)

    holder = {"state": state}

    def step(real):
        holder["state"], losses = train_step(holder["state"], real)
        return losses

    return step, jnp.asarray, lambda out: float(out[0])
