"""Packages whose names load on first use (PEP 562), so that importing them stays cheap."""

import importlib
import sys
from typing import Any, Callable


def lazy_attributes(package: str, homes: dict) -> Callable[[str], Any]:
    """A module `__getattr__` for `package` that imports `homes[name]` (a submodule) when `name` is first used.

    Example:
    >>> __getattr__ = lazy_attributes(__name__, {"RunFolder": "run_folder"})
    """

    def __getattr__(name):
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{homes[name]}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
