"""The docs site (mkdocs + mkdocstrings): built from docs/ with the API reference from the docstrings,
warnings as errors."""

import subprocess
import sys

import pytest

from tests import helpers
from tests.test_recipes import ROOT


@helpers.once
def test_the_docs_site_builds_with_warnings_as_errors(tmp_path):
    pytest.importorskip("mkdocstrings", reason="the docs tools come with the test extra")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    for name in ("kgen.infer.pipeline.load", "Pipeline", "RunFolder", "fit_resumable", "export_onnx"):
        assert name in api, name
