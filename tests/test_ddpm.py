"""UNet and DDPM trainer under the active backend."""

import keras
import numpy as np
import pytest

from kgen.models import UNet
from kgen.objectives import denoising
from kgen.trainers import DDPM
from tests.helpers import to_numpy, weights_of


def tiny_unet(shape=(8, 8, 1), num_classes=10):
    return UNet(shape, widths=(8, 16), num_res_blocks=1, attention_resolution=4, num_classes=num_classes)


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_unet_shapes_and_class_conditioning(shape):
    unet = UNet(shape, widths=(8, 16, 16), attention_resolution=8, num_classes=10)
    out_layer = unet.get_layer("out")
    rng = np.random.default_rng(0)
    out_layer.set_weights([rng.normal(0, 0.1, w.shape).astype("float32") for w in out_layer.get_weights()])
    x = rng.standard_normal((2, *shape)).astype("float32")
    t = np.array([3, 3], "int32")
    a = to_numpy(unet([x, t, np.array([1, 1], "int32")]))
    b = to_numpy(unet([x, t, np.array([1, 10], "int32")]))  # 10: the null class
    assert a.shape == (2, *shape) and a.dtype == np.float32
    np.testing.assert_allclose(a[0], b[0], atol=1e-5)  # examples are independent
    assert np.abs(a[1] - b[1]).max() > 1e-4  # the label changes the output
    c = to_numpy(unet([x, np.array([3, 500], "int32"), np.array([1, 1], "int32")]))
    assert np.abs(a[1] - c[1]).max() > 1e-4  # so does the timestep


def test_unet_rejects_sizes_it_cannot_halve():
    with pytest.raises(ValueError, match="divisible by 2"):
        UNet((28, 28, 1), widths=(8, 16, 32, 64))


def fixed_loss(ddpm, x, y, seed=0):
    """The denoising loss at fixed t and noise (the trainer's draws are random)."""
    rng = np.random.default_rng(seed)
    t = rng.integers(0, ddpm.num_train_timesteps, len(x)).astype("int32")
    noise = rng.standard_normal(x.shape).astype("float32")
    table = ddpm.schedule.alphas_cumprod
    x_t = denoising.add_noise(x, noise, t, table)
    pred = ddpm.denoiser([x_t, keras.ops.convert_to_tensor(t), keras.ops.convert_to_tensor(y)], training=False)
    return float(to_numpy(denoising.denoising_loss(pred, denoising.regression_target(x, noise, t, table))))


def data(n=64):
    rng = np.random.default_rng(0)
    y = (np.arange(n) % 10).astype("int32")
    # A class-dependent pattern the network can learn to denoise.
    x = np.tanh(rng.normal(0, 0.3, (n, 8, 8, 1)) + (y[:, None, None, None] / 5.0 - 1.0)).astype("float32")
    return x, y


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_short_training_reduces_the_loss_and_moves_the_ema(prediction_type):
    keras.utils.set_random_seed(0)
    x, y = data()
    ddpm = DDPM(tiny_unet(), num_train_timesteps=50, prediction_type=prediction_type, ema_decay=0.9, seed=0)
    ddpm.compile(keras.optimizers.Adam(3e-3))
    before = np.mean([fixed_loss(ddpm, x, y, s) for s in range(3)])
    ema_before = weights_of(ddpm.ema_denoiser)
    history = ddpm.fit(x, y, batch_size=16, epochs=5, verbose=0)
    after = np.mean([fixed_loss(ddpm, x, y, s) for s in range(3)])
    assert after < 0.8 * before, (before, after)
    assert to_numpy(ddpm.steps_seen) == 20
    assert history.history["loss"][-1] > 0
    moved = max(np.abs(a - b).max() for a, b in zip(ema_before, weights_of(ddpm.ema_denoiser)))
    assert moved > 1e-3
    # The EMA trails the raw weights, it does not equal them.
    assert max(np.abs(a - b).max() for a, b in zip(weights_of(ddpm.denoiser), weights_of(ddpm.ema_denoiser))) > 1e-6


def test_ema_follows_the_warmed_up_decay():
    ddpm = DDPM(tiny_unet(), num_train_timesteps=20, ema_decay=0.5, seed=0)
    ddpm.compile(keras.optimizers.Adam(1e-2))
    x, y = data(16)
    w0 = weights_of(ddpm.denoiser)
    ddpm.fit(x, y, batch_size=16, epochs=1, verbose=0)
    w1 = weights_of(ddpm.denoiser)
    # After step n (from 0) the EMA blends in the just-updated weights with
    # decay min(0.5, (1 + n) / (10 + n)): 0.1, then 2/11.
    ema1 = [0.1 * a + 0.9 * b for a, b in zip(w0, w1)]
    for e, want in zip(weights_of(ddpm.ema_denoiser), ema1):
        np.testing.assert_allclose(e, want, atol=1e-5)
    ddpm.fit(x, y, batch_size=16, epochs=1, verbose=0)
    w2 = weights_of(ddpm.denoiser)
    d = 2.0 / 11.0
    for e, a, b in zip(weights_of(ddpm.ema_denoiser), ema1, w2):
        np.testing.assert_allclose(e, d * a + (1 - d) * b, atol=1e-5)
    assert ddpm.null_label == 10


def test_sampling_denoising_and_keras_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    x, y = data(32)
    ddpm = DDPM(tiny_unet(), num_train_timesteps=30, seed=0)
    ddpm.compile()
    ddpm.fit(x, y, batch_size=16, epochs=1, verbose=0)
    samples = ddpm.sample(labels=np.arange(10), num_steps=5, guidance_scale=2.0, seed=1)
    assert samples.shape == (10, 8, 8, 1) and samples.min() >= -1 and samples.max() <= 1
    np.testing.assert_array_equal(samples, ddpm.sample(labels=np.arange(10), num_steps=5, guidance_scale=2.0, seed=1))
    noised, denoised = ddpm.denoise(x[:3], t=0)
    np.testing.assert_array_equal(denoised, x[:3])
    noised, denoised = ddpm.denoise(x[:3], t=5, seed=2)
    assert np.abs(noised - x[:3]).max() > 0 and denoised.shape == x[:3].shape
    path = str(tmp_path / "ddpm.keras")
    ddpm.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, DDPM) and loaded.beta_schedule == ddpm.beta_schedule
    for a, b in zip(weights_of(ddpm.ema_denoiser), weights_of(loaded.ema_denoiser)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(
        loaded.sample(labels=np.arange(10), num_steps=5, guidance_scale=2.0, seed=1), samples, atol=1e-5)
    with pytest.raises(ValueError, match="labels must be in 0..9"):
        ddpm.sample(labels=[11])
    with pytest.raises(ValueError, match="images must be"):
        ddpm.denoise(np.zeros((1, 4, 4, 1), "float32"), t=3)
