"""Architecture rules: which kgen modules may import a deep-learning framework."""

import pathlib
import re

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "kgen"
FRAMEWORK = re.compile(r"^\s*(import|from)\s+(tensorflow|jax|torch|tensorflow_datasets)\b", re.M)

# Framework code is allowed only in the per-backend modules and the input
# pipelines.
ALLOWED = {
    "backend/tensorflow.py",
    "backend/jax.py",
    "backend/torch.py",
    "backend/torch_ops.py",
    "data/pipeline.py",
}


def test_rule_is_able_to_fail():
    assert FRAMEWORK.search("import torch\n") and FRAMEWORK.search("from jax import lax\n")
    assert not FRAMEWORK.search("import keras\n")


@pytest.mark.parametrize(
    "path", sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")), ids=str
)
def test_framework_imports_only_where_allowed(path):
    source = (PACKAGE / path).read_text()
    if path not in ALLOWED:
        assert not FRAMEWORK.search(source), f"kgen/{path} imports a framework module"
