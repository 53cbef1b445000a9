"""TensorFlow without its start-up noise: the C++ lines it prints before its own log settings apply."""

import os
import sys


def quiet_tensorflow() -> None:
    """Imports TensorFlow and finds its devices with the C++ start-up lines hidden.

    On a CPU-only machine TensorFlow prints its CUDA probes ("Could not find
    cuda drivers", "failed call to cuInit") before `TF_CPP_MIN_LOG_LEVEL`
    can apply, so only a redirect of the process's stderr hides them. Python
    errors still surface (they are raised, and printed after the redirect
    ends). Nothing is hidden with `KGEN_DEBUG=1` or an explicit
    `TF_CPP_MIN_LOG_LEVEL` of 0 or 1. Call it before anything imports
    TensorFlow; later calls do nothing.
    """
    if "tensorflow" in sys.modules or os.environ.get("KGEN_DEBUG") or os.environ.get("TF_CPP_MIN_LOG_LEVEL") in (
            "0", "1"):
        return
    try:
        saved = os.dup(2)
    except OSError:
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    sys.stderr.flush()
    os.dup2(devnull, 2)
    try:
        import tensorflow as tf

        tf.config.list_physical_devices()  # the CUDA probe, before any device is configured
    except ImportError:
        pass
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
