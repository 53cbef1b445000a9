"""Data-parallel training on several processes (one or more machines), through each engine's own launcher.

The same command runs on every process; the launcher's environment says
which process it is (`kgen.utils.launch`). `start_processes` joins the
engine's process group before any model is built:

- jax: `keras.distribution.initialize()` (`jax.distributed`), then Keras'
  `DataParallel` over every process's devices. Keras shards the tf.data stream
  by process and assembles each global batch as one `jax.Array`; XLA compiles
  the step over the global batch, so gradients and batch statistics are the
  global batch's.
- tensorflow: `tf.distribute.MultiWorkerMirroredStrategy` (from `TF_CONFIG`)
  as the default strategy: the same replica mechanics as `MirroredStrategy`
  (`kgen.backend.tensorflow`), with collectives between the processes.
- torch: `torch.distributed.init_process_group` (gloo on CPU, NCCL on GPU;
  `torchrun` sets the variables). kgen's torch step all-reduces the
  gradients and the logged values (`kgen.backend.torch`); each process reads
  its slice of every global batch (`kgen.data.shard_for_processes`).

In all three, every per-example random draw is made for the global batch and
sliced (`Trainer.batch_random`), so a run's randomness does not depend on the
number of processes. Only the chief (process 0) writes the run folder.
"""

from __future__ import annotations

import datetime
import os
from typing import Sequence

import keras
import numpy as np

from kgen.utils.launch import Launch, launch_from_environment

_CURRENT = [Launch()]
_TF_FUNCTIONS = {}  # the compiled TensorFlow collective of `any_process`, made once per process


class PeerLost(RuntimeError):
    """A collective failed: another process of the launch ended or cannot be reached."""

    exit_status = 1
    # The command leaves without the engine's shutdown, which would wait for the lost process (JAX: its
    # heartbeat timeout, then an abort); every commit is already complete on disk.
    leave_at_once = True


def current_launch() -> Launch:
    """The launch this process joined (`start_processes`); one process when it joined none."""
    return _CURRENT[0]


def start_processes(launch: Launch | None = None) -> Launch:
    """Joins the engine's process group of `launch` (default: from the environment); returns it.

    Call it once, before any model or tensor is made (like `use_devices`). A
    launch of one process changes nothing.

    Raises:
        ValueError: the launcher's variables are malformed.
    """
    backend = keras.backend.backend()
    launch = launch or launch_from_environment(backend)
    if not launch.several or _CURRENT[0].several:
        return _CURRENT[0] if _CURRENT[0].several else launch
    if backend == "jax":
        import jax

        keras.distribution.initialize()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=jax.devices()))
    elif backend == "tensorflow":
        import tensorflow as tf

        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        tf.distribute.experimental_set_strategy(strategy)
    else:
        import torch
        import torch.distributed as dist

        gpu = torch.cuda.is_available()
        if gpu:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        timeout = datetime.timedelta(seconds=float(os.environ.get("KGEN_COLLECTIVE_TIMEOUT", "300")))
        dist.init_process_group("nccl" if gpu else "gloo", timeout=timeout)
    _CURRENT[0] = launch
    return launch


def any_process(flags: Sequence[bool]) -> list[bool]:
    """Each of `flags` or-ed over the processes of the launch (a collective: every process must call it).

    One process: `flags` as they are.

    Raises:
        PeerLost: another process ended or cannot be reached.
    """
    flags = [bool(f) for f in flags]
    launch = current_launch()
    if not launch.several:
        return flags
    try:
        values = _any_process(launch.backend, np.asarray(flags, np.int32))
    except Exception as error:  # the engines raise their own types (gloo RuntimeError, XlaRuntimeError, ...)
        raise PeerLost(_lost(error)) from None
    return [bool(v) for v in values]


def _lost(error) -> str:
    return f"another training process ended or cannot be reached ({first_line(error)})"


def first_line(error: BaseException) -> str:
    """The first informative line of an engine's error (TensorFlow's first is "Graph execution error:")."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    text = lines[0] if not lines[0].endswith(":") or len(lines) == 1 else f"{lines[0]} {lines[1]}"
    return text[:300]


def _any_process(backend, flags):
    """The element-wise maximum of the int32 vector `flags` over the processes."""
    if backend == "torch":
        import torch
        import torch.distributed as dist

        value = torch.from_numpy(flags.copy())
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return value.numpy()
    if backend == "jax":
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(flags)).max(axis=0)
    import tensorflow as tf

    return np.asarray(_tf_sum(tf.constant(flags))) > 0


def _tf_sum(value):
    import tensorflow as tf

    if "tf_sum" not in _TF_FUNCTIONS:
        strategy = tf.distribute.get_strategy()

        @tf.function
        def total(v):
            return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.identity(v)), axis=None)

        _TF_FUNCTIONS["tf_sum"] = total
    return _TF_FUNCTIONS["tf_sum"](value)

