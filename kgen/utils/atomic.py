"""Files that appear whole or not at all: write to a temporary name beside the target, then rename."""

import contextlib
import json
import os
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yields a temporary path beside `path` (same extension); renamed to `path` if the block succeeds.

    The folder is created if needed. On an exception the temporary file is
    removed and `path` is left as it was, so a reader never sees a partial
    file and an interrupted write leaves nothing behind.

    Example:
    >>> with atomic_path("runs/x/losses.png") as tmp:
    ...     figure.savefig(tmp)
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    root, extension = os.path.splitext(path)
    tmp = f"{root}.{os.getpid()}.tmp{extension}"  # two writers never share one
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(path: str, text: str) -> None:
    """Writes `text` to `path` atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        f.write(text)


def write_json(path: str, obj: Any, indent: int = 1) -> None:
    """Writes `obj` as JSON to `path` atomically."""
    write_text(path, json.dumps(obj, indent=indent))
