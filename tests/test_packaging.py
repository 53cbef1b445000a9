"""Packaging: the wheel carries the shipped models and the console commands, and runs without a checkout."""

import os
import pathlib
import subprocess
import sys
import venv

import keras
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
one_backend = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                 reason="backend-independent; runs under tensorflow")


def declared_packages():
    tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11")
    with open(ROOT / "pyproject.toml", "rb") as f:
        return set(tomllib.load(f)["tool"]["setuptools"]["packages"])


def test_every_kgen_package_and_the_shipped_models_are_declared():
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "kgen").rglob("__init__.py")}
    assert declared_packages() == found | {"kgen.exported", "kgen.exported.classifiers"}


def test_shipped_models_are_found_in_a_checkout():
    from kgen.utils.shipped import shipped_dir, shipped_path

    assert os.path.samefile(shipped_dir(), ROOT / "exported")
    assert os.path.isfile(shipped_path("mnist_denoiser.onnx"))
    assert os.path.isfile(shipped_path("classifiers", "mnist.keras"))


def build_wheel(tmp_path):
    wheel_dir = tmp_path / "wheel"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheel_dir), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    [wheel] = wheel_dir.glob("kgen-*.whl")
    return wheel


@one_backend
def test_the_wheel_declares_an_inference_profile_and_a_training_extra(tmp_path):
    import zipfile

    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        requires = [line.split(":", 1)[1].strip() for line in archive.read(name).decode().splitlines()
                    if line.startswith("Requires-Dist:")]
    base = {r.split(";")[0].split(">")[0].split("=")[0].strip() for r in requires if "extra ==" not in r}
    train = {r.split(";")[0].split(">")[0].split("=")[0].strip() for r in requires if "extra == \"train\"" in r}
    assert base == {"numpy", "pillow", "tqdm", "onnxruntime"}
    assert {"keras", "tensorflow", "tensorflow-datasets", "tf2onnx", "onnx", "matplotlib"} <= train


@one_backend
def test_the_inference_install_samples_with_its_own_models_and_no_framework(tmp_path):
    """`pip install kgen` (the wheel and what it declares, from the package index) into an empty venv."""
    wheel = build_wheel(tmp_path)
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)  # no system site-packages: the checkout's editable kgen is not visible
    python, bin_dir = env_dir / "bin" / "python", env_dir / "bin"
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
                             capture_output=True, text=True, timeout=900)
    if install.returncode and "kgen" not in install.stderr:
        pytest.skip(f"cannot install the wheel's dependencies from the package index: "
                    f"{install.stderr.strip().splitlines()[-1:]}")
    assert install.returncode == 0, install.stderr[-2000:]
    installed = subprocess.run([str(python), "-m", "pip", "list", "--format", "freeze"], capture_output=True,
                               text=True).stdout.lower()
    for framework in ("keras", "tensorflow", "torch", "jax"):
        assert f"\n{framework}==" not in "\n" + installed, framework
    work = tmp_path / "elsewhere"
    work.mkdir()
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KERAS_BACKEND", "KGEN_DATA_DIR")}
    result = subprocess.run([str(bin_dir / "kgen.infer"), "sample", "--labels", "0,7", "--steps", "3",
                             "--output-dir", "out"], cwd=work, env=environ, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (work / "out" / "grid.png").exists() and "denoiser" in result.stdout
    api = subprocess.run([str(python), "-c", "import kgen, sys; x = kgen.load('mnist_generator').sample(count=2); "
                          "print(x.shape, kgen.__file__)"], cwd=work, env=environ, capture_output=True, text=True)
    assert api.returncode == 0 and "(2, 28, 28, 1)" in api.stdout and str(env_dir) in api.stdout, api.stderr
    # Training in this profile is one line that names the extra, and leaves nothing behind.
    train = subprocess.run([str(bin_dir / "kgen.train"), "dcgan"], cwd=work, env=environ, capture_output=True,
                           text=True, timeout=120)
    assert train.returncode == 2 and train.stderr.strip().splitlines() == [
        "error: kgen.train needs keras and tensorflow, which kgen's inference-only install leaves out; install the "
        "training profile: pip install 'kgen[train]'."], train.stderr
    assert sorted(p.name for p in work.iterdir()) == ["out"]
    for command in ("kgen.evaluate", "kgen.export", "kgen.train"):
        assert subprocess.run([str(bin_dir / command), "--help"], cwd=work, env=environ, capture_output=True,
                              timeout=120).returncode == 0, command
    where = subprocess.run([str(python), "-c", "import kgen.utils.shipped as s; print(s.shipped_dir())"],
                           cwd=work, env=environ, capture_output=True, text=True)
    assert str(env_dir) in where.stdout and str(ROOT) not in where.stdout
    assert (pathlib.Path(where.stdout.strip()) / "classifiers" / "cifar10.keras").exists()
