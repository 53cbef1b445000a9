"""Training that outlives a sitting: mixed precision, time budgets, interval checkpoints, resume,
warm starts, divergence; and the faster-converging diffusion options (Min-SNR, AdaGN)."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import kgen.trainers  # noqa: F401  (registers kgen classes for load_model)
from kgen.callbacks import GeneralizationProbe
from kgen.export.warm_start import warm_start, warm_starter
from kgen.models import UNet, VAEDecoder, VAEEncoder
from kgen.objectives import denoising
from kgen.runs import RunFolder, RunRecorder, TrainingDiverged, fit_resumable
from kgen.schedulers import NoiseSchedule
from kgen.trainers import DDPM, VAE
from tests import helpers
from tests.helpers import to_numpy, weights_of
from tests.test_ddpm import data as pattern_data  # a class-dependent pattern a tiny UNet learns
from tests.test_recipes import ROOT, run

BACKEND = keras.backend.backend()
# Backend-independent mechanics that are slow (subprocesses, hundreds of steps) run once.
one_backend = helpers.once


def tiny_ddpm(adaptive_norm=False, snr_gamma=None, seed=0):
    unet = UNet((8, 8, 1), widths=(8, 16), attention_resolution=4, num_classes=10, adaptive_norm=adaptive_norm)
    return DDPM(unet, num_train_timesteps=50, ema_decay=0.9, seed=seed, snr_gamma=snr_gamma)


# Min-SNR-gamma and AdaGN ------------------------------------------------------------------


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_min_snr_weights_match_the_paper_in_float64(prediction_type):
    schedule = NoiseSchedule(1000, "cosine")
    t = np.array([0, 10, 100, 500, 900, 999])
    ab = schedule.alphas_cumprod[t]
    snr = ab / (1.0 - ab)  # float64, independent of the keras.ops code
    want = np.minimum(snr, 5.0) / (snr if prediction_type == "epsilon" else snr + 1.0)
    got = to_numpy(denoising.snr_loss_weight(t, schedule.alphas_cumprod, prediction_type, 5.0))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert got[0] < 0.01 and got[-1] == pytest.approx(1.0 if prediction_type == "epsilon" else want[-1])
    np.testing.assert_array_equal(to_numpy(denoising.snr_loss_weight(t, schedule.alphas_cumprod)), np.ones(6))


def test_weighted_loss_is_the_weighted_mean_of_per_example_errors():
    rng = np.random.default_rng(0)
    pred, target = rng.normal(size=(2, 4, 3, 3, 2)).astype("float32")
    weights = np.array([0.0, 1.0, 2.0, 0.5], "float32")
    per_example = ((pred.astype(np.float64) - target) ** 2).reshape(4, -1).mean(axis=1)
    got = float(to_numpy(denoising.weighted_denoising_loss(pred, target, weights)))
    assert got == pytest.approx(float((weights * per_example).mean()), rel=1e-5)
    unweighted = float(to_numpy(denoising.weighted_denoising_loss(pred, target, np.ones(4, "float32"))))
    assert unweighted == pytest.approx(float(to_numpy(denoising.denoising_loss(pred, target))), rel=1e-6)


def test_adaptive_norm_unet_conditions_by_scale_and_shift_and_round_trips(tmp_path):
    unet = UNet((8, 8, 3), widths=(8, 16), attention_resolution=4, num_classes=10, adaptive_norm=True)
    plain = UNet((8, 8, 3), widths=(8, 16), attention_resolution=4, num_classes=10)
    # Each block's single embedding projection becomes two (scale, shift) and
    # its second norm loses its own affine parameters.
    names = {layer.name for layer in unet.layers}
    assert "down0_res0_emb_scale" in names and "down0_res0_emb" not in names
    assert unet.count_params() > plain.count_params()
    out = unet.get_layer("out")
    rng = np.random.default_rng(0)
    out.set_weights([rng.normal(0, 0.1, w.shape).astype("float32") for w in out.get_weights()])
    x = rng.standard_normal((2, 8, 8, 3)).astype("float32")
    a = to_numpy(unet([x, np.array([5, 5], "int32"), np.array([1, 2], "int32")]))
    b = to_numpy(unet([x, np.array([5, 5], "int32"), np.array([1, 10], "int32")]))
    np.testing.assert_allclose(a[0], b[0], atol=1e-5)
    assert np.abs(a[1] - b[1]).max() > 1e-4
    path = str(tmp_path / "u.keras")
    unet.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.adaptive_norm is True
    np.testing.assert_allclose(to_numpy(loaded([x, np.array([5, 5], "int32"), np.array([1, 2], "int32")])), a,
                               atol=1e-6)


def test_min_snr_and_adaptive_norm_train():
    x, y = pattern_data()
    ddpm = tiny_ddpm(adaptive_norm=True, snr_gamma=5.0)
    ddpm.compile(keras.optimizers.Adam(3e-3))
    history = ddpm.fit(x, y, batch_size=16, epochs=6, verbose=0).history["loss"]
    assert history[-1] < 0.7 * history[0], history
    assert ddpm.get_config()["snr_gamma"] == 5.0
    with pytest.raises(ValueError, match="snr_gamma must be a positive number"):
        tiny_ddpm(snr_gamma=0)


# Mixed precision ----------------------------------------------------------------------------


def test_mixed_bfloat16_ddpm_trains_keeps_float32_state_and_exports_float32(tmp_path):
    keras.config.set_dtype_policy("mixed_bfloat16")
    x, y = pattern_data()
    ddpm = tiny_ddpm(adaptive_norm=True, snr_gamma=5.0)
    ddpm.compile(keras.optimizers.Adam(3e-3))
    conv = ddpm.denoiser.get_layer("down0_res0_conv1")
    assert conv.compute_dtype == "bfloat16" and conv.kernel.dtype == "float32"
    assert ddpm.denoiser.get_layer("out").compute_dtype == "float32"
    history = ddpm.fit(x, y, batch_size=16, epochs=6, verbose=0).history["loss"]
    assert np.isfinite(history).all() and history[-1] < 0.8 * history[0], history
    assert all(v.dtype == "float32" for v in ddpm.weights)
    assert all(v.dtype == "float32" for v in ddpm.optimizer.variables if "iteration" not in v.path)
    path = str(tmp_path / "mixed.keras")
    ddpm.save(path)

    # A checkpoint does not pin the policy: loaded under float32, it computes in float32.
    keras.config.set_dtype_policy("float32")
    loaded = keras.saving.load_model(path)
    assert all(layer.compute_dtype == "float32" for layer in loaded.ema_denoiser.layers)
    for a, b in zip(weights_of(ddpm.ema_denoiser), weights_of(loaded.ema_denoiser)):
        np.testing.assert_array_equal(a, b)
    inputs = [x[:4], np.full(4, 20, "int32"), y[:4]]
    full = to_numpy(loaded.ema_denoiser(inputs))
    half = to_numpy(ddpm.ema_denoiser(inputs))  # the same weights in bfloat16 arithmetic
    assert full.dtype == np.float32 and np.abs(full - half).max() < 0.05 * np.abs(full).max() + 1e-3

    if BACKEND != "tensorflow":
        return  # export runs under TensorFlow whatever the backend; checked once
    from kgen.export import export_onnx

    result = export_onnx(path, output=str(tmp_path / "mixed.onnx"), dataset="synthetic")
    assert result["max_abs_error"] < 1e-4
    import onnx

    graph = onnx.load(str(tmp_path / "mixed.onnx")).graph
    assert all(init.data_type == onnx.TensorProto.FLOAT for init in graph.initializer
               if init.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.BFLOAT16, onnx.TensorProto.FLOAT16))


def test_mixed_bfloat16_vae_trains():
    keras.config.set_dtype_policy("mixed_bfloat16")
    rng = np.random.default_rng(0)
    x = np.clip(rng.normal(0, 0.5, (64, 8, 8, 3)), -1, 1).astype("float32")
    vae = VAE(VAEEncoder((8, 8, 3), 4, (8, 16)), VAEDecoder((8, 8, 3), 4, (8, 16), likelihood="gaussian"), seed=0)
    vae.compile(keras.optimizers.Adam(3e-3))
    history = vae.fit(x, batch_size=16, epochs=5, verbose=0).history["loss"]
    assert np.isfinite(history).all() and history[-1] < history[0], history


def test_bfloat16_policy_warns_on_a_cpu_without_bfloat16_instructions(tmp_path, monkeypatch, capsys):
    import types

    from kgen.runs import options as cli

    flags = {"zen3": "flags\t\t: fpu sse2 avx avx2 fma", "sapphire": "flags\t\t: avx2 avx512f avx512_bf16 amx_bf16",
             "arm": "Features\t: fp asimd bf16 i8mm", "empty": "processor\t: 0"}
    for name, text in flags.items():
        (tmp_path / name).write_text(text + "\n")
    found = {name: cli.cpu_bfloat16_support(str(tmp_path / name)) for name in flags}
    assert found == {"zen3": False, "sapphire": True, "arm": True, "empty": None}
    assert cli.cpu_bfloat16_support(str(tmp_path / "missing")) is None

    for support, policy, warned in [(False, "mixed_bfloat16", True), (True, "mixed_bfloat16", False),
                                    (None, "mixed_bfloat16", False), (False, "float32", False)]:
        monkeypatch.setattr(cli, "cpu_bfloat16_support", lambda support=support: support)
        cli.apply_training_options(types.SimpleNamespace(dtype_policy=policy))
        assert keras.config.dtype_policy().name == policy
        assert ("emulated" in capsys.readouterr().err) is warned, (support, policy)


FAULTS_OF_REALLOCATING = """
import resource, sys
import numpy as np
from kgen.utils.allocator import tune_malloc
if sys.argv[1] == "tuned":
    assert tune_malloc()
faults = []
for _ in range(3):  # allocate and free 128 MiB in 4 MiB blocks, as a training step does its activations
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    blocks = [np.ones(4 << 20, np.uint8) for _ in range(32)]
    del blocks
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(faults)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or not os.confstr("CS_GNU_LIBC_VERSION"),
                    reason="glibc's malloc settings")
def test_tuned_malloc_reuses_freed_memory_and_the_torch_recipes_apply_it(monkeypatch):
    import types

    from kgen.runs import options as cli
    from kgen.utils import allocator

    faults = {}
    for mode in ("default", "tuned"):  # fresh processes: the setting is process-wide and lasting
        out = subprocess.run([sys.executable, "-c", FAULTS_OF_REALLOCATING, mode], capture_output=True, text=True,
                             check=True, cwd=ROOT)
        faults[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    pages = 128 * 256  # 128 MiB of 4 KiB pages
    # By default glibc hands the freed blocks back and every round faults them in again (at least once
    # per block, even with 2 MiB transparent huge pages); tuned, only the first round does.
    assert min(faults["default"][1:]) >= 32 and min(faults["default"][1:]) > 10 * max(faults["tuned"][1:]), faults
    assert max(faults["tuned"][1:]) < pages // 100, faults

    calls = []
    monkeypatch.setattr(allocator, "tune_malloc", lambda: calls.append(1) or True)
    for env, expected in (("1", keras.backend.backend() == "torch"), ("0", False)):
        monkeypatch.setenv("KGEN_TUNE_MALLOC", env)
        calls.clear()
        cli.apply_training_options(types.SimpleNamespace(dtype_policy="float32"))
        assert bool(calls) is expected, (env, keras.backend.backend())


# Run folders: time budget, interval checkpoints, exact resume, divergence ----------------------


def stream_dataset(n=48, batch=8):
    x, y = pattern_data(n)
    return tf.data.Dataset.from_tensor_slices((x, y)).shuffle(n, seed=0, reshuffle_each_iteration=True).batch(
        batch, drop_remainder=True)


def train_in_chunks(run_dir, budgets, epochs=2):
    """Trains a fresh tiny DDPM per chunk (as a new process would) on the same run folder."""
    for budget in budgets:
        keras.utils.set_random_seed(0)
        ddpm = tiny_ddpm()
        ddpm.compile(keras.optimizers.Adam(3e-3))
        recorder = RunRecorder(str(run_dir), batch_size=8, checkpoint_every=None, time_budget=budget)
        fit_resumable(ddpm, stream_dataset(), recorder, epochs, "test run")
    return ddpm, recorder


def test_a_run_split_by_time_budgets_equals_the_uninterrupted_run(tmp_path):
    whole, whole_recorder = train_in_chunks(tmp_path / "whole", [None])
    # A budget of ~0 stops after the first step of a chunk: 1 + the rest, resumed mid-epoch.
    split, split_recorder = train_in_chunks(tmp_path / "split", [1e-9, None])
    assert split_recorder.step == whole_recorder.step == 12
    with open(tmp_path / "split" / "chunks.json") as f:
        chunks = json.load(f)
    assert [(c["step_start"], c["step_end"]) for c in chunks] == [(0, 1), (1, 12)]
    with open(tmp_path / "split" / "history.json") as f:
        history = json.load(f)
    assert [r["step"] for r in history["steps"]] == list(range(1, 13))
    assert [r["epoch"] for r in history["epochs"]] == [1, 2]
    for a, b in zip(weights_of(whole), weights_of(split)):
        np.testing.assert_allclose(a, b, atol=2e-5)
    np.testing.assert_allclose([r["loss"] for r in history["steps"]],
                               [r["loss"] for r in whole_recorder.step_rows], rtol=1e-4)


def _poison_denoiser(model):
    """As a diverging optimizer would: every trainable weight of the denoiser NaN."""
    for v in model.denoiser.trainable_variables:
        v.assign(keras.ops.full(v.shape, float("nan")))


def test_divergence_stops_at_once_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    ddpm = tiny_ddpm()
    ddpm.compile(keras.optimizers.Adam(3e-3))
    recorder = RunRecorder(str(tmp_path), batch_size=8, checkpoint_every=None)
    poison = helpers.AtStep(9, _poison_denoiser)  # epoch 1 (6 steps) ends with a good checkpoint; step 9 is NaN
    original_fit = ddpm.fit
    monkeypatch.setattr(ddpm, "fit", lambda *a, **k: original_fit(*a, **{**k, "callbacks": k["callbacks"] + [poison]}))
    with pytest.raises(TrainingDiverged, match=r"loss = nan at step 9.*step 6"):
        fit_resumable(ddpm, stream_dataset(), recorder, 3, "test run")
    assert recorder.step == 9
    with open(tmp_path / "state.json") as f:
        assert json.load(f)["step"] == 6
    restored = tiny_ddpm()
    restored.compile(keras.optimizers.Adam(3e-3))
    restored.load_weights(str(tmp_path / "checkpoints" / "last.keras"))
    assert all(np.isfinite(w).all() for w in weights_of(restored))


def test_warm_start_copies_every_weight_and_refuses_another_architecture(tmp_path):
    source = tiny_ddpm(seed=0)
    source.compile(keras.optimizers.Adam(3e-3))
    source.save(str(tmp_path / "source.keras"))
    keras.utils.set_random_seed(1)
    ddpm = tiny_ddpm(seed=1)
    ddpm.compile(keras.optimizers.Adam(3e-3))
    assert max(np.abs(a - b).max() for a, b in zip(weights_of(source), weights_of(ddpm))) > 0.01
    warm_start(ddpm, str(tmp_path / "source.keras"))
    for a, b in zip(weights_of(source), weights_of(ddpm)):  # EMA included
        np.testing.assert_array_equal(a, b)
    other = DDPM(UNet((8, 8, 1), widths=(16, 32), attention_resolution=4), num_train_timesteps=50)
    other.compile()
    with pytest.raises(ValueError, match="do not fit this model"):
        warm_start(other, str(tmp_path / "source.keras"))
    with pytest.raises(ValueError, match="must be an existing .keras checkpoint"):
        warm_start(other, str(tmp_path / "missing.keras"))


def exported_tiny_ddpm(tmp_path):
    """A tiny DDPM trained a few steps (EMA apart from the online weights), saved and exported."""
    from kgen.export import export_onnx

    source = tiny_ddpm(adaptive_norm=True, seed=0)
    source.compile(keras.optimizers.Adam(3e-3))
    x, y = pattern_data(64)
    source.fit(x, y, batch_size=16, epochs=1, verbose=0)
    source.save(str(tmp_path / "source.keras"))
    export_onnx(str(tmp_path / "source.keras"), output=str(tmp_path / "source.onnx"), dataset="synthetic")
    return source, str(tmp_path / "source.onnx")


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    """`exported_tiny_ddpm`, made once for the tests that only read it."""
    return exported_tiny_ddpm(tmp_path_factory.mktemp("tiny_export"))


def test_warm_start_from_an_onnx_export_puts_its_ema_weights_in_both_networks(tiny_export):
    source, path = tiny_export
    assert max(np.abs(a - b).max() for a, b in zip(weights_of(source.ema_denoiser), weights_of(source.denoiser))) > 0
    keras.config.set_dtype_policy("mixed_bfloat16")  # the recipes' fast policy: the file is float32
    ddpm = tiny_ddpm(adaptive_norm=True, seed=1)
    ddpm.compile(keras.optimizers.Adam(3e-3))
    message = warm_start(ddpm, path)
    assert message.startswith(f"Warm start from {path}") and "differ by at most" in message
    for network in (ddpm.ema_denoiser, ddpm.denoiser):
        for want, got in zip(weights_of(source.ema_denoiser), weights_of(network)):
            np.testing.assert_array_equal(got, want)
    # The EMA starts at its full decay (0.9 here): the file's weights are an average already.
    assert float(to_numpy(ddpm.steps_seen)) == 80 and (1 + 80) / (10 + 80) == pytest.approx(0.9)


@one_backend  # the weights are read under TensorFlow whatever the backend (a subprocess elsewhere, as above)
def test_a_warm_start_from_an_onnx_export_refuses_another_network(tiny_export):
    _, path = tiny_export
    other = DDPM(UNet((8, 8, 1), widths=(8, 32), attention_resolution=4, num_classes=10, adaptive_norm=True),
                 num_train_timesteps=50)
    with pytest.raises(ValueError, match="does not hold every weight of this network"):
        warm_start(other, path)
    plain = tiny_ddpm(adaptive_norm=False)  # same layer names and widths, no scale/shift layers
    with pytest.raises(ValueError, match="do not reproduce it|does not hold every weight"):
        warm_start(plain, path)


def test_a_warm_start_from_several_exports_loads_each_part_and_records_the_first_card(tmp_path):
    from kgen.export import export_onnx
    from kgen.export.warm_start import prior_training

    def tiny_vae(seed):
        vae = VAE(VAEEncoder((8, 8, 3), 4, (8, 16)), VAEDecoder((8, 8, 3), 4, (8, 16), likelihood="gaussian"),
                  seed=seed)
        vae.compile(keras.optimizers.Adam(1e-2))
        vae.fit(np.random.default_rng(seed).uniform(-1, 1, (32, 8, 8, 3)).astype("float32"), batch_size=16,
                epochs=1, verbose=0)
        return vae

    source = tiny_vae(0)
    source.save(str(tmp_path / "vae.keras"))
    files = {part: str(tmp_path / f"{part}.onnx") for part in ("vae_decoder", "vae_encoder")}
    for part, path in files.items():
        export_onnx(str(tmp_path / "vae.keras"), part=part, output=path, dataset="synthetic")
    vae = tiny_vae(1)
    both = f"{files['vae_decoder']},{files['vae_encoder']}"
    assert warm_start(vae, both).count("Warm start from") == 2
    # Both networks compute the source's functions (their batch norms come back unfolded, so compare outputs).
    images = np.random.default_rng(5).uniform(-1, 1, (4, 8, 8, 3)).astype("float32")
    latents = np.random.default_rng(5).normal(size=(4, 4)).astype("float32")
    for mine, theirs, x in ((vae.encoder, source.encoder, images), (vae.decoder, source.decoder, latents)):
        outputs = [keras.tree.flatten(network(x, training=False)) for network in (mine, theirs)]
        for got, want in zip(*outputs):
            np.testing.assert_allclose(to_numpy(got), to_numpy(want), atol=1e-5)
    assert prior_training(both) == {**prior_training(files["vae_decoder"]), "from": both}
    fresh = tiny_vae(2)
    warm_start(fresh, files["vae_decoder"])  # one part: the encoder keeps its own weights
    assert not np.allclose(weights_of(fresh.encoder)[0], weights_of(source.encoder)[0])
    with pytest.raises(ValueError, match="two exports of the vae_decoder"):
        warm_start(fresh, f"{files['vae_decoder']},{files['vae_decoder']}")
    with pytest.raises(ValueError, match="one or more comma-separated"):
        warm_start(fresh, f"{tmp_path / 'vae.keras'},{files['vae_decoder']}")


@one_backend
def test_warm_start_refuses_files_that_are_not_an_export_of_the_model(tmp_path):
    import onnx

    ddpm = tiny_ddpm()
    with pytest.raises(ValueError, match="holds a DCGAN generator; this DDPM exports denoiser"):
        warm_start(ddpm, os.path.join(ROOT, "exported", "mnist_generator.onnx"))
    node = onnx.helper.make_node("Identity", ["x"], ["y"])
    value = onnx.helper.make_tensor_value_info
    graph = onnx.helper.make_graph([node], "g", [value("x", 1, [1])], [value("y", 1, [1])])
    onnx.save(onnx.helper.make_model(graph), str(tmp_path / "foreign.onnx"))
    with pytest.raises(ValueError, match="has no kgen metadata"):
        warm_start(ddpm, str(tmp_path / "foreign.onnx"))
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="cannot read .* as an ONNX file"):
        warm_start(ddpm, str(tmp_path / "broken.onnx"))
    with pytest.raises(ValueError, match="existing .keras checkpoint of the same model, or one or more"):
        warm_start(ddpm, str(tmp_path / "missing.onnx"))


@one_backend
def test_a_run_warm_started_from_an_export_counts_the_earlier_training_in_its_card(tmp_path, monkeypatch):
    from kgen.export import export_onnx, graph_rewrites

    # The source is a file of an earlier kgen (group norms as tf2onnx traced them); it reads back all the same.
    monkeypatch.setattr(graph_rewrites, "fuse_group_norms", lambda model: 0)
    _, path = exported_tiny_ddpm(tmp_path)
    monkeypatch.undo()
    earlier = {"steps": 1000, "epochs": 10, "train_time_s": 500.0, "images_seen": 8000,
               "chunks": [{"command": "first chunk", "step_start": 0, "step_end": 1000, "seconds": 500.0}]}
    card_path = str(tmp_path / "source.json")
    with open(card_path) as f:
        card = json.load(f)
    with open(card_path, "w") as f:
        json.dump({**card, **earlier}, f)
    run_dir = tmp_path / "run"
    ddpm = tiny_ddpm(adaptive_norm=True, seed=1)
    ddpm.compile(keras.optimizers.Adam(3e-3))
    recorder = RunRecorder(str(run_dir), batch_size=8, checkpoint_every=None, config={"batch_size": 8})
    fit_resumable(ddpm, stream_dataset(), recorder, 1, "test run", warm_start=warm_starter(path))
    with open(run_dir / "warm_start.json") as f:
        assert json.load(f) == {"from": os.path.abspath(path), **earlier}
    card = export_onnx(str(run_dir / "checkpoints" / "last.keras"), output=str(tmp_path / "next.onnx"),
                       dataset="synthetic")["card"]
    with open(card) as f:
        card = json.load(f)
    assert card["steps"] == 1000 + 6 and card["images_seen"] == 8000 + 6 * 8 and card["epochs"] == 11
    assert card["train_time_s"] > 500.0
    assert [c["command"] for c in card["chunks"]][0] == "first chunk" and len(card["chunks"]) == 2
    assert card["chunks"][1]["step_start"] == 0 and card["chunks"][1]["step_end"] == 6
    assert card["warm_start"] == {"from": os.path.abspath(path), "epochs": 10, "steps": 1000, "images_seen": 8000}


@one_backend
def test_a_run_stopped_inside_its_first_epoch_counts_epochs_from_its_steps_per_epoch(tmp_path):
    def run_history(run):
        return RunFolder(run).training_record()

    def folder(name, state, config=None):
        run = tmp_path / name
        run.mkdir()
        (run / "state.json").write_text(json.dumps({"epoch": 0, "elapsed_s": 10.0, **state}))
        if config:
            (run / "config.json").write_text(json.dumps(config))
        return str(run)

    # Recorded by the run recorder: 250 steps of 100 are 2.5 epochs.
    assert run_history(folder("recorded", {"step": 250, "steps_per_epoch": 100}))["epochs"] == 2.5
    # A folder from before that record: CIFAR-10's 50,000 images in batches of 128 drop the remainder.
    older = folder("older", {"step": 224}, {"num_examples": 50000, "batch_size": 128})
    assert run_history(older)["epochs"] == pytest.approx(224 / 390)
    assert run_history(older)["steps"] == 224
    # A time budget that ends inside the second epoch writes a summary of the completed epochs only.
    budget = folder("budget", {"step": 770, "epoch": 1, "steps_per_epoch": 390})
    (tmp_path / "budget" / "summary.json").write_text(json.dumps({"epochs": 1, "steps": 770, "total_time_s": 9.0}))
    assert run_history(budget)["epochs"] == pytest.approx(770 / 390)


@one_backend
def test_sigkill_mid_epoch_then_the_same_command_resumes_from_the_interval_checkpoint(tmp_path):
    helpers.make_mnist_dir(str(tmp_path / "mnist"), n_train=1024)
    out = tmp_path / "run"
    args = ["recipes/train_ddpm.py", "--data", "mnist", "--widths", "8,16", "--attention-resolution", "7",
            "--batch-size", "8", "--epochs", "1", "--sample-steps", "2", "--checkpoint-every", "0.02",
            "--timesteps", "50", "--output-dir", str(out)]
    environ = dict(os.environ, KERAS_BACKEND=BACKEND, TF_CPP_MIN_LOG_LEVEL="3", KGEN_DATA_DIR=str(tmp_path))
    process = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=environ,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    state_file = out / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if state_file.exists() and json.loads(state_file.read_text())["step"] >= 5:
            break
        time.sleep(0.2)
    assert process.poll() is None, process.stderr.read()[-2000:]
    process.send_signal(signal.SIGKILL)
    process.wait()
    saved = json.loads(state_file.read_text())
    assert saved["epoch"] == 0 and 5 <= saved["step"] < 128  # killed inside epoch 1 of 128 steps

    resumed = run(args, KGEN_DATA_DIR=str(tmp_path))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"Resuming {out} after step {saved['step']} (epoch 1, step {saved['step']} of 128)" in resumed.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 128 and summary["epochs"] == 1
    steps = [r["step"] for r in json.loads((out / "history.json").read_text())["steps"]]
    assert steps == list(range(1, 129))  # no step lost or counted twice
    chunks = json.loads((out / "chunks.json").read_text())
    assert chunks[-1]["step_start"] == saved["step"] and chunks[-1]["step_end"] == 128


@one_backend
def test_time_budget_exits_0_and_prints_the_command_that_continues(tmp_path):
    helpers.make_mnist_dir(str(tmp_path / "mnist"), n_train=64)
    args = ["recipes/train_vae.py", "--data", "mnist", "--widths", "4,8", "--latent-dim", "2", "--batch-size", "8",
            "--epochs", "3", "--time-budget", "0.000001", "--dtype-policy", "mixed_bfloat16",
            "--output-dir", str(tmp_path / "run")]
    result = run(args, KGEN_DATA_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Time budget of 1e-06 min reached after step 1" in result.stdout
    command = result.stdout.split("Continue with:\n")[1].strip()
    assert "--time-budget 1e-06" in command and "--dtype-policy mixed_bfloat16" in command
    assert f"--output-dir {tmp_path / 'run'}" in command


# The hourglass-encoder VAE on colour images ----------------------------------------------------


def hourglass_vae(pool):
    encoder = VAEEncoder((32, 32, 3), 128, (32, 64, 128), hourglass=True, pool_before_projection=pool)
    return VAE(encoder, VAEDecoder((32, 32, 3), 128, (32, 64, 128), likelihood="gaussian"), seed=0)


@one_backend
def test_hourglass_encoder_vae_trains_on_32x32x3_without_diverging():
    rng = np.random.default_rng(0)
    # Smooth colour blobs: image-like statistics, not white noise.
    x = np.tanh(np.cumsum(np.cumsum(rng.normal(0, 0.3, (128, 32, 32, 3)), 1), 2) / 4).astype("float32")
    vae = hourglass_vae(pool=True)
    vae.compile(keras.optimizers.Adam(1e-3))
    history = vae.fit(x, batch_size=16, epochs=25, verbose=0).history  # 200 steps
    assert np.isfinite(history["loss"]).all() and np.isfinite(history["kl"]).all()
    assert history["loss"][-1] < 0.6 * history["loss"][0], history["loss"]
    # Unpooled, the first epoch's mean KL is ~11,000 nats here (the log-variances jump), ~60 pooled.
    assert max(history["kl"]) < 1000, history["kl"]


def test_hourglass_encoder_checkpoints_from_before_the_pooling_load_unpooled(tmp_path):
    config = VAEEncoder((32, 32, 3), 16, (16, 32), hourglass=True, pool_before_projection=False).get_config()
    del config["pool_before_projection"]  # as written before the option existed
    old = VAEEncoder.from_config(config)
    assert old.pool_before_projection is False
    assert "projection_pool" not in {layer.name for layer in old.layers}
    assert VAEEncoder((32, 32, 3), 16, (16, 32), hourglass=True).pool_before_projection is True


class _MeanModel:
    """held_out_metrics of a fake trainer: the images' mean, and a count that the probe drops."""

    def held_out_metrics(self, images, labels, *, seed=0, scale=1.0):
        return {"d_real_held_out": scale * float(np.mean(images)), "held_out_images": len(images), "note": "x"}


@helpers.once
def test_generalization_probe_reports_both_splits():
    ones, zeros = np.ones((4, 2, 2, 1)), np.zeros((3, 2, 2, 1))
    probe = GeneralizationProbe(ones, None, zeros, None, scale=2.0)
    assert probe(_MeanModel()) == {"train_d_real": 2.0, "test_d_real": 0.0}
    with pytest.raises(ValueError, match="both splits"):
        GeneralizationProbe(ones, None, zeros[:0], None)
