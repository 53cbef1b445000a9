"""The run folder under misuse and faults: a lock, one atomic commit, checked flags, finite commits, one-line errors."""

import dataclasses
import errno
import json
import os
import signal
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from kgen.runs import (
    CheckpointWriteError,
    RunFolder,
    RunFolderInUse,
    RunRecorder,
    TrainingDiverged,
    TrainingRunOptions,
    fit_resumable,
    open_run,
    optimizers,
)
from kgen.utils.cli import option
from tests import helpers
from tests.helpers import weights_of
from tests.test_dcgan import make_gan, toy_real
from tests.test_recipes import ROOT, run

STEPS_PER_EPOCH = 4


def gan_data():
    return tf.data.Dataset.from_tensor_slices(toy_real(64)).shuffle(64, seed=0).batch(16, drop_remainder=True)


def train(run_dir, epochs=2, **recorder_options):
    keras.utils.set_random_seed(0)
    gan = make_gan()
    recorder = RunRecorder(str(run_dir), batch_size=16, checkpoint_every=None, **recorder_options)
    status = fit_resumable(gan, gan_data(), recorder, epochs, "test run")
    return gan, recorder, status


def worker(run_dir, fault=None):
    environ = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    environ.pop("KGEN_FAULT_AT", None)
    if fault:
        environ["KGEN_FAULT_AT"] = fault
    return subprocess.run([sys.executable, "tests/commit_worker.py", str(run_dir)], cwd=ROOT, env=environ,
                          capture_output=True, text=True, timeout=300)


# One atomic commit -------------------------------------------------------------------------------


@helpers.once
def test_a_sigkill_at_any_point_of_a_commit_resumes_with_every_step_trained_once(tmp_path):
    reference = worker(tmp_path / "reference")
    assert reference.returncode == 0, reference.stderr[-2000:]
    expected = json.loads(reference.stdout.strip().splitlines()[-1])
    assert expected["iterations"] == [12] and expected["steps"] == list(range(1, 13))
    # written: the new file is complete under its temporary name; rotated: last.keras is previous.keras and
    # the new one not yet in place; committed: in place, its views (state.json, history.json) not yet written.
    # Commits come at steps 4, 8 and 12; the first has no earlier commit to rotate, so rotated:1 is step 8's.
    for fault in ("written:1", "written:2", "rotated:1", "committed:2"):
        folder = tmp_path / fault.replace(":", "_")
        killed = worker(folder, fault)
        assert killed.returncode == -signal.SIGKILL, (fault, killed.stderr[-2000:])
        resumed = worker(folder)
        assert resumed.returncode == 0, (fault, resumed.stderr[-2000:])
        got = json.loads(resumed.stdout.strip().splitlines()[-1])
        # Optimizer updates == recorded steps == an uninterrupted run's, and the same weights.
        assert got["iterations"] == [12] and got["steps"] == list(range(1, 13)), fault
        np.testing.assert_allclose(got["weights"], expected["weights"], rtol=1e-5, err_msg=fault)
        assert not [n for n in os.listdir(folder / "checkpoints") if ".tmp" in n], fault
        chunks = json.loads((folder / "chunks.json").read_text())
        resumed_from = {"written:1": 0, "written:2": 4, "rotated:1": 4, "committed:2": 8}[fault]
        assert chunks[-1]["step_end"] == 12 and chunks[-1]["step_start"] == resumed_from, fault


def test_a_damaged_last_commit_falls_back_to_the_previous_one_in_one_line(tmp_path, capsys):
    train(tmp_path, epochs=2)  # commits at steps 4 and 8
    folder = RunFolder(str(tmp_path))
    assert folder.latest()[1].step == 8
    data = open(folder.checkpoint, "rb").read()
    with open(folder.checkpoint, "wb") as f:
        f.write(data[: len(data) // 2])  # truncated, as a full disk or a copy cut short leaves it
    capsys.readouterr()
    path, commit = folder.latest()
    assert path == folder.previous_checkpoint and commit.step == 4
    warning = capsys.readouterr().err.strip().splitlines()
    assert len(warning) == 1 and "unreadable" in warning[0] and "step 4" in warning[0]
    gan, recorder, _ = train(tmp_path, epochs=3)  # resumes from step 4: every step once
    assert [r["step"] for r in recorder.step_rows] == list(range(1, 13))
    with open(folder.previous_checkpoint, "wb") as f:
        f.write(b"PK\x03\x04 not a zip")
    with open(folder.checkpoint, "wb") as f:
        f.write(b"")
    with pytest.raises(ValueError, match=r"unreadable .* no earlier commit is readable"):
        folder.latest()


def test_a_full_disk_is_one_error_and_keeps_the_previous_commit(tmp_path, monkeypatch):
    gan = make_gan()
    original_save = gan.save
    calls = []

    def save(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            with open(path, "wb") as f:
                f.write(b"partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return original_save(path, *args, **kwargs)

    monkeypatch.setattr(gan, "save", save)
    recorder = RunRecorder(str(tmp_path), batch_size=16, checkpoint_every=None)
    with pytest.raises(CheckpointWriteError, match=r"step 8 .*No space left on device; the previous commit is intact"):
        fit_resumable(gan, gan_data(), recorder, 2, "test run")
    assert CheckpointWriteError.exit_status == 1
    assert RunFolder(str(tmp_path)).latest()[1].step == 4
    assert not [n for n in os.listdir(tmp_path / "checkpoints") if ".tmp" in n]


def test_folders_of_the_earlier_layout_still_resume(tmp_path):
    gan = make_gan()
    gan.fit(toy_real(64), batch_size=16, epochs=1, verbose=0)
    os.makedirs(tmp_path / "checkpoints")
    gan.save(str(tmp_path / "checkpoints" / "last.keras"))  # format 1: the state beside the checkpoint
    rows = [{"step": s, "epoch": 1, "g_loss": 1.0} for s in range(1, 5)]
    (tmp_path / "state.json").write_text(json.dumps({"epoch": 1, "step": 4, "elapsed_s": 3.0}))
    epochs = [{"epoch": 1, "step": 4, "g_loss": 1.0, "time_s": 2.0}]
    (tmp_path / "history.json").write_text(json.dumps({"steps": rows, "epochs": epochs}))
    (tmp_path / "chunks.json").write_text(json.dumps([{"command": "earlier", "step_start": 0, "step_end": 4}]))
    path, commit = RunFolder(str(tmp_path)).latest()
    assert commit.step == 4 and commit.epoch == 1 and commit.chunks[0]["command"] == "earlier"
    _, recorder, _ = train(tmp_path, epochs=2)
    assert [r["step"] for r in recorder.step_rows] == list(range(1, 9))
    with zipfile.ZipFile(tmp_path / "checkpoints" / "last.keras") as archive:  # rewritten in the new format
        assert json.loads(archive.read("kgen_run.json"))["step"] == 8
    assert [c["command"] for c in RunFolder(str(tmp_path)).chunks()][0] == "earlier"


# The lock ------------------------------------------------------------------------------------------


@helpers.once
def test_a_second_process_on_a_locked_folder_is_refused_before_any_data(tmp_path):
    folder = RunFolder(str(tmp_path / "run")).lock()
    try:
        # --data names nothing: the lock is what refuses, before the data or a model are looked at.
        result = run(["recipes/train_dcgan.py", "--data", str(tmp_path / "missing"), "--output-dir",
                      folder.root])
    finally:
        folder.unlock()
    assert result.returncode == 2
    lines = [line for line in result.stderr.strip().splitlines() if not helpers.is_tensorflow_log(line)]
    assert len(lines) == 1 and f"in use by another kgen process (pid {os.getpid()})" in lines[0], result.stderr
    assert not os.path.exists(os.path.join(folder.root, "config.json"))


@helpers.once
def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    code = ("import sys, time; from kgen.runs.run_folder import RunFolder; held = RunFolder(sys.argv[1]).lock(); "
            "print('locked', flush=True); time.sleep(120)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderInUse, match=f"pid {holder.pid}"):
            RunFolder(str(tmp_path)).lock()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    RunFolder(str(tmp_path)).lock().unlock()  # released by the OS with the process


# Resume checks the flags ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TinyConfig(TrainingRunOptions):
    epochs: int = option(1, "epochs")
    learning_rate: float = option(2e-4, "learning rate")
    batch_size: int = option(16, "batch")
    output_dir: str = option("run", "folder")
    resume: bool = option(True, "resume")


def test_a_resume_with_other_training_flags_is_refused_unless_overridden(tmp_path):
    config = TinyConfig(output_dir=str(tmp_path), learning_rate=2e-4)
    folder = open_run(config)
    gan = make_gan(2e-4, 2e-4)
    recorder = RunRecorder(folder, batch_size=16, checkpoint_every=None,
                           config={f.name: getattr(config, f.name) for f in dataclasses.fields(config)})
    fit_resumable(gan, gan_data(), recorder, 1, "test run")

    with pytest.raises(ValueError, match=r"other flags: --learning-rate 1e\+30 \(recorded: 0.0002\)"):
        open_run(dataclasses.replace(config, learning_rate=1e30, epochs=2))
    open_run(dataclasses.replace(config, epochs=2, time_budget=5.0)).unlock()  # paces the run: allowed

    changed = dataclasses.replace(config, learning_rate=1e-3, epochs=2, override_flags=True)
    folder = open_run(changed)
    assert folder.overrides == {"learning_rate": (2e-4, 1e-3)}
    gan = make_gan(1e-3, 1e-3)  # what the new flags compile
    recorder = RunRecorder(folder, batch_size=16, checkpoint_every=None,
                           config={f.name: getattr(changed, f.name) for f in dataclasses.fields(changed)})
    fit_resumable(gan, gan_data(), recorder, 2, "test run")
    # The new rate is what trains (the checkpoint held the old one), and the change is on record.
    rates = {round(float(keras.ops.convert_to_numpy(o.learning_rate)), 8) for o in optimizers(gan)
             if not hasattr(o, "optimizers")}
    assert rates == {1e-3}
    chunks = json.loads((tmp_path / "chunks.json").read_text())
    assert chunks[-1]["overrides"] == {"learning_rate": {"recorded": 2e-4, "given": 1e-3}}
    assert "overrides" not in chunks[0]


# Finite commits, one-line failures, honest progress ---------------------------------------------


def _infinite_statistics(model):
    """One BatchNorm moving variance set to inf: the losses stay finite (training mode normalises with the batch's
    own statistics), as with a huge learning rate."""
    variable = next(v for v in model.discriminator.weights if "moving_variance" in v.path)
    variable.assign(keras.ops.full(variable.shape, float("inf")))


def test_no_commit_holds_a_non_finite_variable(tmp_path, monkeypatch):
    gan = make_gan()
    recorder = RunRecorder(str(tmp_path), batch_size=16, checkpoint_every=None)
    poison = helpers.AtStep(6, _infinite_statistics, at_end=True)  # step 4 commits; step 8's would hold inf
    original_fit = gan.fit
    monkeypatch.setattr(gan, "fit", lambda *a, **k: original_fit(*a, **{**k, "callbacks": [poison] + k["callbacks"]}))
    with pytest.raises(TrainingDiverged, match=r"moving_variance = a non-finite value at step 8.*step 4\)"):
        fit_resumable(gan, gan_data(), recorder, 3, "test run")
    path, commit = RunFolder(str(tmp_path)).latest()
    assert commit.step == 4
    restored = make_gan()
    restored.load_weights(path)
    assert all(np.isfinite(w).all() for w in weights_of(restored))


def test_a_budget_inside_the_first_epoch_ends_cleanly_and_the_progress_line_agrees(tmp_path, capsys):
    _, recorder, status = train(tmp_path, epochs=2, time_budget=1e-9)
    assert status.name == "TIME_BUDGET" and recorder.step == 1
    summary = recorder.summary()
    assert summary["epochs"] == 0 and summary["steps"] == 1 and summary["losses"]["g_loss"]["min_step"] == 1
    out = capsys.readouterr().out
    # Keras' last line counts the steps run (1/1), not the epoch's (4/4), like the stop message.
    assert "1/1 - " in out and f"{STEPS_PER_EPOCH}/{STEPS_PER_EPOCH} - " not in out
    assert "reached after step 1 (0.25 epochs)" in out
    assert "(no whole epoch yet)" in (tmp_path / "summary.md").read_text()


# The kgen.train command ----------------------------------------------------------------------------


@helpers.once
def test_every_family_help_loads_no_framework():
    code = ("import sys\nfrom kgen.train.__main__ import main\n"
            "for family in ('dcgan', 'vae', 'ddpm', 'classifier'):\n"
            "    try:\n        main([family, '--help'])\n    except SystemExit:\n        pass\n"
            "loaded = sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules)\n"
            "print('loaded:', loaded)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "loaded: []"
    for flag in ("--data", "--limit", "--epochs", "--batch-size", "--seed", "--output-dir", "--time-budget",
                 "--checkpoint-every", "--dtype-policy", "--devices", "--init-from", "--override-flags"):
        assert result.stdout.count(flag + " ") >= 4, flag  # every family takes the run flags


@helpers.once
def test_kgen_train_runs_a_family_with_the_shared_flags_and_continues_itself(tmp_path):
    helpers.make_mnist_dir(str(tmp_path / "mnist"), n_train=256)
    out = tmp_path / "run"
    args = ["-m", "kgen.train", "vae", "--data", "mnist", "--limit", "64", "--widths", "4,8", "--latent-dim", "2",
            "--batch-size", "16", "--epochs", "2", "--time-budget", "0.000001", "--output-dir", str(out)]
    result = run(args, KGEN_DATA_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "reached after step 1 (0.25 epochs)" in result.stdout  # --limit 64: 4 steps per epoch
    # No CUDA probes on a CPU-only machine (TensorFlow prints them before its log level applies).
    assert "cuda" not in result.stderr.lower() and "absl" not in result.stderr, result.stderr[-2000:]
    command = result.stdout.split("Continue with:\n")[1].strip().splitlines()[0]
    assert f"KGEN_DATA_DIR={tmp_path}" in command and "python -m kgen.train vae" in command
    assert "--limit 64" in command
    unknown = run(["-m", "kgen.train", "gan"])
    assert unknown.returncode == 2 and "unknown family 'gan'; accepted: dcgan, vae, ddpm, classifier" in unknown.stderr


# Exports never replace a file unasked ---------------------------------------------------------------


@helpers.once
def test_export_writes_beside_the_run_and_never_replaces_a_file_without_overwrite(tmp_path, monkeypatch):
    from kgen.export import export_onnx

    train(tmp_path / "run", epochs=1)
    checkpoint = str(tmp_path / "run" / "checkpoints" / "last.keras")
    work = tmp_path / "cwd"
    (work / "exported").mkdir(parents=True)
    shipped = work / "exported" / "synthetic_generator.onnx"
    shipped.write_bytes(b"a shipped model")
    monkeypatch.chdir(work)
    result = export_onnx(checkpoint, dataset="synthetic")
    assert os.path.abspath(result["path"]) == str(tmp_path / "run" / "exported" / "synthetic_generator.onnx")
    assert shipped.read_bytes() == b"a shipped model"  # the working folder's exported/ is not the default
    target = str(work / "exported" / "synthetic_generator.onnx")
    with pytest.raises(ValueError, match=r"synthetic_generator.onnx exists; pass --overwrite"):
        export_onnx(checkpoint, output=target, dataset="synthetic")
    with pytest.raises(ValueError, match=r"exists; pass --overwrite"):
        export_onnx(checkpoint, dataset="synthetic")  # the default path, written above
    assert shipped.read_bytes() == b"a shipped model"
    export_onnx(checkpoint, output=target, dataset="synthetic", overwrite=True)
    assert shipped.read_bytes()[:4] != b"a sh" and (work / "exported" / "synthetic_generator.json").is_file()


# TensorBoard --------------------------------------------------------------------------------------


def test_tensorboard_events_hold_every_logged_value_and_the_sample_grids(tmp_path):
    pytest.importorskip("tensorboard", reason="TensorBoard's event reader comes with the train extra")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    latents = np.random.default_rng(0).normal(size=(4, 16)).astype("float32")
    gan = make_gan()
    recorder = RunRecorder(str(tmp_path), batch_size=16, checkpoint_every=None,
                           sample_fn=lambda model: model.generate(latents))
    fit_resumable(gan, gan_data(), recorder, 2, "test run")
    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"tensors": 0})
    events.Reload()
    tags = set(events.Tags()["tensors"])
    assert {"g_loss", "d_loss", "d_loss_real", "d_loss_fake", "epoch/g_loss", "epoch/time_s", "samples"} <= tags
    g_loss = events.Tensors("g_loss")
    assert [e.step for e in g_loss] == list(range(1, 9))
    np.testing.assert_allclose([float(make_ndarray(e.tensor_proto)) for e in g_loss],
                               [r["g_loss"] for r in recorder.step_rows], rtol=1e-6)
    assert [e.step for e in events.Tensors("epoch/g_loss")] == [4, 8]
    grids = events.Tensors("samples")
    assert [e.step for e in grids] == [4, 8]  # one PNG-encoded grid per epoch
