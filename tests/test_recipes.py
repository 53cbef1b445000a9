"""Recipes and checkpoints as a user runs them: subprocesses, real exit codes."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import kgen.trainers  # noqa: F401  (registers kgen classes for load_model)
from tests import helpers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKEND = keras.backend.backend()


def run(args, backend=BACKEND, **env):
    environ = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3", **env)
    environ.pop("KGEN_DEBUG", None)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=600
    )


def test_train_dcgan_recipe_writes_run_and_resumes(tmp_path):
    helpers.make_mnist_dir(str(tmp_path / "mnist"), n_train=128)
    out = str(tmp_path / "run")
    flags = ["--data", "mnist", "--batch-size", "32", "--latent-dim", "8",
             "--generator-width", "8", "--discriminator-width", "8", "--output-dir", out]
    first = run(["recipes/train_dcgan.py", *flags, "--epochs", "1"], KGEN_DATA_DIR=str(tmp_path))
    assert first.returncode == 0, first.stderr[-2000:]
    second = run(["recipes/train_dcgan.py", *flags, "--epochs", "2"], KGEN_DATA_DIR=str(tmp_path))
    assert second.returncode == 0, second.stderr[-2000:]
    assert "Resuming" in second.stdout
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    assert summary["epochs"] == 2 and summary["steps"] == 8
    assert summary["backend"] == BACKEND
    assert os.path.isfile(os.path.join(out, "samples", "epoch_002.png"))
    # The overfitting probe: D's output on 128 training and the 20 test images, every epoch, resumed ones too.
    with open(os.path.join(out, "history.json")) as f:
        epochs = json.load(f)["epochs"]
    assert [sorted(k for k in row if k.endswith("_d_real")) for row in epochs] == [["test_d_real", "train_d_real"]] * 2
    assert all(0 < row[k] < 1 for row in epochs for k in ("train_d_real", "test_d_real"))


@helpers.once
@pytest.mark.parametrize(
    "flags, message",
    [  # more cases, checked in-process, in test_bad_inputs.py
        (["--data", "no_such_dataset_xyz"], "neither an existing path nor a TFDS dataset"),
    ],
)
def test_recipe_bad_input_is_one_line_and_exit_2(tmp_path, flags, message):
    result = run(["recipes/train_dcgan.py", *flags, "--output-dir", str(tmp_path / "r")])
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], result.stderr[-1500:]
    assert "Traceback" not in result.stderr
    assert not os.path.exists(tmp_path / "r")


@helpers.once
@pytest.mark.parametrize("script, flags, message", [
    ("recipes/pilots.py", ["--variants", "a=--bogus 1"], "error: unrecognized arguments: --bogus 1 (see kgen.train "
                                                         "dcgan --help)"),
    ("recipes/budget_curve.py", ["--models", "GAN=none.onnx"], "error: 'GAN=none.onnx': no file 'none.onnx'."),
    ("recipes/budget_curve.py", ["--models", "GAN=git:0000000:exported/cifar10_generator.onnx"],
     "error: git:0000000:exported/cifar10_generator.onnx: no such committed file (fatal: invalid object name "
     "'0000000'.)."),
    ("recipes/compare_families.py", ["--models", "cifar10/DDPM=git:exported/cifar10_denoiser.onnx"],
     "error: cifar10/DDPM: 'git:exported/cifar10_denoiser.onnx' is not git:COMMIT:PATH.onnx (one committed "
     "version of an export)."),
    ("recipes/compare_families.py", ["--models", "cifar10/DDPM=git:0000000:exported/cifar10_denoiser.onnx"],
     "error: git:0000000:exported/cifar10_denoiser.onnx: no such committed file (fatal: invalid object name "
     "'0000000'.)."),
])
def test_study_recipes_say_only_what_is_wrong(tmp_path, script, flags, message):
    """No TensorFlow start-up lines before the error (kgen.utils.quiet_start), nothing written."""
    result = run([script, *flags, "--output-dir" if "pilots" in script else "--report-dir", str(tmp_path / "out")])
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [message], result.stderr[-2000:]
    assert not (tmp_path / "out").exists()


def test_checkpoint_from_another_backend_loads_identically(tmp_path):
    other = {"tensorflow": "torch", "torch": "jax", "jax": "tensorflow"}[BACKEND]
    path = str(tmp_path / "gan.keras")
    script = (
        "import keras, numpy as np\n"
        "from kgen.models import DCGANGenerator, DCGANDiscriminator\n"
        "from kgen.trainers import DCGAN\n"
        "keras.utils.set_random_seed(0)\n"
        "gan = DCGAN(DCGANGenerator((28, 28, 1), 8, 8), DCGANDiscriminator((28, 28, 1), 8))\n"
        "gan.compile()\n"
        "gan.fit(np.random.uniform(-1, 1, (32, 28, 28, 1)).astype('float32'), batch_size=16, verbose=0)\n"
        f"gan.save({path!r})\n"
        "z = np.linspace(-2, 2, 32, dtype='float32').reshape(4, 8)\n"
        f"np.save({path!r} + '.npy', keras.ops.convert_to_numpy(gan.generate(z)))\n"
    )
    result = run(["-c", script], backend=other)
    assert result.returncode == 0, result.stderr[-2000:]
    restored = keras.saving.load_model(path)
    z = np.linspace(-2, 2, 32, dtype="float32").reshape(4, 8)
    np.testing.assert_allclose(
        helpers.to_numpy(restored.generate(z)), np.load(path + ".npy"), atol=1e-5
    )


@helpers.once
def test_train_classifier_recipe_exports_model_and_card(tmp_path):
    helpers.make_mnist_dir(str(tmp_path / "mnist"), n_train=64, n_test=32)
    export = str(tmp_path / "clf" / "mnist.keras")
    result = run(
        ["recipes/train_classifier.py", "--data", "mnist", "--epochs", "1", "--batch-size", "32",
         "--widths", "4,8", "--output-dir", str(tmp_path / "run"), "--export", export],
        KGEN_DATA_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    with open(export[:-6] + ".json") as f:
        card = json.load(f)
    assert 0.0 <= card["test_accuracy"] <= 1.0 and card["backend"] == BACKEND
    assert f"test accuracy {card['test_accuracy']:.4f}" in result.stdout
    restored = keras.saving.load_model(export, compile=False)
    assert tuple(restored.outputs[0].shape) == (None, 10)


def test_train_vae_recipe_runs_each_variant_flag(tmp_path):
    helpers.make_mnist_dir(str(tmp_path / "mnist"), n_train=64)
    out = str(tmp_path / "vae")
    result = run(
        ["recipes/train_vae.py", "--data", "mnist", "--variant", "hourglass_both", "--epochs", "1",
         "--batch-size", "32", "--widths", "4,8", "--latent-dim", "4", "--iwae-samples", "2", "--output-dir", out],
        KGEN_DATA_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    assert {"loss", "neg_elbo"} <= set(summary["losses"]) and summary["steps"] == 2
    with open(os.path.join(out, "config.json")) as f:
        assert json.load(f)["iwae_samples"] == 2


@helpers.once
def test_compare_vaes_study_writes_tables_figures_and_sweep(tmp_path):
    helpers.make_mnist_dir(str(tmp_path / "mnist"), n_train=64, n_test=24)
    report = tmp_path / "report"
    result = run(
        ["recipes/compare_vaes.py", "--datasets", "mnist", "--variants", "vanilla,hourglass_decoder",
         "--epochs", "mnist=1", "--batch-size", "32", "--widths", "4,8", "--latent-dim", "4",
         "--betas", "0.5,4", "--iw-samples", "3", "--iw-images", "8", "--prior-samples", "16",
         "--output-dir", str(tmp_path / "runs"), "--report-dir", str(report)],
        KGEN_DATA_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with open(report / "results.json") as f:
        results = json.load(f)
    mnist = results["datasets"]["mnist"]
    assert set(mnist) == {"vanilla", "hourglass_decoder"}
    vanilla = mnist["vanilla"]["per_seed"][0]
    # An IWAE bound with k > 1 is no looser than the one-sample ELBO on average.
    assert 0 < vanilla["iw_nll"] <= vanilla["neg_elbo"] + 1.0
    assert vanilla["test_images"] == 24 and vanilla["iw_images"] == 8 and vanilla["epochs"] == 1
    assert set(results["beta_sweep"]["results"]) == {"0.5", "4"}
    tables = (report / "tables.md").read_text()
    assert "IW NLL" in tables and "beta=4" in tables
    for figure in ("reconstructions", "prior_samples", "interpolations", "losses", "beta_tradeoff"):
        assert (report / f"mnist_{figure}.png").stat().st_size > 1000


@helpers.once
def test_diffusion_study_trains_samples_and_denoises(tmp_path):
    helpers.make_mnist_dir(str(tmp_path / "mnist"), n_train=64, n_test=24)
    report = tmp_path / "report"
    flags = ["--data", "mnist", "--sets", "A", "--epochs", "1", "--widths", "8,16", "--batch-size", "32",
             "--per-class", "2", "--sample-steps", "2", "--guidance-scales", "1,3", "--denoise-t", "5,2",
             "--denoise-images", "4", "--output-dir", str(tmp_path / "runs"), "--report-dir", str(report)]
    result = run(["recipes/diffusion_study.py", *flags], KGEN_DATA_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    with open(report / "mnist_results.json") as f:
        results = json.load(f)
    entry = results["sets"]["A"]
    assert entry["epochs"] == 1 and entry["hyperparameters"]["beta_schedule"] == "cosine"
    assert [q["guidance_scale"] for q in entry["sampling"]] == [1.0, 3.0]
    assert all(q["samples"] == 20 and 0.0 <= q["conditional_accuracy"] <= 1.0 for q in entry["sampling"])
    denoise = entry["partial_denoising"]
    assert set(denoise) == {"5", "2"} and denoise["2"]["psnr_noised"] > denoise["5"]["psnr_noised"]
    for figure in ("losses", "A_classes_w1", "A_classes_w3", "A_one_per_class", "A_partial_denoising"):
        assert (report / f"mnist_{figure}.png").stat().st_size > 1000
    assert "classifier accuracy" in (report / "mnist_tables.md").read_text()


@helpers.once
def test_compare_objectives_scores_every_variant_after_every_epoch(tmp_path):
    helpers.make_mnist_dir(str(tmp_path / "mnist"), n_train=256, n_test=24)
    report = tmp_path / "report"
    flags = ["--data", "mnist", "--variants", "baseline,both", "--epochs", "2", "--widths", "8,16",
             "--dtype-policy", "float32", "--per-class", "2", "--sample-steps", "2",
             "--output-dir", str(tmp_path / "runs"), "--report-dir", str(report)]
    result = run(["recipes/compare_objectives.py", *flags], KGEN_DATA_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    with open(report / "mnist_results.json") as f:
        results = json.load(f)["results"]
    assert set(results) == {"baseline", "both"}
    for rows in results.values():  # epoch by epoch, 2 steps of 128 images each
        assert [r["epoch"] for r in rows] == [1, 2] and [r["images_seen"] for r in rows] == [256, 512]
        assert all(r["samples"] == 20 and 0.0 <= r["conditional_accuracy"] <= 1.0 for r in rows)
    table = (report / "mnist_tables.md").read_text()
    assert "| both | 5.0 | yes |" in table and "| baseline | - | no |" in table
    assert (report / "mnist_accuracy.png").stat().st_size > 1000
