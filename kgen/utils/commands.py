"""Commands as a run records them: the words another machine can run from the repository root."""

from __future__ import annotations

import os
import shlex
import sys
from typing import Optional, Sequence


def portable_argv(argv: Optional[Sequence[str]] = None) -> list:
    """The words that started this process, as another machine can run them from the repo root.

    A package's `__main__.py` (however it was reached: a checkout, a copy, an
    installed package) becomes `python -m <package>`; a script inside the
    working folder is named relative to it.
    """
    argv = list(sys.argv if argv is None else argv) or [""]
    script, words = argv[0], argv[1:]
    parts = os.path.normpath(script).split(os.sep)
    if parts[-1] == "__main__.py" and "kgen" in parts:
        return ["python", "-m", ".".join(parts[len(parts) - 1 - parts[::-1].index("kgen"):-1]), *words]
    if script.endswith(".py"):
        relative = os.path.relpath(os.path.abspath(script))
        return ["python", script if relative.startswith("..") else relative, *words]
    if os.path.basename(script).startswith("kgen."):  # a console script (kgen.train ...)
        return [os.path.basename(script), *words]
    return argv


def runnable_command(command: str) -> str:
    """A recorded command line made runnable from the repository root (`portable_argv` of its words).

    Chunks recorded before commands were portable start with the script that
    ran (`kgen/train/__main__.py dcgan ...`, `recipes/train_ddpm.py ...`);
    they become `python -m kgen.train dcgan ...` and `python recipes/...`.
    A command already starting with `python` or a console script is kept.
    """
    try:
        words = shlex.split(command)
    except ValueError:
        return command
    if not words or os.path.basename(words[0]).startswith("python"):
        return command
    return join(portable_argv(words))


def join(words: Sequence[str]) -> str:
    """`shlex.join`, leaving a leading `~/` unquoted so that the shell still expands it."""
    def quote(word):
        rest = word[2:] if word.startswith("~/") else None
        return "~/" + shlex.quote(rest) if rest and shlex.quote(rest) == rest else shlex.quote(word)

    return " ".join(quote(word) for word in words)
