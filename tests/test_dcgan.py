import json
import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest

from kgen.models import DCGANDiscriminator, DCGANGenerator
from kgen.runs import RunRecorder
from kgen.trainers import DCGAN
from tests.helpers import to_numpy, weights_of

SHAPE = (28, 28, 1)


def make_gan(d_lr=2e-4, g_lr=2e-4, seed=0, ema_decay=None):
    g = DCGANGenerator(SHAPE, latent_dim=16, width=8)
    d = DCGANDiscriminator(SHAPE, width=8)
    gan = DCGAN(g, d, seed=seed, ema_decay=ema_decay)
    gan.compile(
        d_optimizer=keras.optimizers.Adam(d_lr, beta_1=0.5),
        g_optimizer=keras.optimizers.Adam(g_lr, beta_1=0.5),
    )
    return gan


def toy_real(n, seed=0):
    """A 'real' distribution far from an untrained generator: bright squares."""
    rng = np.random.default_rng(seed)
    x = np.full((n, *SHAPE), -0.9, "float32")
    x[:, 8:20, 8:20] = rng.uniform(0.6, 1.0, (n, 1, 1, 1))
    return x


def test_train_steps_update_both_networks_with_finite_losses():
    gan = make_gan()
    g0, d0 = weights_of(gan.generator), weights_of(gan.discriminator)
    history = gan.fit(toy_real(64), batch_size=16, epochs=1, verbose=0)
    for key in ("d_loss", "d_loss_real", "d_loss_fake", "g_loss"):
        assert np.isfinite(history.history[key]).all(), key
    g_changed = [not np.allclose(a, b) for a, b in zip(g0, weights_of(gan.generator))]
    d_changed = [not np.allclose(a, b) for a, b in zip(d0, weights_of(gan.discriminator))]
    assert sum(g_changed) >= len(gan.generator.trainable_weights)
    assert sum(d_changed) >= len(gan.discriminator.trainable_weights)
    steps = [int(to_numpy(o.iterations)) for o in gan.optimizer.optimizers]
    assert steps == [4, 4]


def test_ttur_gives_the_discriminator_its_own_learning_rate():
    from kgen.train.dcgan import DCGANConfig, optimizers

    gan = DCGAN(DCGANGenerator(SHAPE, latent_dim=16, width=8), DCGANDiscriminator(SHAPE, width=8), seed=0)
    gan.compile(**optimizers(DCGANConfig(learning_rate=1e-4, discriminator_learning_rate=4e-4)))
    before = weights_of(gan.discriminator)[0]
    gan.fit(toy_real(16), batch_size=16, epochs=1, verbose=0)
    d_optimizer, g_optimizer = gan.optimizer.optimizers  # the phases' order: discriminator, then generator
    assert float(to_numpy(d_optimizer.learning_rate)) == pytest.approx(4e-4)
    assert float(to_numpy(g_optimizer.learning_rate)) == pytest.approx(1e-4)
    # Adam's first step moves each weight by about its learning rate: the discriminator's by 4e-4.
    assert np.abs(weights_of(gan.discriminator)[0] - before).max() == pytest.approx(4e-4, rel=0.05)
    default = optimizers(DCGANConfig(learning_rate=3e-4))
    assert [float(to_numpy(o.learning_rate)) for o in default.values()] == pytest.approx([3e-4, 3e-4])


def test_discriminator_learns_to_separate_real_from_generated():
    gan = make_gan(d_lr=1e-3, g_lr=0.0)  # generator frozen: a fixed fake distribution
    real = toy_real(256)
    gan.fit(real, batch_size=32, epochs=2, verbose=0)
    latents = keras.random.normal((64, 16), seed=5)
    fake = gan.generate(latents)
    real_p = to_numpy(keras.ops.sigmoid(gan.discriminator(toy_real(64, seed=9))))
    fake_p = to_numpy(keras.ops.sigmoid(gan.discriminator(fake)))
    accuracy = (np.mean(real_p > 0.5) + np.mean(fake_p < 0.5)) / 2
    assert accuracy > 0.95, (real_p.mean(), fake_p.mean())


def test_checkpoint_reloads_with_identical_outputs(tmp_path):
    gan = make_gan()
    gan.fit(toy_real(32), batch_size=16, epochs=1, verbose=0)
    path = str(tmp_path / "gan.keras")
    gan.save(path)
    restored = keras.saving.load_model(path)
    z = np.random.default_rng(0).normal(size=(4, 16)).astype("float32")
    np.testing.assert_array_equal(to_numpy(restored.generate(z)), to_numpy(gan.generate(z)))
    images = to_numpy(gan.generate(z))
    np.testing.assert_array_equal(
        to_numpy(restored.discriminator(images)), to_numpy(gan.discriminator(images))
    )


def test_the_generators_ema_follows_its_warmed_up_decay_and_draws_the_samples():
    gan = make_gan(ema_decay=0.999)
    start = weights_of(gan.generator)
    np.testing.assert_array_equal(weights_of(gan.ema_generator)[0], start[0])
    gan.fit(toy_real(16), batch_size=16, epochs=1, verbose=0)  # one step: decay min(0.999, 1 / 10)
    after = weights_of(gan.generator)
    for ema, old, new in zip(weights_of(gan.ema_generator), start, after):
        np.testing.assert_allclose(ema, 0.1 * old + 0.9 * new, rtol=1e-5, atol=1e-6)
    assert not np.allclose(weights_of(gan.ema_generator)[0], after[0])
    z = np.random.default_rng(0).normal(size=(4, 16)).astype("float32")
    np.testing.assert_array_equal(to_numpy(gan.generate(z)), to_numpy(gan.ema_generator(z, training=False)))
    network, metadata = gan.inference_parts()["generator"]()
    assert metadata["weights"] == "ema"
    np.testing.assert_allclose(to_numpy(network(z)), to_numpy(gan.ema_generator(z, training=False)), atol=1e-6)
    assert "weights" not in make_gan().inference_parts()["generator"]()[1]


def test_an_ema_gan_reloads_and_resumes_from_a_checkpoint_kept_without_one(tmp_path):
    gan = make_gan(ema_decay=0.99)
    gan.fit(toy_real(32), batch_size=16, epochs=1, verbose=0)
    path = str(tmp_path / "ema.keras")
    gan.save(path)
    restored = keras.saving.load_model(path)
    assert restored.ema_decay == 0.99
    for a, b in zip(weights_of(restored.ema_generator), weights_of(gan.ema_generator)):
        np.testing.assert_array_equal(a, b)
    # A run kept without an EMA continues with one (--ema-decay on resume): everything loads, the EMA starts at G.
    plain = make_gan()
    plain.fit(toy_real(32), batch_size=16, epochs=1, verbose=0)
    plain.save(str(tmp_path / "plain.keras"))
    averaged = make_gan(ema_decay=0.99)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        averaged.load_weights(str(tmp_path / "plain.keras"))
    assert not [w for w in caught if "Skipping" in str(w.message)], [str(w.message)[:100] for w in caught]
    for a, b, c in zip(weights_of(averaged.generator), weights_of(plain.generator), weights_of(averaged.ema_generator)):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(c, b)
    for a, b in zip(weights_of(averaged.discriminator), weights_of(plain.discriminator)):
        np.testing.assert_array_equal(a, b)
    assert [int(to_numpy(o.iterations)) for o in averaged.optimizer.optimizers] == [2, 2]
    averaged.fit(toy_real(16), batch_size=16, epochs=1, verbose=0)
    assert [int(to_numpy(o.iterations)) for o in averaged.optimizer.optimizers] == [3, 3]
    # Other mismatches still fail.
    other = DCGAN(DCGANGenerator(SHAPE, latent_dim=16, width=16), DCGANDiscriminator(SHAPE, width=8), ema_decay=0.9)
    other.compile()
    with pytest.raises(ValueError):
        other.load_weights(str(tmp_path / "plain.keras"))


def test_a_warm_start_from_an_export_unfolds_its_batch_norms_into_the_same_function(tmp_path):
    from kgen.export import export_onnx
    from kgen.export.warm_start import warm_start

    source = make_gan(ema_decay=0.9)
    source.fit(toy_real(64), batch_size=16, epochs=2, verbose=0)
    source.save(str(tmp_path / "source.keras"))
    path, critic = str(tmp_path / "source.onnx"), str(tmp_path / "source_discriminator.onnx")
    export_onnx(str(tmp_path / "source.keras"), output=path, dataset="synthetic")
    export_onnx(str(tmp_path / "source.keras"), part="discriminator", output=critic, dataset="synthetic")
    gan = make_gan(seed=1, ema_decay=0.9)  # its networks built, another initialisation
    gan.fit(toy_real(16), batch_size=16, epochs=1, verbose=0)
    # tf2onnx folds each batch norm into x * scale + shift: the four weights are rebuilt from those.
    # Both networks come back (the generator's EMA and the discriminator), so the GAN continues as it was.
    assert warm_start(gan, f"{path},{critic}").count("differ by at most") == 2
    z = np.random.default_rng(0).normal(size=(256, 16)).astype("float32")
    want = to_numpy(source.ema_generator(z, training=False))
    for network in (gan.ema_generator, gan.generator):
        np.testing.assert_allclose(to_numpy(network(z, training=False)), want, atol=2e-5)
    images = toy_real(32, seed=3)
    np.testing.assert_allclose(to_numpy(gan.discriminator(images, training=False)),
                               to_numpy(source.discriminator(images, training=False)), atol=1e-4)
    # The discriminator's file draws nothing: sampling from it is refused in one line.
    refused = subprocess.run([sys.executable, "-m", "kgen.infer", "sample", "--model", critic, "--output-dir",
                              str(tmp_path / "out")], capture_output=True, text=True, cwd=str(tmp_path))
    assert refused.returncode == 2 and "is a GAN discriminator, which draws no images" in refused.stderr
    assert not (tmp_path / "out").exists()
    # Training mode (batch statistics) continues from that function: its moving statistics are
    # those of the prior's latents, not zeros and ones, so a batch of them normalises alike.
    trained_mode = to_numpy(gan.generator(z, training=True))
    assert np.abs(trained_mode - want).mean() < 0.1 * np.abs(want - want.mean()).mean()


def test_run_folder_and_resume_continue_from_saved_step(tmp_path):
    run = str(tmp_path / "run")
    z = np.random.default_rng(0).normal(size=(4, 16)).astype("float32")
    data = toy_real(64)

    gan = make_gan()
    recorder = RunRecorder(run, sample_fn=lambda m: m.generate(z), batch_size=16)
    gan.fit(data, batch_size=16, epochs=1, verbose=0, callbacks=[recorder])
    for name in ("history_steps.csv", "history_epochs.csv", "history.json", "losses.png",
                 "metrics.png", "summary.json", "summary.md", "state.json",
                 "checkpoints/last.keras", "samples/epoch_001.png"):
        assert os.path.isfile(os.path.join(run, name)), name
    saved_weights = weights_of(gan)

    # A new process would rebuild the same model and restore.
    keras.utils.set_random_seed(123)
    resumed = make_gan()
    recorder = RunRecorder(run, sample_fn=lambda m: m.generate(z), batch_size=16)
    assert recorder.restore(resumed) == 1
    assert recorder.step == 4
    for a, b in zip(saved_weights, weights_of(resumed)):
        np.testing.assert_array_equal(a, b)
    assert [int(to_numpy(o.iterations)) for o in resumed.optimizer.optimizers] == [4, 4]

    resumed.fit(data, batch_size=16, epochs=2, initial_epoch=1, verbose=0, callbacks=[recorder])
    with open(os.path.join(run, "history.json")) as f:
        history = json.load(f)
    assert [r["step"] for r in history["steps"]] == list(range(1, 9))
    assert [r["epoch"] for r in history["epochs"]] == [1, 2]
    with open(os.path.join(run, "summary.json")) as f:
        summary = json.load(f)
    g_losses = [r["g_loss"] for r in history["steps"]]
    assert summary["losses"]["g_loss"]["min_step_value"] == min(g_losses)
    assert summary["losses"]["g_loss"]["min_step"] == 1 + int(np.argmin(g_losses))
    assert len(summary["epoch_time_s"]) == 2
    assert set(summary["losses"]) == {"d_loss", "d_loss_real", "d_loss_fake", "g_loss"}


def test_recorder_keeps_epoch_only_logs_like_validation(tmp_path):
    from kgen.models import ImageClassifier

    model = ImageClassifier((28, 28, 1), 3, widths=(4,), feature_dim=8, translate=0.0)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    x, y = toy_real(32), np.arange(32) % 3
    recorder = RunRecorder(str(tmp_path))
    model.fit(x, y, batch_size=16, epochs=2, validation_data=(x, y), verbose=0, callbacks=[recorder])
    summary = recorder.summary()
    assert summary["losses"]["val_loss"]["min_step"] is None
    assert summary["losses"]["val_loss"]["min_epoch"] in (1, 2)
    assert "val_accuracy" in recorder.epoch_rows[-1]
    assert "(epoch only)" in (tmp_path / "summary.md").read_text()
