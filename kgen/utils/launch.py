"""Which process of a multi-process training this is, read from the launcher's environment (no framework import).

Each engine is configured by its own variables, and only the active
backend's count:

- jax: `KERAS_DISTRIBUTION_NUM_PROCESSES`, `KERAS_DISTRIBUTION_PROCESS_ID`
  and `KERAS_DISTRIBUTION_JOB_ADDRESSES` (read by `keras.distribution.initialize`);
- tensorflow: `TF_CONFIG` (`{"cluster": {"worker": [...]}, "task": {"type":
  "worker", "index": i}}`, read by `tf.distribute.MultiWorkerMirroredStrategy`);
- torch: `WORLD_SIZE`, `RANK`, `MASTER_ADDR`, `MASTER_PORT` (set by `torchrun`,
  read by `torch.distributed.init_process_group`).

The process of index 0 is the chief: the only one that writes the run folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Mapping, Optional


@dataclasses.dataclass(frozen=True)
class Launch:
    """This process's place in a training launch.

    Args:
        index: int. This process's index, 0 for the chief.
        count: int. How many processes train together (1: a plain run).
        backend: str. The Keras backend whose variables configured it.
    """

    index: int = 0
    count: int = 1
    backend: str = ""

    @property
    def chief(self) -> bool:
        """Whether this process writes the run folder (index 0)."""
        return self.index == 0

    @property
    def several(self) -> bool:
        """Whether several processes train together."""
        return self.count > 1


def _integer(environ: Mapping[str, str], name: str) -> Optional[int]:
    text = environ.get(name, "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name} must be an integer; got {text!r}.") from None


def _tensorflow(environ: Mapping[str, str]) -> tuple[int, int]:
    text = environ.get("TF_CONFIG", "").strip()
    if not text:
        return 0, 1
    try:
        config = json.loads(text)
        cluster, task = config.get("cluster", {}), config.get("task", {})
        kind, index = task.get("type", "worker"), int(task.get("index", 0))
    except (ValueError, AttributeError, TypeError):
        raise ValueError(f"TF_CONFIG is not the JSON that tf.distribute reads "
                         f"({{\"cluster\": {{\"worker\": [...]}}, \"task\": {{...}}}}); got {text[:200]!r}.") from None
    chiefs, workers = len(cluster.get("chief", [])), len(cluster.get("worker", []))
    if kind not in ("chief", "worker"):
        raise ValueError(f"TF_CONFIG task type {kind!r}: kgen trains with MultiWorkerMirroredStrategy, whose tasks "
                         "are 'chief' and 'worker'.")
    return (index if kind == "chief" else chiefs + index), max(1, chiefs + workers)


def keras_backend_name(environ: Optional[Mapping[str, str]] = None) -> str:
    """The backend Keras will pick, without importing it: `KERAS_BACKEND`, else keras.json's, else tensorflow."""
    environ = os.environ if environ is None else environ
    if environ.get("KERAS_BACKEND"):
        return environ["KERAS_BACKEND"]
    home = environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json")) as f:
            return json.load(f).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def launch_from_environment(backend: Optional[str] = None, environ: Optional[Mapping[str, str]] = None) -> Launch:
    """This process's `Launch` under `backend`, from the launcher's variables (a single process when none is set).

    `backend` defaults to the one Keras will pick (`keras_backend_name`).

    Raises:
        ValueError: the variables are malformed or inconsistent (index outside the count).
    """
    environ = os.environ if environ is None else environ
    backend = backend or keras_backend_name(environ)
    if backend == "jax":
        count = _integer(environ, "KERAS_DISTRIBUTION_NUM_PROCESSES")
        index = _integer(environ, "KERAS_DISTRIBUTION_PROCESS_ID")
        names = "KERAS_DISTRIBUTION_PROCESS_ID / KERAS_DISTRIBUTION_NUM_PROCESSES"
    elif backend == "torch":
        count, index = _integer(environ, "WORLD_SIZE"), _integer(environ, "RANK")
        names = "RANK / WORLD_SIZE"
    elif backend == "tensorflow":
        index, count = _tensorflow(environ)
        names = "TF_CONFIG's task index / its cluster"
    else:
        return Launch(backend=backend)
    count, index = count or 1, index or 0
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"{names}: process {index} of {count} is not a process of the launch.")
    return Launch(index=index, count=count, backend=backend)


def local_environments(backend: str, ports: list[int]) -> list[dict]:
    """The variables a launcher sets for `len(ports)` processes of one launch on this machine, process i at i.

    What `torchrun --nproc-per-node N` sets for torch (a rendezvous at the
    first port), what a job script writes for JAX (the coordinator at the
    first port) and TensorFlow (one worker per port). For tests and
    benchmarks; on a cluster the scheduler's launcher sets them
    (docs/scaling.md).
    """
    count = len(ports)
    environments = []
    for index in range(count):
        if backend == "jax":
            env = {"KERAS_DISTRIBUTION_JOB_ADDRESSES": f"localhost:{ports[0]}",
                   "KERAS_DISTRIBUTION_NUM_PROCESSES": str(count), "KERAS_DISTRIBUTION_PROCESS_ID": str(index)}
        elif backend == "torch":
            env = {"MASTER_ADDR": "localhost", "MASTER_PORT": str(ports[0]), "WORLD_SIZE": str(count),
                   "RANK": str(index), "LOCAL_RANK": str(index)}
        elif backend == "tensorflow":
            env = {"TF_CONFIG": json.dumps({"cluster": {"worker": [f"localhost:{p}" for p in ports]},
                                            "task": {"type": "worker", "index": index}})}
        else:
            raise ValueError(f"backend must be jax, tensorflow or torch; got {backend!r}.")
        environments.append(env)
    return environments


def free_local_ports(count: int) -> list[int]:
    """`count` TCP ports free on this machine now (bound together, then released), for a local launch."""
    import socket

    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()
