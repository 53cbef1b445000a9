"""DCGAN in plain TensorFlow: tf.Variables, tf.nn ops, GradientTape, hand-written Adam."""

import tensorflow as tf


class _Net(tf.Module):
    def var(self, shape, mean=0.0, zero=False):
        init = tf.zeros(shape) if zero else mean + 0.02 * tf.random.normal(shape)
        return tf.Variable(init)


def _bn(x, gamma, beta, axes):
    mean, var = tf.nn.moments(x, axes)
    return tf.nn.batch_normalization(x, mean, var, beta, gamma, 1e-3)


class Generator(_Net):
    def __init__(self, latent=100, width=64):
        super().__init__()
        c = 2 * width
        self.c, self.width = c, width
        self.project = self.var((latent, 7 * 7 * c))
        self.g0, self.b0 = self.var((7 * 7 * c,), 1.0), self.var((7 * 7 * c,), zero=True)
        self.up = self.var((4, 4, width, c))
        self.g1, self.b1 = self.var((width,), 1.0), self.var((width,), zero=True)
        self.out = self.var((4, 4, 1, width))
        self.out_b = self.var((1,), zero=True)

    def __call__(self, z):
        n = tf.shape(z)[0]
        x = tf.nn.relu(_bn(z @ self.project, self.g0, self.b0, [0]))
        x = tf.reshape(x, (n, 7, 7, self.c))
        x = tf.nn.conv2d_transpose(x, self.up, (n, 14, 14, self.width), 2, "SAME")
        x = tf.nn.relu(_bn(x, self.g1, self.b1, [0, 1, 2]))
        x = tf.nn.conv2d_transpose(x, self.out, (n, 28, 28, 1), 2, "SAME") + self.out_b
        return tf.tanh(x)


class Discriminator(_Net):
    def __init__(self, width=64):
        super().__init__()
        c = 2 * width
        self.c0, self.c0_b = self.var((4, 4, 1, width)), self.var((width,), zero=True)
        self.c1 = self.var((4, 4, width, c))
        self.g1, self.b1 = self.var((c,), 1.0), self.var((c,), zero=True)
        self.logit, self.logit_b = self.var((7 * 7 * c, 1)), self.var((1,), zero=True)

    def __call__(self, x):
        x = tf.nn.leaky_relu(tf.nn.conv2d(x, self.c0, 2, "SAME") + self.c0_b, 0.2)
        x = tf.nn.leaky_relu(_bn(tf.nn.conv2d(x, self.c1, 2, "SAME"), self.g1, self.b1, [0, 1, 2]), 0.2)
        return tf.reshape(x, (tf.shape(x)[0], -1)) @ self.logit + self.logit_b


class Adam:
    def __init__(self, variables, lr=2e-4, b1=0.5, b2=0.999, eps=1e-7):
        self.vars, self.lr, self.b1, self.b2, self.eps = variables, lr, b1, b2, eps
        self.m = [tf.Variable(tf.zeros_like(v)) for v in variables]
        self.v = [tf.Variable(tf.zeros_like(v)) for v in variables]
        self.t = tf.Variable(0.0)

    def apply(self, grads):
        self.t.assign_add(1.0)
        scale = self.lr * tf.sqrt(1 - self.b2**self.t) / (1 - self.b1**self.t)
        for var, g, m, v in zip(self.vars, grads, self.m, self.v):
            m.assign(self.b1 * m + (1 - self.b1) * g)
            v.assign(self.b2 * v + (1 - self.b2) * g * g)
            var.assign_sub(scale * m / (tf.sqrt(v) + self.eps))


def _bce(logits, target):
    return tf.reduce_mean(target * tf.nn.softplus(-logits) + (1 - target) * tf.nn.softplus(logits))


def make_step(batch_size, latent=100, real_label=0.9):
    tf.random.set_seed(0)
    g, d = Generator(latent), Discriminator()
    opt_g, opt_d = Adam(g.trainable_variables), Adam(d.trainable_variables)

    @tf.function
    def step(real):
        z = tf.random.normal((batch_size, latent))
        fake = g(z)
        with tf.GradientTape() as tape:
            d_loss = _bce(d(real), real_label) + _bce(d(fake), 0.0)
        opt_d.apply(tape.gradient(d_loss, d.trainable_variables))
        with tf.GradientTape() as tape:
            g_loss = _bce(d(g(z)), 1.0)
        opt_g.apply(tape.gradient(g_loss, g.trainable_variables))
        return d_loss, g_loss

    return step, tf.convert_to_tensor, lambda out: float(out[0])
