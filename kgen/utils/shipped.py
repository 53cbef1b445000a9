"""Where the shipped models are: the wheel's package data, or a checkout's `exported/` folder."""

import importlib.util
import os
from typing import Optional


def shipped_dir() -> Optional[str]:
    """The folder holding the shipped models (`exported/` of the repository).

    An installed wheel carries them as the package data of `kgen.exported`;
    an editable install maps that package onto the checkout's `exported/`;
    running from a checkout without installing finds `exported/` beside
    `kgen/`. None if there is no such folder.
    """
    try:
        spec = importlib.util.find_spec("kgen.exported")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            if os.path.isdir(location):
                return location
    checkout = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "exported")
    return checkout if os.path.isdir(checkout) else None


def shipped_path(*parts: str) -> str:
    """Path of a shipped file (e.g. `shipped_path("classifiers", "mnist.keras")`), shown relative when shorter."""
    root = shipped_dir()
    path = os.path.join(root or "exported", *parts)
    relative = os.path.relpath(path)
    return relative if len(relative) < len(path) else path
