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


# Every public function and method of the package is annotated, parameters and return (docs/api.md, GUIDE).
TYPED = ["kgen"]
# Methods whose signature the framework defines (Keras layers, models and trainers; torch.autograd.Function).
KERAS_CONTRACT = {"call", "build", "get_config", "from_config", "compute_phase_loss", "after_step", "train_step",
                  "save_own_variables", "load_own_variables", "get_compile_config", "compute_output_shape",
                  "forward", "backward"}


def unannotated(path):
    """`path:line name` of each public function or method of the file missing a parameter or return annotation."""
    import ast

    found = []
    tree = ast.parse(path.read_text())
    scopes = [(node, True) for node in tree.body]
    while scopes:
        node, public_scope = scopes.pop()
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            scopes += [(child, True) for child in node.body]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and public_scope:
            if node.name.startswith("_") or node.name in KERAS_CONTRACT:
                continue
            args = [a for a in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs,
                                node.args.vararg, node.args.kwarg] if a is not None and a.arg not in ("self", "cls")]
            if node.returns is None or any(a.annotation is None for a in args):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    return sorted(found, key=lambda line: int(line.split(':')[1].split()[0]))


def test_the_public_face_is_typed():
    files = [p for entry in TYPED for p in sorted((ROOT / entry).rglob("*.py") if (ROOT / entry).is_dir()
                                                  else [ROOT / entry])]
    missing = [line for p in files for line in unannotated(p)]
    assert not missing, "\n".join(missing)


def test_the_typing_check_can_fail(tmp_path):
    (tmp_path / "m.py").write_text("def f(x: int) -> int:\n    return x\n\n\ndef g(x):\n    return x\n\n\n"
                                   "class C:\n    def m(self, y: int):\n        return y\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert unannotated(tmp_path / "m.py") == ["m.py:5 g", "m.py:10 m"]
    finally:
        ROOT = saved
