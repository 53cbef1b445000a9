"""RunRecorder: the run directory every kgen recipe writes."""

import csv
import enum
import json
import math
import os
import shlex
import sys
import time

import keras
import numpy as np

from kgen.utils import atomic, plots
from kgen.utils import images as image_utils


def run_record(config, info, **extra):
    """A run folder's `config.json`: one schema for every recipe.

    Keys: every field of the recipe's config dataclass (the flags; tuples
    become lists), then `backend`, `dtype_policy`, `dataset` (the name as
    given), `image_shape`, `class_names` and `num_examples` from the
    pipeline's `DatasetInfo`, then `extra` (e.g. `parameters`). Readers go
    through `kgen.trainers.run_names`, which also reads older layouts.
    """
    import dataclasses

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
    - `checkpoints/last.keras` (written atomically) and `state.json`;
    - `chunks.json`: one entry per process that trained the run (command,
      backend, dtype policy, first and last step, seconds, images).

    Args:
        run_dir: str. Output folder, created if needed.
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
    leaves the last checkpoint as it was: NaN weights are never saved.

    Example:
    >>> recorder = RunRecorder("runs/dcgan", sample_fn=lambda m: m.generate(z))
    >>> start = recorder.restore(model)  # 0, or the epochs already done
    >>> model.fit(ds, epochs=10, initial_epoch=start, callbacks=[recorder])
    """

    def __init__(self, run_dir, sample_fn=None, batch_size=None, config=None, checkpoint_every=10.0,
                 time_budget=None, epoch_measures=None):
        super().__init__()
        for name, value in (("checkpoint_every", checkpoint_every), ("time_budget", time_budget)):
            if value is not None and not float(value) > 0:
                raise ValueError(f"{name} must be a positive number of minutes or None; got {value}.")
        self.run_dir = run_dir
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
        self.diverged = None  # (step, key, value) of the first non-finite loss
        self.budget_reached = False
        self._restored = False
        self._began = False

    # Paths --------------------------------------------------------------
    def path(self, *parts):
        return os.path.join(self.run_dir, *parts)

    @property
    def checkpoint_path(self):
        return self.path("checkpoints", "last.keras")

    # Resume -------------------------------------------------------------
    def restore(self, model):
        """Loads the last checkpoint and history; returns the epochs done.

        Returns 0 (and changes nothing) when the folder holds no checkpoint.
        The model must be built and compiled like the one that was saved.
        """
        state_file = self.path("state.json")
        if not (os.path.isfile(state_file) and os.path.isfile(self.checkpoint_path)):
            return 0
        with open(state_file) as f:
            state = json.load(f)
        model.load_weights(self.checkpoint_path)
        self.step = int(state["step"])
        self.elapsed_before = float(state["elapsed_s"])
        self.epoch_elapsed_before = float(state.get("epoch_elapsed_s", 0.0))
        history_file = self.path("history.json")
        if os.path.isfile(history_file):
            with open(history_file) as f:
                history = json.load(f)
            self.step_rows = [r for r in history.get("steps", []) if r["step"] <= self.step]
            self.epoch_rows = [r for r in history.get("epochs", []) if r["epoch"] <= state["epoch"]]
        self._restored = True
        return int(state["epoch"])

    # Callback hooks -----------------------------------------------------
    def on_train_begin(self, logs=None):
        if self._began:  # a later fit() of the same run (fit_resumable after a partial epoch)
            return
        self._began = True
        os.makedirs(self.path("checkpoints"), exist_ok=True)
        os.makedirs(self.path("samples"), exist_ok=True)
        if not self._restored:
            self.step_rows, self.epoch_rows, self.step = [], [], 0
            self.elapsed_before = 0.0
        if self.config is not None:
            self._write_json("config.json", self.config)
        self._train_start = time.perf_counter()
        self._chunks = self._read_json("chunks.json", [])
        self._chunks.append({
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": shlex.join(sys.argv),
            "backend": keras.backend.backend(), "dtype_policy": keras.config.dtype_policy().name,
            "step_start": self.step, "step_end": self.step, "seconds": 0.0,
        })
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

    def on_epoch_begin(self, epoch, logs=None):
        if not self._streaming:
            self._begin_epoch(epoch + 1)
        elif getattr(self, "_epoch", None) is None:
            self._begin_epoch(self.step // self.steps_per_epoch + 1)

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        row = {"step": self.step, "epoch": self._epoch}
        for key, value in (logs or {}).items():
            row[key] = float(keras.ops.convert_to_numpy(value))
        self.step_rows.append(row)
        bad = next((k for k, v in row.items() if self._is_loss(k) and not math.isfinite(v)), None)
        if bad is not None:
            self.diverged = (self.step, bad, row[bad])
            self.model.stop_training = True
            self._write_csv("history_steps.csv", self.step_rows)  # the non-finite row included, for the record
            return
        epoch_ended = self._streaming and self.step % self.steps_per_epoch == 0
        if epoch_ended:
            self._end_epoch(self._epoch)  # writes a checkpoint
            if self.total_steps is not None and self.step >= self.total_steps:
                self.model.stop_training = True
                return
            self._begin_epoch(self._epoch + 1)
        now = time.perf_counter()
        if self.time_budget is not None and now - self._train_start >= 60.0 * self.time_budget:
            self.budget_reached = True
            self.model.stop_training = True
            if not epoch_ended:
                self._save_checkpoint(self.epochs_done())
            return
        if self.checkpoint_every is not None and now - self._last_save >= 60.0 * self.checkpoint_every:
            self._save_checkpoint(self.epochs_done())

    def epochs_done(self):
        """Whole epochs finished (the epoch in progress counts once it ends)."""
        if self._streaming:
            return self.step // self.steps_per_epoch
        return len(self.epoch_rows)

    def on_epoch_end(self, epoch, logs=None):
        if not self._streaming and self.diverged is None:
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

        if self.sample_fn is not None:
            samples = keras.ops.convert_to_numpy(self.sample_fn(self.model))
            name = self.path("samples", f"epoch_{number:03d}.png")
            image_utils.save_grid(samples, name)
            image_utils.save_grid(samples, self.path("samples", "last.png"))
        self._write_history(keys)
        self._save_checkpoint(number)

    def on_train_end(self, logs=None):
        if self.epoch_rows and self.diverged is None:
            self._write_summary()

    # Writers ------------------------------------------------------------
    def elapsed(self):
        return self.elapsed_before + time.perf_counter() - self._train_start

    def _write_json(self, name, obj):
        atomic.write_json(self.path(name), obj, indent=2)

    def _read_json(self, name, default):
        try:
            with open(self.path(name)) as f:
                return json.load(f)
        except (OSError, ValueError):
            return default

    def _write_csv(self, name, rows):
        fields = list(dict.fromkeys(k for r in rows for k in r))
        with atomic.atomic_path(self.path(name)) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)

    def _is_loss(self, key):
        from kgen.trainers import GenerativeTrainer

        if isinstance(self.model, GenerativeTrainer):
            return key in self.model.loss_keys or key.removeprefix("val_") in self.model.loss_keys
        return "loss" in key  # any other keras.Model (the dataset classifiers)

    def _write_history(self, keys):
        self._write_csv("history_steps.csv", self.step_rows)
        self._write_csv("history_epochs.csv", self.epoch_rows)
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
        with atomic.atomic_path(self.checkpoint_path) as tmp:
            self.model.save(tmp)
        # Every process that trained this run is one chunk: command, steps, seconds.
        self._chunks[-1].update(step_end=self.step, seconds=time.perf_counter() - self._train_start,
                                images=(self.step - self._chunks[-1]["step_start"]) * (self.batch_size or 0))
        self._write_json("chunks.json", self._chunks)
        # The history goes first: state.json names a step the history holds.
        self._write_json("history.json", {"steps": self.step_rows, "epochs": self.epoch_rows})
        self._write_csv("history_steps.csv", self.step_rows)
        self._write_json(
            "state.json", {"epoch": epoch, "step": self.step, "elapsed_s": self.elapsed(),
                           "epoch_elapsed_s": epoch_elapsed, "steps_per_epoch": self.steps_per_epoch}
        )
        self._last_save = time.perf_counter()

    def summary(self):
        """Minimum of every loss per step and per epoch, and the timings."""
        keys = [k for k in self.epoch_rows[-1] if self._is_loss(k)]
        losses = {}
        for key in keys:
            steps = [r for r in self.step_rows if not math.isnan(r.get(key, math.nan))]
            epochs = [r for r in self.epoch_rows if key in r]
            best_epoch = min(epochs, key=lambda r: r[key])
            losses[key] = {
                "min_step_value": None,
                "min_step": None,
                "min_step_epoch": None,
                "min_epoch_mean": best_epoch[key],
                "min_epoch": best_epoch["epoch"],
                "final_epoch_mean": self.epoch_rows[-1][key],
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
            "epochs": self.epoch_rows[-1]["epoch"],
            "steps": self.step,
            "losses": losses,
            "epoch_time_s": times,
            "total_time_s": self.elapsed(),
            "backend": keras.backend.backend(),
        }

    def _write_summary(self):
        summary = self.summary()
        self._write_json("summary.json", summary)
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
            lines.append(
                f"| {key} | {per_step} | {s['min_epoch_mean']:.4f} ({s['min_epoch']}) "
                f"| {s['final_epoch_mean']:.4f} |"
            )
        times = summary["epoch_time_s"]
        lines += [
            "",
            f"Time per epoch: {', '.join(f'{t:.1f}' for t in times)} s "
            f"(mean {np.mean(times):.1f} s); total {summary['total_time_s']:.1f} s.",
        ]
        atomic.write_text(self.path("summary.md"), "\n".join(lines) + "\n")


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the run folder keeps its last good checkpoint."""

    exit_status = 3  # what a command's entry point exits with (kgen.utils.cli.exit_on_bad_input)


def warm_start(model, path):
    """Loads the weights of an earlier model into `model`; returns a line saying what was loaded.

    `path` is a kgen checkpoint of the same model (`.keras`: every network,
    EMA included) or a kgen export of one of its parts (`.onnx`: e.g. a
    denoiser's EMA weights, which a DDPM trains on from; the other networks
    and the optimizer start fresh).
    """
    if not (isinstance(path, str) and path.endswith((".keras", ".onnx")) and os.path.isfile(path)):
        raise ValueError(f"--init-from must be an existing .keras checkpoint or kgen .onnx export of the "
                         f"same model; got {path!r}.")
    if path.endswith(".onnx"):
        error = model.load_export(path)
        return f"Warm start from {path} (the file and the loaded network differ by at most {error:.2g})."
    try:
        model.load_weights(path)
    except (ValueError, KeyError) as error:
        raise ValueError(f"cannot warm-start from {path}: its weights do not fit this model "
                         f"({str(error).splitlines()[0]}).") from None
    return f"Warm start from {path}."


def prior_training(path):
    """What trained the model in `path` (`.onnx`: its card; `.keras`: its run folder), for `warm_start.json`."""
    from kgen.export.onnx_export import run_history

    if path.endswith(".onnx"):
        card_path = os.path.splitext(path)[0] + ".json"
        card = {}
        if os.path.isfile(card_path):
            with open(card_path) as f:
                card = json.load(f)
        history = {k: card.get(k) for k in ("epochs", "steps", "train_time_s", "images_seen")}
        history["chunks"] = card.get("chunks", [])
    else:
        history = run_history(os.path.dirname(os.path.dirname(os.path.abspath(path))))
        history.pop("backend")
        from kgen.trainers.checkpoints import run_config

        batch = run_config(path).get("batch_size")
        history["images_seen"] = history["steps"] * batch if history["steps"] is not None and batch else None
    return {"from": os.path.abspath(path), **history}


class FitStatus(enum.Enum):
    """How `fit_resumable` ended."""

    NOTHING_TO_DO = "nothing to do"
    FINISHED = "finished"
    TIME_BUDGET = "time budget reached"
    INTERRUPTED = "interrupted"

    @property
    def exit_status(self):
        """The conventional exit status of a command that ended this way (130: SIGINT)."""
        return 130 if self is FitStatus.INTERRUPTED else 0


def fit_resumable(model, dataset, recorder, epochs, description, resume=True, init_from=None,
                  continue_command=None, validation_data=None):
    """The recipes' training run: resume, fit in time-budgeted chunks, stop cleanly.

    The data is read as one stream (`dataset.repeat()`), so a run resumed
    after step s (from an epoch-end or an interval checkpoint) continues with
    batch s + 1 of the same stream: the data order of an uninterrupted run.

    Args:
        model: a compiled kgen trainer.
        dataset: a finite `tf.data.Dataset` of whole batches (one epoch).
        recorder: `RunRecorder` of the run folder; its `time_budget` and
            `checkpoint_every` apply.
        epochs: int. Total epochs, counting resumed ones.
        description: str. One line printed before training.
        resume: bool. Continue from the run folder's checkpoint. Defaults to `True`.
        init_from: str or None. A `.keras` checkpoint or kgen `.onnx` export
            whose weights start a run that has nothing to resume (see
            `warm_start`); its training history goes to `warm_start.json`.
            Defaults to `None`.
        continue_command: str or None. Printed when the time budget ends
            the run. Defaults to `None`.
        validation_data: a finite `tf.data.Dataset` or None. Evaluated at
            each epoch end (`val_` keys in the history). Defaults to `None`.

    Returns:
        `FitStatus`: `NOTHING_TO_DO`, `FINISHED`, `TIME_BUDGET` (checkpoint
        written; the same command continues) or `INTERRUPTED` (Ctrl-C; the
        last checkpoint stands). The command decides the exit status.

    Raises:
        TrainingDiverged: a loss became non-finite.
    """
    from kgen.utils.cli import progress_verbosity

    run_dir = recorder.run_dir
    steps_per_epoch = int(dataset.cardinality())
    if steps_per_epoch < 1:
        raise ValueError("the dataset must be finite and hold at least one whole batch "
                         f"(cardinality {steps_per_epoch}).")
    recorder.steps_per_epoch = steps_per_epoch
    if resume:
        recorder.restore(model)
    done = recorder.step
    if done >= epochs * steps_per_epoch:
        print(f"{run_dir} already holds {done // steps_per_epoch} epochs; nothing to do.")
        return FitStatus.NOTHING_TO_DO
    if done:
        print(f"Resuming {run_dir} after step {done} (epoch {done // steps_per_epoch + 1}, "
              f"step {done % steps_per_epoch} of {steps_per_epoch}).")
    elif init_from:
        print(warm_start(model, init_from))
        # Recorded before training, so the model card counts the earlier model's training too.
        prior = prior_training(init_from)
        os.makedirs(run_dir, exist_ok=True)
        atomic.write_json(os.path.join(run_dir, "warm_start.json"), prior)
    print(description)
    recorder.total_steps = epochs * steps_per_epoch
    first = done // steps_per_epoch
    try:
        # One iterator over one stream for the whole chunk: tf.data reshuffles
        # per iterator, so a second fit() would see another order.
        model.fit(dataset.repeat().skip(done), initial_epoch=first,
                  epochs=first + math.ceil((recorder.total_steps - done) / steps_per_epoch),
                  steps_per_epoch=steps_per_epoch, callbacks=[recorder], verbose=progress_verbosity(),
                  shuffle=False, validation_data=validation_data)
        done = recorder.step
    except KeyboardInterrupt:
        print(f"\nInterrupted. Rerun the same command to resume from the last checkpoint "
              f"({run_dir}/checkpoints/last.keras).")
        return FitStatus.INTERRUPTED
    if recorder.diverged:
        step, key, value = recorder.diverged
        saved = _checkpoint_step(recorder)
        kept = (f"{run_dir}/checkpoints/last.keras still holds the last good weights (step {saved})"
                if saved is not None else "no checkpoint had been written yet")
        raise TrainingDiverged(f"{key} = {value} at step {step}; stopped. {kept}.")
    if recorder.budget_reached:
        print(f"Time budget of {recorder.time_budget:g} min reached after step {done} "
              f"({done / steps_per_epoch:.2f} epochs); checkpoint written.")
        if continue_command:
            print(f"Continue with:\n  {continue_command}")
        return FitStatus.TIME_BUDGET
    print(f"Run folder: {run_dir} (summary.md, losses.png, samples/)")
    return FitStatus.FINISHED


def _checkpoint_step(recorder):
    try:
        with open(recorder.path("state.json")) as f:
            return json.load(f)["step"]
    except (OSError, ValueError, KeyError):
        return None
