"""The code style is checked, not hoped for: ruff with the configuration in pyproject.toml."""

import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff comes with the test extra: pip install -e '.[test]'")
def test_ruff_finds_nothing():
    result = subprocess.run(["ruff", "check", "kgen", "recipes", "tests", "benchmarks"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
