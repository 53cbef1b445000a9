"""The Python API: `kgen.load`, `kgen.list_models`, pipelines; tested as the README writes it."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

import kgen
from tests import helpers
from tests.test_recipes import ROOT

FRAMEWORKS = ("keras", "tensorflow", "torch", "jax")


def readme_python_example():
    text = open(os.path.join(ROOT, "README.md")).read()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    return next(b for b in blocks if "kgen.load(" in b)


@helpers.once
def test_the_readme_example_runs_as_written_and_imports_no_framework(tmp_path):
    code = readme_python_example() + (
        "\nimport sys\nassert images.shape == (2, 32, 32, 3) and images.min() >= -1 and images.max() <= 1\n"
        f"print('frameworks:', [m for m in {FRAMEWORKS!r} if m in sys.modules])\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "frameworks: []"
    assert "cifar10_denoiser" in result.stdout and (tmp_path / "cat.png").is_file()


def test_list_models_names_every_shipped_model_with_its_card():
    models = kgen.list_models()
    assert {"cifar10_denoiser", "mnist_denoiser", "mnist_generator", "mnist_vae_decoder"} <= set(models)
    assert models["mnist_generator"]["kind"] == "generator" and models["cifar10_denoiser"]["dataset"] == "cifar10"


def test_sampling_is_reproducible_and_takes_class_names():
    pipe = kgen.load("mnist_denoiser")
    a = pipe.sample(labels=[3, 7], steps=5, seed=1)
    b = pipe.sample(labels=["3", "7"], steps=5, seed=1)
    c = pipe.sample(labels=[3, 7], steps=5, seed=2)
    assert a.shape == (2, 28, 28, 1) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0.1
    assert len(kgen.to_pil(a)) == 2 and kgen.to_pil(a)[0].size == (28, 28)


def test_every_verb_where_the_kind_has_it():
    generator = kgen.load("mnist_generator")
    assert generator.sample(count=3, seed=0).shape == (3, 28, 28, 1)
    assert generator.interpolate(steps=4).shape == (4, 28, 28, 1)
    assert generator.decode(np.zeros((2, generator.metadata["latent_dim"]))).shape == (2, 28, 28, 1)
    decoder = kgen.load("mnist_vae_decoder")
    digit = os.path.join(ROOT, "docs", "images", "mnist_test_0.png")
    assert decoder.encode(digit).shape == (1, decoder.metadata["latent_dim"])
    assert decoder.reconstruct([digit, digit]).shape == (2, 28, 28, 1)
    denoised = kgen.load("mnist_denoiser").denoise(digit, t=5, seed=0)
    assert denoised.shape == (1, 28, 28, 1) and np.isfinite(denoised).all()


def test_bad_requests_are_clear_errors():
    with pytest.raises(ValueError, match="neither a shipped model nor an .onnx/.keras file; shipped: cifar10_denoiser"):
        kgen.load("cifar11_denoiser")
    pipe = kgen.load("mnist_denoiser")
    with pytest.raises(ValueError, match="unknown class 'cat'; accepted: 0, 1"):
        pipe.sample(labels=["cat"])
    with pytest.raises(ValueError, match=r"guidance_scale must be in 0..50; got 1e\+30"):
        pipe.sample(labels=[1], guidance_scale=1e30)
    with pytest.raises(ValueError, match="count 3 and 2 labels disagree"):
        pipe.sample(count=3, labels=[1, 2])
    with pytest.raises(ValueError, match=r"images must be \(N, 28, 28, 1\) in \[-1, 1\]"):
        pipe.denoise(np.zeros((1, 32, 32, 3)), t=5)
    with pytest.raises(ValueError, match="is a generator; this needs a denoiser"):
        kgen.load("mnist_generator").denoise(np.zeros((1, 28, 28, 1)), t=5)
    with pytest.raises(ValueError, match="is unconditional; drop labels"):
        kgen.load("mnist_generator").sample(labels=[1])
