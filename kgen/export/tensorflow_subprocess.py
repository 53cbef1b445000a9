"""Run a kgen module under the TensorFlow backend in a subprocess: how export works from any backend.

tf2onnx traces TensorFlow graphs, so export, and reading weights back out of
an export, run under TensorFlow. A process whose Keras backend is JAX or torch
(`.keras` files are backend-portable) runs the same module again, with the
same arguments, in a child whose `KERAS_BACKEND` is `tensorflow`.
"""

import os
import subprocess
import sys
from typing import Sequence


def run_under_tensorflow(module: str, args: Sequence[str], failure: str = "failed") -> str:
    """Runs `python -m module *args` with `KERAS_BACKEND=tensorflow`; returns its stdout.

    Raises:
        ValueError: the child failed; the message is its last line on stderr
            (a `ValueError: ` prefix removed), or `failure` when it printed none.
    """
    run = subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                         env=dict(os.environ, KERAS_BACKEND="tensorflow"))
    if run.returncode:
        lines = [line for line in run.stderr.strip().splitlines() if line.strip()]
        raise ValueError(lines[-1].removeprefix("ValueError: ").removeprefix("error: ") if lines else failure)
    return run.stdout
