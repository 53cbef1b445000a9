"""Exports read back from git: a shipped model as it was at one commit, or at every commit.

A shipped `.onnx` in `exported/` is replaced, never copied, as its run goes
on, so its git history holds the run's state at every export, each with the
model card committed beside it. The study recipes name those states as
`git:PATH.onnx` (every committed version) or `git:COMMIT:PATH.onnx` (one),
and these functions write them, card included, into a scratch folder.
"""

import hashlib
import os
import subprocess

from kgen.utils.cli import require


def _git(path, *args):
    where = os.path.dirname(os.path.abspath(path))
    return subprocess.run(["git", *args], capture_output=True, check=False,
                          cwd=where if os.path.isdir(where) else None)


def _inside(path):
    """`path` relative to the top of its repository (what `git show REV:PATH` wants), or None outside one."""
    top = _git(path, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        return None
    return os.path.relpath(os.path.abspath(path), top.stdout.decode().strip())


def _write(folder, stem, model, card):
    for suffix, content in ((".onnx", model), (".json", card)):
        with open(os.path.join(folder, stem + suffix), "wb") as f:
            f.write(content)
    return os.path.join(folder, stem + ".onnx")


def sha256_of(path: str) -> str:
    """The SHA-256 of a file, read in blocks: how the study caches know a model in any clone or commit."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_committed(source: str) -> tuple:
    """`git:COMMIT:PATH.onnx` -> (COMMIT, PATH); `git:PATH.onnx` -> (None, PATH); a plain path -> (None, None)."""
    if not source.startswith("git:"):
        return None, None
    rest = source[4:]
    commit, sep, path = rest.partition(":")
    return (commit, path) if sep else (None, rest)


def committed_version(commit: str, path: str, folder: str) -> str:
    """The `.onnx` at `path` and its card as committed in `commit`, written into `folder`; returns the file.

    Raises `ValueError` naming what is missing when the commit, the file or
    its card cannot be read.
    """
    require(path.endswith(".onnx"), f"git:{commit}:{path}: {path!r} is not an .onnx path.")
    inside = _inside(path)
    require(inside is not None, f"git:{commit}:{path}: {path!r} is not inside a git repository.")
    model, card = _git(path, "show", f"{commit}:{inside}"), _git(path, "show", f"{commit}:{inside[:-5]}.json")
    reason = (model.stderr.decode().strip().splitlines() or ["not found"])[-1]
    require(model.returncode == 0, f"git:{commit}:{path}: no such committed file ({reason}).")
    require(card.returncode == 0, f"git:{commit}:{path}: its model card {inside[:-5]}.json is not in that commit.")
    return _write(folder, f"{os.path.basename(path)[:-5]}_{commit[:8]}", model.stdout, card.stdout)


def committed_versions(path: str, folder: str) -> list:
    """Every committed version of `path` (and its card) written into `folder`: [(file, commit)], newest first.

    A version committed again later (a model and card shipped once more) is
    one point, under its newest commit.
    """
    inside = _inside(path)
    listing = _git(path, "log", "--format=%H", "--", os.path.abspath(path))
    require(inside is not None and listing.returncode == 0 and listing.stdout.split(),
            f"git:{path}: no committed versions (a path inside a git repository; "
            f"{listing.stderr.decode().strip() or 'no commits'}).")
    versions, seen = [], set()
    for commit in listing.stdout.decode().split():
        model, card = _git(path, "show", f"{commit}:{inside}"), _git(path, "show", f"{commit}:{inside[:-5]}.json")
        digest = hashlib.sha256(model.stdout + b"\0" + card.stdout).hexdigest()
        if model.returncode == 0 and card.returncode == 0 and digest not in seen:  # (a deletion has neither)
            seen.add(digest)
            stem = f"{os.path.basename(path)[:-5]}_{commit[:8]}"
            versions.append((_write(folder, stem, model.stdout, card.stdout), commit))
    return versions
