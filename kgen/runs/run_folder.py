"""RunFolder: the one module that reads and writes a kgen run folder."""

from __future__ import annotations

import csv
import dataclasses
import errno
import json
import os
import sys
import zipfile
from typing import Any, Iterable, Optional

import numpy as np

from kgen.utils import atomic

STATE_MEMBER = "kgen_run.json"  # the training state, inside the checkpoint's zip
FORMAT_VERSION = 2  # 1: state.json and history.json beside checkpoints/last.keras, written after it


# Flags that may differ between the chunks of one run: they pace or place the work, not what is learned.
CHANGEABLE_FLAGS = ("epochs", "time_budget", "checkpoint_every", "resume", "init_from", "devices", "dtype_policy",
                    "output_dir", "override_flags", "probe_images")


class RunFolderInUse(RuntimeError):
    """Another process holds the run folder's lock."""

    exit_status = 2


class CheckpointWriteError(RuntimeError):
    """A commit could not be written (disk full, permissions); the previous commit is intact."""

    exit_status = 1


class NonFiniteState(RuntimeError):
    """A variable of the model or its optimizers is NaN or infinite; nothing was committed."""

    exit_status = 3


@dataclasses.dataclass
class Commit:
    """Everything a resume needs besides the model's variables, committed with them in one file.

    Args:
        step: int. Optimizer steps done (the data position: the stream resumes at batch `step + 1`).
        epoch: int. Whole epochs done.
        elapsed_s: float. Training seconds over every chunk.
        epoch_elapsed_s: float. Seconds spent in the unfinished epoch.
        steps_per_epoch: int or None. Batches per epoch (None for plain `fit` runs).
        history: dict. `{"steps": [...], "epochs": [...]}`: one row per step and per epoch.
        chunks: list of dict. One entry per process that trained the run.
    """

    step: int = 0
    epoch: int = 0
    elapsed_s: float = 0.0
    epoch_elapsed_s: float = 0.0
    steps_per_epoch: Optional[int] = None
    history: dict = dataclasses.field(default_factory=lambda: {"steps": [], "epochs": []})
    chunks: list = dataclasses.field(default_factory=list)

    def state(self) -> dict:
        """The `state.json` view: the commit without its history and chunks."""
        return {"format": FORMAT_VERSION, "epoch": self.epoch, "step": self.step, "elapsed_s": self.elapsed_s,
                "epoch_elapsed_s": self.epoch_elapsed_s, "steps_per_epoch": self.steps_per_epoch}


def _read_json(path: str, default: Any) -> Any:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def optimizers(model: Any) -> list:
    """The optimizers a trainer holds (`optimizer`, or e.g. a GAN's `d_optimizer` and `g_optimizer`)."""
    import keras

    found = {}
    candidates = [getattr(model, "optimizer", None), *vars(model).values()]
    while candidates:
        candidate = candidates.pop(0)
        if isinstance(candidate, keras.optimizers.Optimizer) and id(candidate) not in found:
            found[id(candidate)] = candidate
            candidates += list(getattr(candidate, "optimizers", []))  # a group (kgen.backend.OptimizerGroup)
    return list(found.values())


def model_variables(model: Any) -> Iterable[tuple[str, Any]]:
    """`(path, variable)` of every variable a checkpoint of `model` holds: weights, statistics, optimizers."""
    seen = set()
    for owner in [model, *optimizers(model)]:
        for variable in owner.variables:
            if id(variable) not in seen:
                seen.add(id(variable))
                yield getattr(variable, "path", variable.name), variable


def _to_numpy(keras, variable):
    try:
        return keras.ops.convert_to_numpy(variable.value)
    except ValueError:  # a tf.distribute MirroredVariable: its value as saving reads it
        return np.asarray(variable.numpy())


def first_non_finite(model: Any) -> Optional[str]:
    """The path of the first variable of `model` (or its optimizers) holding a NaN or infinity, else None."""
    import keras

    for path, variable in model_variables(model):
        value = _to_numpy(keras, variable)
        if np.issubdtype(value.dtype, np.floating) or "bfloat16" in str(value.dtype):
            if not np.isfinite(value.astype("float32")).all():
                return path
    return None


class RunFolder:
    """A training run's folder: the only code that reads or writes its files.

    Layout:

    - `config.json`: the run's flags and dataset (`run_record`);
    - `checkpoints/last.keras`: the latest commit, one file renamed into
      place: the model (weights, optimizer state, RNG state) and, inside
      its zip, `kgen_run.json` (step, epoch, elapsed time, history, chunks);
    - `checkpoints/previous.keras`: the commit before it, kept until the
      next one is complete (a damaged `last.keras` falls back to it);
    - `state.json`, `history.json`, `history_*.csv`, `chunks.json`,
      `summary.*`, `*.png`: views of the latest commit for people and
      tools, rewritten after it (never read back to resume);
    - `warm_start.json`: what trained the model a new run started from;
    - `.lock`: held by the training process (an OS lock: a killed process
      releases it), holding its pid.

    A run trained by several processes has one writer, the chief; the others
    open the folder as readers (`writer=False`): they resume from the chief's
    commits, and every write of theirs does nothing.

    Folders written before the commit held its state (format 1: `state.json`
    and `history.json` beside `last.keras`) are read as they are.

    Args:
        path: str. The folder (need not exist yet).
        writer: bool. Whether this process writes the folder (a training
            process other than the chief does not). Defaults to `True`.

    Example:
    >>> run = RunFolder("runs/dcgan").lock()
    >>> commit = run.restore(model)  # None when the folder holds no checkpoint
    """

    def __init__(self, path: str, writer: bool = True):
        self.root = str(path)
        self.writer = bool(writer)
        self.created = None  # the outermost folder `lock` made (the run folder or a parent), if it made one
        self._lock_file = None

    def __repr__(self) -> str:
        return f"RunFolder({self.root!r})"

    @classmethod
    def of_checkpoint(cls, checkpoint: str) -> "RunFolder":
        """The run folder a checkpoint `<run>/checkpoints/<name>.keras` belongs to."""
        return cls(os.path.dirname(os.path.dirname(os.path.abspath(checkpoint))))

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    @property
    def checkpoint(self) -> str:
        """`checkpoints/last.keras`: the latest commit."""
        return self.path("checkpoints", "last.keras")

    @property
    def previous_checkpoint(self) -> str:
        return self.path("checkpoints", "previous.keras")

    # The lock -----------------------------------------------------------
    def lock(self) -> "RunFolder":
        """Takes the folder's exclusive lock (created if needed); returns self.

        Raises:
            RunFolderInUse: another process holds it (its pid is named).
        """
        import fcntl

        if self._lock_file is not None or not self.writer:
            return self
        top = os.path.abspath(self.root)  # the outermost folder this call creates, if any
        while not os.path.exists(os.path.dirname(top)):
            top = os.path.dirname(top)
        self.created = None if os.path.exists(top) else top
        os.makedirs(self.root, exist_ok=True)
        handle = open(self.path(".lock"), "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise RunFolderInUse(f"{self.root} is in use by another kgen process (pid {holder}); wait for it to "
                                 "end, or give another --output-dir.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_file = handle
        # Temporaries of a killed writer: the lock says no other process is writing them.
        checkpoints = self.path("checkpoints")
        for name in os.listdir(checkpoints) if os.path.isdir(checkpoints) else []:
            if name.startswith(".last.") and name.endswith(".tmp.keras"):
                os.remove(os.path.join(checkpoints, name))
        return self

    def unlock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing releases the flock
            self._lock_file = None

    def discard_if_empty(self) -> None:
        """Unlocks, and removes the folder if `lock` created it and it holds no checkpoint (a refused command)."""
        import shutil

        self.unlock()
        if self.writer and self.created and not os.path.exists(self.path("checkpoints")):
            shutil.rmtree(self.created, ignore_errors=True)

    @property
    def locked(self) -> bool:
        return self._lock_file is not None

    # Config -------------------------------------------------------------
    def config(self) -> dict:
        """`config.json` ({} when absent)."""
        return _read_json(self.path("config.json"), {})

    def write_config(self, record: dict) -> None:
        if not self.writer:
            return
        atomic.write_json(self.path("config.json"), record, indent=2)

    def changed_flags(self, flags: dict, changeable: Iterable[str]) -> dict:
        """`{flag: (recorded, given)}` for every flag in `flags` that differs from `config.json`.

        Flags the folder never recorded (added to kgen later) and those in
        `changeable` are not compared. Tuples compare as lists (JSON).
        """
        recorded = self.config()
        changeable = set(changeable)
        differences = {}
        for name, value in flags.items():
            value = list(value) if isinstance(value, tuple) else value
            if name in changeable or name not in recorded or recorded[name] == value:
                continue
            differences[name] = (recorded[name], value)
        return differences

    def names(self) -> tuple[Optional[str], Optional[list]]:
        """`(dataset, class_names)` recorded by the run, each None when unknown."""
        config = self.config()
        info = config.get("dataset") if isinstance(config.get("dataset"), dict) else {}
        dataset = info.get("name") or (config.get("dataset") if isinstance(config.get("dataset"), str) else None)
        return dataset or config.get("data"), config.get("class_names") or info.get("class_names")

    # Commits ------------------------------------------------------------
    @staticmethod
    def read_commit(checkpoint: str) -> Optional[Commit]:
        """The commit state inside `checkpoint` (None for a format-1 file without one).

        Raises:
            ValueError: the file is missing, truncated or not a checkpoint.
        """
        try:
            with zipfile.ZipFile(checkpoint) as archive:
                if STATE_MEMBER not in archive.namelist():
                    return None
                state = json.loads(archive.read(STATE_MEMBER))
        except (OSError, zipfile.BadZipFile, ValueError, KeyError) as error:
            raise ValueError(f"{checkpoint} is unreadable ({type(error).__name__}: "
                             f"{str(error).splitlines()[0] if str(error) else 'damaged'})") from None
        fields = {f.name for f in dataclasses.fields(Commit)}
        return Commit(**{k: v for k, v in state.items() if k in fields})

    def _legacy_commit(self) -> Commit:
        """A format-1 folder's commit: `state.json`, `history.json` and `chunks.json` beside the checkpoint."""
        state = _read_json(self.path("state.json"), None)
        if not state:
            raise ValueError(f"{self.checkpoint} has no training state inside and {self.path('state.json')} is "
                             "missing or unreadable; pass --resume false to start afresh in another folder.")
        history = _read_json(self.path("history.json"), {})
        steps = [r for r in history.get("steps", []) if r["step"] <= state["step"]]
        epochs = [r for r in history.get("epochs", []) if r["epoch"] <= state["epoch"]]
        return Commit(step=int(state["step"]), epoch=int(state["epoch"]), elapsed_s=float(state["elapsed_s"]),
                      epoch_elapsed_s=float(state.get("epoch_elapsed_s", 0.0)),
                      steps_per_epoch=state.get("steps_per_epoch"),
                      history={"steps": steps, "epochs": epochs},
                      chunks=_read_json(self.path("chunks.json"), []))

    def latest(self) -> Optional[tuple[str, Commit]]:
        """`(checkpoint, commit)` of the newest readable commit, or None when the folder holds none.

        A damaged `last.keras` falls back to `previous.keras`, with one line
        on stderr saying so.

        Raises:
            ValueError: checkpoints exist but none is readable.
        """
        found, problems = [], []
        for path in (self.checkpoint, self.previous_checkpoint):
            if not os.path.isfile(path):
                continue
            try:
                commit = self.read_commit(path)
            except ValueError as error:
                problems.append(str(error))
                continue
            if commit is None:  # format 1: only last.keras, its state beside it
                if path == self.checkpoint:
                    return path, self._legacy_commit()
                continue
            found.append((path, commit))
        if not found:
            if problems:
                raise ValueError(f"{problems[0]} and no earlier commit is readable; move the folder away to "
                                 "start afresh.")
            return None
        path, commit = max(found, key=lambda pair: pair[1].step)
        if problems:
            print(f"warning: {problems[0]}; resuming from {path} (step {commit.step}).", file=sys.stderr)
        return path, commit

    def restore(self, model: Any) -> Optional[Commit]:
        """Loads the newest readable commit into `model` (built and compiled as saved); None if there is none."""
        latest = self.latest()
        if latest is None:
            return None
        path, commit = latest
        try:
            model.load_weights(path)
        except (ValueError, KeyError, OSError) as error:
            raise ValueError(f"cannot resume from {path}: its weights do not fit this model "
                             f"({str(error).splitlines()[0] if str(error) else type(error).__name__}).") from None
        return commit

    def commit(self, model: Any, commit: Commit) -> None:
        """Writes the model and `commit` as the new `last.keras` in one rename; the views follow.

        The old `last.keras` becomes `previous.keras` first, so some
        complete commit exists at every moment. Nothing is written if any
        variable is non-finite.

        Raises:
            NonFiniteState: a variable is NaN or infinite.
            CheckpointWriteError: the disk refused the write (the previous commit stands).
        """
        bad = first_non_finite(model)
        if bad is not None:
            raise NonFiniteState(f"{bad} is not finite at step {commit.step}")
        if not self.writer:
            _take_part_in_save(model)
            return
        os.makedirs(self.path("checkpoints"), exist_ok=True)
        tmp = self.path("checkpoints", f".last.{os.getpid()}.tmp.keras")
        try:
            try:
                model.save(tmp)
                with zipfile.ZipFile(tmp, "a", compression=zipfile.ZIP_DEFLATED) as archive:
                    archive.writestr(STATE_MEMBER, json.dumps({**dataclasses.asdict(commit), **commit.state()}))
                _fsync(tmp)
                _fault_point("written")
                if os.path.isfile(self.checkpoint):
                    os.replace(self.checkpoint, self.previous_checkpoint)
                    _fault_point("rotated")
                os.replace(tmp, self.checkpoint)
                _fsync(self.path("checkpoints"))
                _fault_point("committed")
            finally:
                if os.path.exists(tmp):
                    os.remove(tmp)
            self.write_views(commit)
        except OSError as error:
            reason = os.strerror(error.errno) if error.errno else str(error)
            kept = "the previous commit is intact" if os.path.isfile(self.checkpoint) else "no commit was written"
            hint = " (free some space, then rerun the same command to resume)" if error.errno == errno.ENOSPC else ""
            raise CheckpointWriteError(f"cannot write the checkpoint of step {commit.step} in {self.root}: "
                                       f"{reason}; {kept}{hint}.") from None

    # Views --------------------------------------------------------------
    def write_views(self, commit: Commit) -> None:
        """`chunks.json`, `history.json`, `history_steps.csv` and `state.json` of `commit`."""
        if not self.writer:
            return
        atomic.write_json(self.path("chunks.json"), commit.chunks, indent=2)
        atomic.write_json(self.path("history.json"), commit.history, indent=2)
        self.write_csv("history_steps.csv", commit.history["steps"])
        atomic.write_json(self.path("state.json"), commit.state(), indent=2)

    def write_csv(self, name: str, rows: list) -> None:
        if not self.writer:
            return
        fields = list(dict.fromkeys(k for r in rows for k in r))
        with atomic.atomic_path(self.path(name)) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)

    def write_json(self, name: str, obj: Any) -> None:
        if not self.writer:
            return
        atomic.write_json(self.path(name), obj, indent=2)

    def write_text(self, name: str, text: str) -> None:
        if not self.writer:
            return
        atomic.write_text(self.path(name), text)

    # Readers for consumers (export, studies, reports) ------------------
    def read(self, name: str) -> dict:
        """One of the JSON views (`config`, `summary`, `history`, `state`, `warm_start`), {} when absent."""
        return _read_json(self.path(f"{name}.json"), {})

    def state(self) -> dict:
        """The latest commit's state (`state.json` view when the checkpoint is not readable here)."""
        try:
            latest = self.latest()
        except ValueError:
            latest = None
        return latest[1].state() if latest else self.read("state")

    def chunks(self) -> list:
        try:
            latest = self.latest()
        except ValueError:
            latest = None
        return latest[1].chunks if latest else _read_json(self.path("chunks.json"), [])

    def steps_per_epoch(self, state: dict) -> float:
        """Steps per epoch: the commit's record, else the first epoch of the history, else config's count.

        A run stopped inside its first epoch has no other record; the
        pipelines drop the last partial batch (examples // batch).
        """
        if state.get("steps_per_epoch"):
            return state["steps_per_epoch"]
        epochs = self.read("history").get("epochs", [])
        if epochs:
            return epochs[0]["step"]
        config = self.config()
        if config.get("num_examples") and config.get("batch_size"):
            return max(1, config["num_examples"] // config["batch_size"])
        return state["step"] / state["epoch"] if state.get("epoch") else state["step"]

    def training_record(self) -> dict:
        """How long the run trained: `{epochs, steps, train_time_s, backend, chunks, images_seen}` (None if unknown).

        Epochs are counted from steps when the commit is there: a time
        budget stops a run inside an epoch (770 steps of 390 are 1.97 epochs).
        """
        summary, state = self.read("summary"), self.state()
        if state and state["step"] >= summary.get("steps", -1):
            summary = {**summary, "epochs": state["step"] / max(1, self.steps_per_epoch(state)),
                       "steps": state["step"], "total_time_s": state["elapsed_s"]}
        batch = self.config().get("batch_size")
        steps = summary.get("steps")
        return {"epochs": summary.get("epochs"), "steps": steps, "train_time_s": summary.get("total_time_s"),
                "backend": summary.get("backend") or self.config().get("backend"), "chunks": self.chunks(),
                "images_seen": steps * batch if steps is not None and batch else None}


def _take_part_in_save(model: Any) -> None:
    """What a reader does when the chief commits: under JAX and TensorFlow, save too (to a scratch file, removed).

    Saving is a collective there: reading a weight of a multi-process JAX run
    involves every process, and a variable made under TensorFlow's
    multi-worker strategy is broadcast from the chief. Each process must make
    the chief's calls in the chief's order; torch's saving is local.
    """
    import tempfile

    import keras

    if keras.backend.backend() != "torch":
        with tempfile.TemporaryDirectory() as scratch:
            model.save(os.path.join(scratch, "model.keras"))


def _fsync(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_FAULTS_SEEN: dict = {}


def _fault_point(name: str) -> None:
    """Test hook: `KGEN_FAULT_AT=<name>:<n>` SIGKILLs the process the n-th time a commit reaches `name`.

    The points are `written` (the new file complete under its temporary
    name), `rotated` (the old `last.keras` renamed to `previous.keras`) and
    `committed` (the new `last.keras` in place, its views not yet written).
    """
    target, _, count = os.environ.get("KGEN_FAULT_AT", "").partition(":")
    if target == name:
        _FAULTS_SEEN[name] = _FAULTS_SEEN.get(name, 0) + 1
        if _FAULTS_SEEN[name] == int(count or 1):
            import signal

            os.kill(os.getpid(), signal.SIGKILL)


def open_run(config: Any, changeable: Iterable[str] = CHANGEABLE_FLAGS) -> RunFolder:
    """Locks `config.output_dir` and checks a resume's flags against the folder's; call before loading data.

    A rerun that would resume (`config.resume` and a checkpoint in the
    folder) with training flags other than those recorded in `config.json`
    is refused with one line listing them, unless `config.override_flags`;
    then the differences are kept in `folder.overrides` (the recorder puts
    them in `chunks.json`).

    Under a multi-process launch (`kgen.utils.launch`) only the chief
    locks and writes; the other processes open the folder as readers.

    Raises:
        RunFolderInUse: another process trains in the folder.
        ValueError: the flags differ and no override was given.
    """
    from kgen.utils.launch import launch_from_environment

    folder = RunFolder(config.output_dir, writer=launch_from_environment().chief).lock()
    folder.overrides = {}
    if getattr(config, "resume", True) and os.path.isfile(folder.checkpoint):
        flags = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
        changed = folder.changed_flags(flags, changeable)
        if changed and not getattr(config, "override_flags", False):
            folder.unlock()
            listed = "; ".join(f"--{k.replace('_', '-')} {b} (recorded: {a})" for k, (a, b) in changed.items())
            raise ValueError(f"{folder.root} was trained with other flags: {listed}. Rerun with the recorded "
                             "values, or add --override-flags true to change them (recorded in chunks.json).")
        folder.overrides = changed
    return folder
