"""RunRecorder: the Keras callback that records a training run in its `RunFolder`."""

import dataclasses
import math
import os
import shlex
import time
from typing import Any, Callable, Optional, Union

import keras
import numpy as np

from kgen.backend.processes import any_process, current_launch
from kgen.runs.run_folder import Commit, NonFiniteState, RunFolder
from kgen.runs.tensorboard import TensorBoardLog
from kgen.trainers import GenerativeTrainer
from kgen.utils import images as image_utils
from kgen.utils import plots
from kgen.utils.commands import portable_argv


def run_record(config: Any, info: Any, **extra: Any) -> dict:
    """A run folder's `config.json`: one schema for every recipe.

    Keys: every field of the recipe's config dataclass (the flags; tuples
    become lists), then `backend`, `dtype_policy`, `dataset` (the name as
    given), `image_shape`, `class_names` and `num_examples` from the
    pipeline's `DatasetInfo`, then `extra` (e.g. `parameters`). Readers go
    through `RunFolder`, which also reads older layouts.
    """
    record = {key: list(value) if isinstance(value, tuple) else value
              for key, value in dataclasses.asdict(config).items()}
    record.update(backend=keras.backend.backend(), dtype_policy=keras.config.dtype_policy().name,
                  dataset=info.name, image_shape=list(info.image_shape), class_names=list(info.class_names),
                  num_examples=info.num_examples)
    record.update(extra)
    return record


class RunRecorder(keras.callbacks.Callback):
    """Records a training run in a folder and resumes it after a kill.

    Writes, after every epoch, and a checkpoint every `checkpoint_every`
    minutes inside an epoch as well (so a hard kill loses at most that much):

    - `history_steps.csv`, `history_epochs.csv`, `history.json`: every value
      the trainer reports, per step and as epoch means, with epoch times;
    - `losses.png` (the model's `loss_keys` if it declares them, else every
      key containing "loss") and `metrics.png` (the rest);
    - `summary.json` and `summary.md`: the minimum of each loss, per step and
      per epoch, with where it occurred; time per epoch and in total;
    - `samples/epoch_NNN.png`: a grid from `sample_fn` (e.g. a fixed latent
      batch), and `samples/last.png`;
    - `checkpoints/last.keras`: one atomic commit of the model and the
      training state (`RunFolder.commit`), and its views `state.json`,
      `history.json`;
    - `chunks.json`: one entry per process that trained the run (command,
      backend, dtype policy, first and last step, seconds, images);
    - `tensorboard/`: the same per-step and per-epoch values and the sample
      grids as TensorBoard event files (`tensorboard --logdir runs/`); a view
      like the CSVs (steps retrained after a kill appear twice there).

    Args:
        run_dir: str or `RunFolder`. Output folder, created if needed.
        sample_fn: callable or None. `sample_fn(model)` returns images in
            [-1, 1], shape (N, H, W, C), drawn after every epoch.
            Defaults to `None`.
        batch_size: int or None. Used to report images per second.
            Defaults to `None`.
        config: dict or None. Written to `config.json`. Defaults to `None`.
        checkpoint_every: float or None. Minutes between checkpoints inside
            an epoch; None writes them at epoch ends only. Defaults to `10`.
        time_budget: float or None. Minutes of training after which the run
            stops at the next step boundary, checkpointed. Defaults to `None`.
        epoch_measures: callable or None. `epoch_measures(model)` returns a
            dict of floats added to each epoch's row (and to `metrics.png`),
            e.g. a `GeneralizationProbe`. Defaults to `None`.

    A non-finite loss stops the run at once (`diverged` says where) and
    leaves the last commit as it was; a commit refuses any non-finite
    variable (weights, BatchNorm statistics, optimizer slots) and stops the
    run the same way, so every commit holds finite numbers.

    Example:
    >>> recorder = RunRecorder("runs/dcgan", sample_fn=lambda m: m.generate(z))
    >>> start = recorder.restore(model)  # 0, or the epochs already done
    >>> model.fit(ds, epochs=10, initial_epoch=start, callbacks=[recorder])
    """

    def __init__(self, run_dir: Union[str, RunFolder], sample_fn: Optional[Callable] = None,
                 batch_size: Optional[int] = None, config: Optional[dict] = None,
                 checkpoint_every: Optional[float] = 10.0, time_budget: Optional[float] = None,
                 epoch_measures: Optional[Callable] = None):
        super().__init__()
        for name, value in (("checkpoint_every", checkpoint_every), ("time_budget", time_budget)):
            if value is not None and not float(value) > 0:
                raise ValueError(f"{name} must be a positive number of minutes or None; got {value}.")
        self.folder = run_dir if isinstance(run_dir, RunFolder) else RunFolder(run_dir)
        self.run_dir = self.folder.root
        self.tensorboard = TensorBoardLog(self.folder.path("tensorboard"), enabled=self.folder.writer)
        self.sample_fn = sample_fn
        self.batch_size = batch_size
        self.config = config
        self.epoch_measures = epoch_measures
        self.checkpoint_every = None if checkpoint_every is None else float(checkpoint_every)
        self.time_budget = None if time_budget is None else float(time_budget)
        self.steps_per_epoch = None  # set by fit_resumable: epochs are then counted in steps
        self.total_steps = None
        self.step_rows = []
        self.epoch_rows = []
        self.step = 0
        self.elapsed_before = 0.0
        self.epoch_elapsed_before = 0.0
        self.diverged = None  # (step, key, value) of the first non-finite loss or variable
        self.budget_reached = False
        self.overrides = {}  # flags changed on resume with --override-flags, for chunks.json
        self.prior_chunks = []
        self.committed_step = None  # the step of the folder's latest commit
        self._restored = False
        self._began = False

    def path(self, *parts: str) -> str:
        return self.folder.path(*parts)

    @property
    def checkpoint_path(self) -> str:
        return self.folder.checkpoint

    # Resume -------------------------------------------------------------
    def restore(self, model: keras.Model) -> int:
        """Loads the folder's latest commit (weights, optimizer, history); returns the epochs done.

        Returns 0 (and changes nothing) when the folder holds no checkpoint.
        The model must be built and compiled like the one that was saved.
        """
        commit = self.folder.restore(model)
        if commit is None:
            return 0
        self.step = commit.step
        self.elapsed_before = commit.elapsed_s
        self.epoch_elapsed_before = commit.epoch_elapsed_s
        self.step_rows = [r for r in commit.history.get("steps", []) if r["step"] <= self.step]
        self.epoch_rows = [r for r in commit.history.get("epochs", []) if r["epoch"] <= commit.epoch]
        self.prior_chunks = list(commit.chunks)
        self.committed_step = commit.step
        self._restored = True
        return commit.epoch

    # Callback hooks -----------------------------------------------------
    def on_train_begin(self, logs: Optional[dict] = None) -> None:
        if self._began:  # a later fit() of the same run (fit_resumable after a partial epoch)
            return
        self._began = True
        self.folder.lock()  # one writer per folder (taken before the data by `open_run` in the recipes)
        if self.folder.writer:
            os.makedirs(self.path("checkpoints"), exist_ok=True)
            os.makedirs(self.path("samples"), exist_ok=True)
        if not self._restored:
            self.step_rows, self.epoch_rows, self.step = [], [], 0
            self.elapsed_before = 0.0
        if self.config is not None:
            self.folder.write_config(self.config)
        self._train_start = time.perf_counter()
        self._chunks = list(self.prior_chunks)
        self._chunks.append({
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": shlex.join(portable_argv()),
            "backend": keras.backend.backend(), "dtype_policy": keras.config.dtype_policy().name,
            "step_start": self.step, "step_end": self.step, "seconds": 0.0,
        })
        if current_launch().several:
            self._chunks[-1]["processes"] = current_launch().count
        if self.overrides:
            self._chunks[-1]["overrides"] = {k: {"recorded": a, "given": b} for k, (a, b) in self.overrides.items()}
        self._last_save = self._train_start

    # In a stream (`steps_per_epoch` set by fit_resumable) the epochs are
    # counted in steps, so a run resumed mid-epoch ends its epochs where an
    # uninterrupted one does; Keras' own epochs then only pace the progress bar.
    @property
    def _streaming(self):
        return self.steps_per_epoch is not None

    def _begin_epoch(self, number):
        self._epoch = number
        # A resumed epoch keeps its rows and time from before the interruption.
        resumed = self.step_rows and self.step_rows[-1]["epoch"] == number
        self._epoch_start = time.perf_counter() - (self.epoch_elapsed_before if resumed else 0.0)
        self.epoch_elapsed_before = 0.0
        self._epoch_first_row = next(
            (i for i, r in enumerate(self.step_rows) if r["epoch"] == number), len(self.step_rows)
        )

    def on_epoch_begin(self, epoch: int, logs: Optional[dict] = None) -> None:
        if not self._streaming:
            self._begin_epoch(epoch + 1)
        elif getattr(self, "_epoch", None) is None:
            self._begin_epoch(self.step // self.steps_per_epoch + 1)

    def on_train_batch_end(self, batch: int, logs: Optional[dict] = None) -> None:
        self.step += 1
        row = {"step": self.step, "epoch": self._epoch}
        for key, value in (logs or {}).items():
            row[key] = float(keras.ops.convert_to_numpy(value))
        self.step_rows.append(row)
        self.tensorboard.scalars({k: v for k, v in row.items() if k not in ("step", "epoch")}, self.step)
        bad = next((k for k, v in row.items() if self._is_loss(k) and not math.isfinite(v)), None)
        if bad is not None:
            self.diverged = (self.step, bad, row[bad])
            self.model.stop_training = True
            self.folder.write_csv("history_steps.csv", self.step_rows)  # the non-finite row included, for the record
            return
        epoch_ended = self._streaming and self.step % self.steps_per_epoch == 0
        if epoch_ended:
            self._end_epoch(self._epoch)  # writes a checkpoint
            if self.diverged is not None:
                return
            if self.total_steps is not None and self.step >= self.total_steps:
                self.model.stop_training = True
                return
            self._begin_epoch(self._epoch + 1)
        now = time.perf_counter()
        over_budget = self.time_budget is not None and now - self._train_start >= 60.0 * self.time_budget
        save = self.checkpoint_every is not None and now - self._last_save >= 60.0 * self.checkpoint_every
        # Several processes stop and check their state at the same step: the chief's clock, or any's, decides.
        over_budget, save = any_process([over_budget, save])
        if over_budget:
            self.budget_reached = True
            self.model.stop_training = True
            if not epoch_ended:
                self._save_checkpoint(self.epochs_done())
            return
        if save:
            self._save_checkpoint(self.epochs_done())

    def epochs_done(self) -> int:
        """Whole epochs finished (the epoch in progress counts once it ends)."""
        if self._streaming:
            return self.step // self.steps_per_epoch
        return len(self.epoch_rows)

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        if not self._streaming and self.diverged is None and not self.budget_reached:
            self._end_epoch(epoch + 1, logs)

    def _end_epoch(self, number, logs=None):
        seconds = time.perf_counter() - self._epoch_start
        rows = self.step_rows[self._epoch_first_row :]
        keys = [k for k in (rows[0] if rows else {}) if k not in ("step", "epoch")]
        row = {"epoch": number, "step": self.step}
        for key in keys:
            row[key] = float(np.mean([r[key] for r in rows]))
        for key, value in (logs or {}).items():
            if key not in row:  # epoch-only values such as val_loss
                row[key] = float(keras.ops.convert_to_numpy(value))
                keys.append(key)
        if self.epoch_measures is not None:
            for key, value in self.epoch_measures(self.model).items():
                row[key] = float(value)
                if key not in keys:
                    keys.append(key)
        row["time_s"] = seconds
        if self.batch_size and seconds > 0:
            row["images_per_s"] = len(rows) * self.batch_size / seconds
        self.epoch_rows.append(row)

        self.tensorboard.scalars({k: v for k, v in row.items() if k not in ("step", "epoch")}, self.step, "epoch/")
        if self.sample_fn is not None:
            # Every process samples (under JAX the weights are arrays of every process); the chief writes.
            samples = keras.ops.convert_to_numpy(self.sample_fn(self.model))
        if self.sample_fn is not None and self.folder.writer:
            name = self.path("samples", f"epoch_{number:03d}.png")
            image_utils.save_grid(samples, name)
            image_utils.save_grid(samples, self.path("samples", "last.png"))
            self.tensorboard.image("samples", image_utils.make_grid(image_utils.to_uint8(samples)), self.step)
        self._save_checkpoint(number)
        if self.diverged is None:
            self._write_history(keys)

    def on_train_end(self, logs: Optional[dict] = None) -> None:
        if self.step_rows and self.diverged is None:
            self._write_summary()
        self.tensorboard.close()
        self.folder.unlock()

    # Writers ------------------------------------------------------------
    def elapsed(self) -> float:
        return self.elapsed_before + time.perf_counter() - self._train_start

    def _is_loss(self, key):
        if isinstance(self.model, GenerativeTrainer):
            return key in self.model.loss_keys or key.removeprefix("val_") in self.model.loss_keys
        return "loss" in key  # any other keras.Model (the dataset classifiers)

    def _write_history(self, keys):
        if not self.folder.writer:
            return
        self.folder.write_csv("history_steps.csv", self.step_rows)
        self.folder.write_csv("history_epochs.csv", self.epoch_rows)
        loss_keys = [k for k in keys if self._is_loss(k)]
        other_keys = [k for k in keys if not self._is_loss(k) and k not in ("time_s", "images_per_s")]
        if loss_keys:
            plots.plot_history(self.step_rows, self.epoch_rows, loss_keys, self.path("losses.png"), "losses")
        if other_keys:
            plots.plot_history(self.step_rows, self.epoch_rows, other_keys, self.path("metrics.png"), "metrics")
        self._write_summary()

    def _save_checkpoint(self, epoch, epoch_elapsed=None):
        if epoch_elapsed is None:
            epoch_elapsed = time.perf_counter() - self._epoch_start if self.step % (self.steps_per_epoch or 1) else 0.0
        # Every process that trained this run is one chunk: command, steps, seconds.
        chunk = dict(self._chunks[-1], step_end=self.step, seconds=time.perf_counter() - self._train_start,
                     images=(self.step - self._chunks[-1]["step_start"]) * (self.batch_size or 0))
        commit = Commit(step=self.step, epoch=epoch, elapsed_s=self.elapsed(), epoch_elapsed_s=epoch_elapsed,
                        steps_per_epoch=self.steps_per_epoch, chunks=[*self._chunks[:-1], chunk],
                        history={"steps": list(self.step_rows), "epochs": list(self.epoch_rows)})
        try:
            self.folder.commit(self.model, commit)
        except NonFiniteState as error:
            self.diverged = (self.step, str(error).split(" is not finite")[0], "a non-finite value")
            self.model.stop_training = True
            return
        self._chunks[-1] = chunk
        self.committed_step = self.step
        self.tensorboard.flush()
        self._last_save = time.perf_counter()

    def summary(self) -> dict:
        """Minimum of every loss per step and per epoch, and the timings.

        A run stopped inside its first epoch reports its steps alone
        (`epochs` 0, no epoch minima).
        """
        last = self.epoch_rows[-1] if self.epoch_rows else (self.step_rows[-1] if self.step_rows else {})
        keys = [k for k in last if self._is_loss(k)]
        losses = {}
        for key in keys:
            steps = [r for r in self.step_rows if not math.isnan(r.get(key, math.nan))]
            epochs = [r for r in self.epoch_rows if key in r]
            best_epoch = min(epochs, key=lambda r: r[key]) if epochs else {}
            losses[key] = {
                "min_step_value": None,
                "min_step": None,
                "min_step_epoch": None,
                "min_epoch_mean": best_epoch.get(key),
                "min_epoch": best_epoch.get("epoch"),
                "final_epoch_mean": self.epoch_rows[-1].get(key) if self.epoch_rows else None,
            }
            if steps:  # epoch-only values (val_loss) have no per-step minimum
                best_step = min(steps, key=lambda r: r[key])
                losses[key].update(
                    min_step_value=best_step[key],
                    min_step=best_step["step"],
                    min_step_epoch=best_step["epoch"],
                )
        times = [r["time_s"] for r in self.epoch_rows]
        return {
            "epochs": self.epoch_rows[-1]["epoch"] if self.epoch_rows else 0,
            "steps": self.step,
            "losses": losses,
            "epoch_time_s": times,
            "total_time_s": self.elapsed(),
            "backend": keras.backend.backend(),
        }

    def _write_summary(self):
        summary = self.summary()
        self.folder.write_json("summary.json", summary)
        lines = [
            f"# Run summary ({summary['epochs']} epochs, {summary['steps']} steps, "
            f"backend {summary['backend']})",
            "",
            "| loss | min per step (step, epoch) | min epoch mean (epoch) | final epoch mean |",
            "| --- | --- | --- | --- |",
        ]
        for key, s in summary["losses"].items():
            per_step = (
                f"{s['min_step_value']:.4f} ({s['min_step']}, {s['min_step_epoch']})"
                if s["min_step"] is not None
                else "(epoch only)"
            )
            per_epoch = (f"{s['min_epoch_mean']:.4f} ({s['min_epoch']}) | {s['final_epoch_mean']:.4f}"
                         if s["min_epoch"] is not None else "(no whole epoch yet) | ")
            lines.append(f"| {key} | {per_step} | {per_epoch} |")
        times = summary["epoch_time_s"]
        per_epoch_time = (f"Time per epoch: {', '.join(f'{t:.1f}' for t in times)} s (mean {np.mean(times):.1f} s); "
                          if times else "")
        lines += ["", f"{per_epoch_time}total {summary['total_time_s']:.1f} s."]
        self.folder.write_text("summary.md", "\n".join(lines) + "\n")
