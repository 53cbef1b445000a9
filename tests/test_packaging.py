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


@one_backend
def test_the_wheel_samples_with_its_own_models_and_no_checkout(tmp_path):
    wheel_dir = tmp_path / "wheel"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheel_dir), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    [wheel] = wheel_dir.glob("kgen-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)  # no system site-packages: the checkout's editable kgen is not visible
    python, bin_dir = env_dir / "bin" / "python", env_dir / "bin"
    # kgen.infer needs onnxruntime, numpy and Pillow only: no deep-learning framework.
    deps = subprocess.run([str(python), "-m", "pip", "install", "-q", "numpy", "onnxruntime", "pillow", "tqdm"],
                          capture_output=True, text=True, timeout=600)
    if deps.returncode:
        pytest.skip(f"cannot install onnxruntime, numpy and Pillow into a fresh environment: "
                    f"{deps.stderr.strip().splitlines()[-1:]}")
    install = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    work = tmp_path / "elsewhere"
    work.mkdir()
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KERAS_BACKEND")}
    result = subprocess.run([str(bin_dir / "kgen.infer"), "sample", "--labels", "0,7", "--steps", "3",
                             "--output-dir", "out"], cwd=work, env=environ, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (work / "out" / "grid.png").exists() and "denoiser" in result.stdout
    where = subprocess.run([str(python), "-c", "import kgen.utils.shipped as s; print(s.shipped_dir())"],
                           cwd=work, env=environ, capture_output=True, text=True)
    assert str(env_dir) in where.stdout and str(ROOT) not in where.stdout
    assert (pathlib.Path(where.stdout.strip()) / "classifiers" / "cifar10.keras").exists()
