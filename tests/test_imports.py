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
    # The ONNX exporter traces the network with tf.function for tf2onnx.
    "export/onnx_export.py",
}
# Inference and the samplers must load without Keras or a framework; `.keras`
# checkpoints are the one exception, imported inside the function that loads them.
FRAMEWORK_FREE = ("infer/", "schedulers/")
TOP_LEVEL_KERAS = re.compile(r"^(import|from)\s+(keras|tensorflow|jax|torch)\b", re.M)


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


@pytest.mark.parametrize(
    "path", sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                   if str(p.relative_to(PACKAGE)).startswith(FRAMEWORK_FREE)), ids=str
)
def test_inference_and_schedulers_import_no_framework_at_load(path):
    assert not TOP_LEVEL_KERAS.search((PACKAGE / path).read_text()), f"kgen/{path} imports keras or a framework"
