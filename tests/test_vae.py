import keras
import numpy as np
import pytest

from kgen.models import VAEDecoder, VAEEncoder
from kgen.objectives import elbo
from kgen.trainers import VAE
from tests.helpers import to_numpy, weights_of

VARIANTS = {
    "vanilla": (False, False),
    "hourglass_encoder": (True, False),
    "hourglass_decoder": (False, True),
    "hourglass_both": (True, True),
}


def make_vae(variant="vanilla", shape=(28, 28, 1), likelihood="bernoulli", **kwargs):
    enc_hg, dec_hg = VARIANTS[variant]
    encoder = VAEEncoder(shape, latent_dim=4, widths=(4, 8), hourglass=enc_hg)
    decoder = VAEDecoder(shape, latent_dim=4, widths=(4, 8), hourglass=dec_hg, likelihood=likelihood)
    vae = VAE(encoder, decoder, seed=0, **kwargs)
    vae.compile(keras.optimizers.Adam(3e-3))
    return vae


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("shape, likelihood", [((28, 28, 1), "bernoulli"), ((32, 32, 3), "gaussian")])
def test_variant_shapes(variant, shape, likelihood):
    vae = make_vae(variant, shape, likelihood)
    x = np.random.default_rng(0).uniform(-1, 1, (2, *shape)).astype("float32")
    mean, log_var = vae.encode(x)
    assert tuple(mean.shape) == (2, 4) and tuple(log_var.shape) == (2, 4)
    params = vae.decoder(mean)
    assert tuple(params.shape) == (2, *shape[:2], shape[2] * (1 if likelihood == "bernoulli" else 2))
    recon = to_numpy(vae.reconstruct(x))
    assert recon.shape == (2, *shape) and np.abs(recon).max() <= 1.0


def test_shared_scale_decoder_learns_one_log_scale_per_channel(tmp_path):
    """The σ-VAE decoder: every pixel of a channel has the same log-scale, learned toward the error's size."""
    shape = (8, 8, 3)
    decoder = VAEDecoder(shape, latent_dim=4, widths=(4, 8), likelihood="gaussian", scale="shared")
    vae = VAE(VAEEncoder(shape, latent_dim=4, widths=(4, 8)), decoder, seed=0)
    vae.compile(keras.optimizers.Adam(3e-2))
    rng = np.random.default_rng(0)
    x = np.clip(rng.normal(0, 0.1, (64, *shape)), -1, 1).astype("float32")
    params = to_numpy(decoder(np.zeros((2, 4), "float32")))
    assert params.shape == (2, 8, 8, 6) and np.all(params[..., 3:] == 0.0)  # log-scale starts at 0
    history = vae.fit(x, batch_size=16, epochs=8, verbose=0).history["loss"]
    assert history[-1] < history[0], history
    log_scale = to_numpy(decoder.get_layer("log_scale").log_scale)
    # Targets within 0.1 of a mean: the fitted scale shrinks well below 1 (log < 0) on every channel.
    assert log_scale.shape == (3,) and np.all(log_scale < -0.3), log_scale
    params = to_numpy(decoder(np.ones((2, 4), "float32")))
    np.testing.assert_array_equal(params[..., 3:], np.broadcast_to(log_scale, (2, 8, 8, 3)))
    vae.save(tmp_path / "vae.keras")
    loaded = keras.saving.load_model(tmp_path / "vae.keras")
    assert loaded.decoder.scale == "shared"
    np.testing.assert_allclose(to_numpy(loaded.decoder(np.ones((2, 4), "float32"))), params, atol=1e-6)
    with pytest.raises(ValueError, match="scale must be 'per_pixel' or 'shared'"):
        VAEDecoder(shape, likelihood="gaussian", scale="global")


def test_elbo_terms_against_float64():
    rng = np.random.default_rng(1)
    mean, log_var = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    expected_kl = 0.5 * np.sum(np.exp(log_var) + mean**2 - 1 - log_var, axis=1)
    np.testing.assert_allclose(to_numpy(elbo.kl_standard_normal(mean.astype("float32"), log_var.astype("float32"))),
                               expected_kl, rtol=1e-5)
    x = (rng.uniform(size=(3, 5, 5, 1)) > 0.5).astype("float32")
    logits = rng.normal(size=x.shape).astype("float32") * 4
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    expected = -np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2, 3))
    np.testing.assert_allclose(to_numpy(elbo.bernoulli_nll(x, logits)), expected, rtol=1e-5)
    m, s = rng.normal(size=x.shape).astype("float32"), rng.normal(size=x.shape).astype("float32") * 0.3
    expected = np.sum(0.5 * np.log(2 * np.pi) + s + 0.5 * ((x - m) / np.exp(s)) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(to_numpy(elbo.gaussian_nll(x, m, s)), expected, rtol=1e-5)


def _digits(n=64, seed=0):
    """Two bright-stroke patterns, so a tiny VAE can learn them quickly."""
    rng = np.random.default_rng(seed)
    x = np.full((n, 28, 28, 1), -1.0, "float32")
    x[::2, 6:22, 12:16] = 1.0
    x[1::2, 12:16, 6:22] = 1.0
    return np.clip(x + rng.normal(0, 0.05, x.shape).astype("float32"), -1, 1)


@pytest.mark.parametrize("variant", ["vanilla", "hourglass_both"])
def test_short_training_reduces_the_loss_and_updates_weights(variant):
    vae = make_vae(variant)
    before = weights_of(vae)
    history = vae.fit(_digits(), batch_size=16, epochs=6, verbose=0)
    losses = history.history["neg_elbo"]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.7 * losses[0], losses
    changed = [not np.allclose(a, b) for a, b in zip(before, weights_of(vae))]
    assert sum(changed) >= len(vae.trainable_weights)


def test_kl_warmup_advances_on_every_backend():
    vae = make_vae(beta=2.0, kl_warmup_steps=8)
    history = vae.fit(_digits(32), batch_size=16, epochs=3, verbose=0)  # 2 steps per epoch
    # Keras' History holds each epoch's last step: steps 1, 3, 5 -> weights 2*1/8, 2*3/8, 2*5/8.
    np.testing.assert_allclose(history.history["kl_weight"], [0.25, 0.75, 1.25], rtol=1e-6)


def test_keras_round_trip(tmp_path):
    vae = make_vae("hourglass_decoder")
    vae.fit(_digits(32), batch_size=16, epochs=1, verbose=0)
    path = str(tmp_path / "vae.keras")
    vae.save(path)
    restored = keras.saving.load_model(path)
    x = _digits(4, seed=3)
    np.testing.assert_array_equal(to_numpy(restored.reconstruct(x)), to_numpy(vae.reconstruct(x)))
    assert restored.decoder.hourglass and not restored.encoder.hourglass


def test_bad_configuration_is_explained():
    with pytest.raises(ValueError, match="divisible by 2"):
        VAEEncoder((28, 28, 1), widths=(8, 16, 32))
    with pytest.raises(ValueError, match="likelihood must be"):
        VAEDecoder(likelihood="poisson")


def test_importance_weighted_nll_tightens_the_elbo():
    vae = make_vae()
    vae.fit(_digits(64), batch_size=16, epochs=3, verbose=0)
    x = _digits(32, seed=5)
    k1 = vae.importance_weighted_nll(x, num_samples=1, seed=0)
    k64 = vae.importance_weighted_nll(x, num_samples=64, seed=0)
    assert k1["n"] == 32 and k64["k"] == 64
    assert np.isfinite(k64["nll"]).all()
    assert k64["mean"] < k1["mean"]


def test_iwae_loss_is_the_k_sample_bound_computed_in_float64():
    from scipy.special import logsumexp
    from scipy.stats import norm

    k = 4
    vae = make_vae(iwae_samples=k, dynamic_binarization=False)
    images = np.where(_digits(3, seed=2) > 0, 1.0, -1.0).astype("float32")
    noise = np.random.default_rng(7).normal(size=(3 * k, 4)).astype("float32")
    vae.batch_random = lambda sample, shape, **kwargs: keras.ops.convert_to_tensor(noise)  # fixed latent noise
    loss, logs = vae.compute_phase_loss(None, images)

    mean, log_var = (to_numpy(a).astype(np.float64) for a in vae.encoder(images, training=True))
    mean, std = np.repeat(mean, k, axis=0), np.exp(0.5 * np.repeat(log_var, k, axis=0))
    latents = mean + std * noise
    logits = to_numpy(vae.decoder(latents.astype("float32"), training=True)).astype(np.float64)
    x = np.repeat(images > 0, k, axis=0)
    log_px = np.sum(np.where(x, -np.logaddexp(0, -logits), -np.logaddexp(0, logits)), axis=(1, 2, 3))
    log_w = log_px + norm.logpdf(latents).sum(1) - norm.logpdf(latents, mean, std).sum(1)
    want = -np.mean(logsumexp(log_w.reshape(3, k), axis=1) - np.log(k))
    np.testing.assert_allclose(float(to_numpy(loss)), want, rtol=1e-4)
    # Jensen, sample for sample: the k-sample bound is at least the mean of its one-sample bounds.
    assert float(to_numpy(loss)) <= -np.mean(log_w) + 1e-3
    np.testing.assert_allclose(float(to_numpy(logs["reconstruction"])), -np.mean(log_px), rtol=1e-4)
    with pytest.raises(ValueError, match="only with beta 1 and no KL warm-up"):
        make_vae(iwae_samples=2, beta=2.0)


def test_iwae_training_lowers_the_bound_and_round_trips(tmp_path):
    vae = make_vae(iwae_samples=3)
    history = vae.fit(_digits(), batch_size=16, epochs=6, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < 0.8 * losses[0], losses
    vae.save(str(tmp_path / "vae.keras"))
    assert keras.saving.load_model(str(tmp_path / "vae.keras")).iwae_samples == 3


def test_stochastic_binarisation_follows_pixel_intensity():
    from kgen.trainers import binarize_stochastically

    x = np.full((200, 28, 28, 1), 0.5, "float32")  # intensity 0.75 in [0, 1]
    b = binarize_stochastically(x, seed=3)
    assert set(np.unique(b)) == {-1.0, 1.0}
    assert abs((b > 0).mean() - 0.75) < 0.01
    np.testing.assert_array_equal(b, binarize_stochastically(x, seed=3))
    assert (binarize_stochastically(np.ones((2, 4, 4, 1)), seed=0) == 1).all()
