"""RunRecorder: the run directory every kgen recipe writes."""

import csv
import json
import math
import os
import time

import keras
import numpy as np

from kgen.utils import images as image_utils
from kgen.utils import plots


class RunRecorder(keras.callbacks.Callback):
    """Records a training run in a folder and resumes it after a kill.

    Writes, after every epoch (so an interrupted run loses at most the
    epoch in progress):

    - `history_steps.csv`, `history_epochs.csv`, `history.json`: every value
      the trainer reports, per step and as epoch means, with epoch times;
    - `losses.png` (the model's `loss_keys` if it declares them, else every
      key containing "loss") and `metrics.png` (the rest);
    - `summary.json` and `summary.md`: the minimum of each loss, per step and
      per epoch, with where it occurred; time per epoch and in total;
    - `samples/epoch_NNN.png`: a grid from `sample_fn` (e.g. a fixed latent
      batch), and `samples/last.png`;
    - `checkpoints/last.keras` (written atomically) and `state.json`.

    Args:
        run_dir: str. Output folder, created if needed.
        sample_fn: callable or None. `sample_fn(model)` returns images in
            [-1, 1], shape (N, H, W, C), drawn after every epoch.
            Defaults to `None`.
        batch_size: int or None. Used to report images per second.
            Defaults to `None`.
        config: dict or None. Written to `config.json`. Defaults to `None`.

    Example:
    >>> recorder = RunRecorder("runs/dcgan", sample_fn=lambda m: m.generate(z))
    >>> start = recorder.restore(model)  # 0, or the epochs already done
    >>> model.fit(ds, epochs=10, initial_epoch=start, callbacks=[recorder])
    """

    def __init__(self, run_dir, sample_fn=None, batch_size=None, config=None):
        super().__init__()
        self.run_dir = run_dir
        self.sample_fn = sample_fn
        self.batch_size = batch_size
        self.config = config
        self.step_rows = []
        self.epoch_rows = []
        self.step = 0
        self.elapsed_before = 0.0
        self._restored = False

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
        history_file = self.path("history.json")
        if os.path.isfile(history_file):
            with open(history_file) as f:
                history = json.load(f)
            self.step_rows = [r for r in history["steps"] if r["step"] <= self.step]
            self.epoch_rows = [r for r in history["epochs"] if r["epoch"] <= state["epoch"]]
        self._restored = True
        return int(state["epoch"])

    # Callback hooks -----------------------------------------------------
    def on_train_begin(self, logs=None):
        os.makedirs(self.path("checkpoints"), exist_ok=True)
        os.makedirs(self.path("samples"), exist_ok=True)
        if not self._restored:
            self.step_rows, self.epoch_rows, self.step = [], [], 0
            self.elapsed_before = 0.0
        if self.config is not None:
            self._write_json("config.json", self.config)
        self._train_start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch + 1
        self._epoch_start = time.perf_counter()
        self._epoch_first_row = len(self.step_rows)

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        row = {"step": self.step, "epoch": self._epoch}
        for key, value in (logs or {}).items():
            row[key] = float(keras.ops.convert_to_numpy(value))
        self.step_rows.append(row)

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._epoch_start
        rows = self.step_rows[self._epoch_first_row :]
        keys = [k for k in (rows[0] if rows else {}) if k not in ("step", "epoch")]
        row = {"epoch": epoch + 1, "step": self.step}
        for key in keys:
            row[key] = float(np.mean([r[key] for r in rows]))
        for key, value in (logs or {}).items():
            if key not in row:  # epoch-only values such as val_loss
                row[key] = float(keras.ops.convert_to_numpy(value))
                keys.append(key)
        row["time_s"] = seconds
        if self.batch_size and seconds > 0:
            row["images_per_s"] = len(rows) * self.batch_size / seconds
        self.epoch_rows.append(row)

        if self.sample_fn is not None:
            samples = keras.ops.convert_to_numpy(self.sample_fn(self.model))
            name = self.path("samples", f"epoch_{epoch + 1:03d}.png")
            image_utils.save_grid(samples, name)
            image_utils.save_grid(samples, self.path("samples", "last.png"))
        self._write_history(keys)
        self._save_checkpoint(epoch + 1)

    def on_train_end(self, logs=None):
        if self.epoch_rows:
            self._write_summary()

    # Writers ------------------------------------------------------------
    def elapsed(self):
        return self.elapsed_before + time.perf_counter() - self._train_start

    def _write_json(self, name, obj):
        tmp = self.path(name + ".tmp")
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2)
        os.replace(tmp, self.path(name))

    def _write_csv(self, name, rows):
        fields = list(dict.fromkeys(k for r in rows for k in r))
        tmp = self.path(name + ".tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.path(name))

    def _is_loss(self, key):
        declared = getattr(self.model, "loss_keys", None)
        if declared:
            return key in declared or key.removeprefix("val_") in declared
        return "loss" in key

    def _write_history(self, keys):
        self._write_csv("history_steps.csv", self.step_rows)
        self._write_csv("history_epochs.csv", self.epoch_rows)
        self._write_json("history.json", {"steps": self.step_rows, "epochs": self.epoch_rows})
        loss_keys = [k for k in keys if self._is_loss(k)]
        other_keys = [k for k in keys if not self._is_loss(k) and k not in ("time_s", "images_per_s")]
        if loss_keys:
            plots.plot_history(self.step_rows, self.epoch_rows, loss_keys, self.path("losses.png"), "losses")
        if other_keys:
            plots.plot_history(self.step_rows, self.epoch_rows, other_keys, self.path("metrics.png"), "metrics")
        self._write_summary()

    def _save_checkpoint(self, epoch):
        tmp = self.path("checkpoints", "last.tmp.keras")
        self.model.save(tmp)
        os.replace(tmp, self.checkpoint_path)
        self._write_json(
            "state.json", {"epoch": epoch, "step": self.step, "elapsed_s": self.elapsed()}
        )

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
        tmp = self.path("summary.md.tmp")
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, self.path("summary.md"))


def fit_resumable(model, dataset, recorder, epochs, description, resume=True):
    """The recipes' training run: resume from the run folder, fit, stop cleanly on Ctrl-C.

    Args:
        model: a compiled kgen trainer.
        dataset: what `model.fit` takes.
        recorder: `RunRecorder` of the run folder.
        epochs: int. Total epochs, counting resumed ones.
        description: str. One line printed before training.
        resume: bool. Continue from the run folder's checkpoint. Defaults to `True`.

    Returns:
        bool. Whether any epoch was trained.
    """
    import sys

    from kgen.utils.cli import progress_verbosity

    run_dir = recorder.run_dir
    initial_epoch = recorder.restore(model) if resume else 0
    if initial_epoch >= epochs:
        print(f"{run_dir} already holds {initial_epoch} epochs; nothing to do.")
        return False
    if initial_epoch:
        print(f"Resuming {run_dir} after epoch {initial_epoch}.")
    print(description)
    try:
        model.fit(dataset, epochs=epochs, initial_epoch=initial_epoch, callbacks=[recorder],
                  verbose=progress_verbosity(), shuffle=False)
    except KeyboardInterrupt:
        print(f"\nInterrupted. Rerun the same command to resume from the last finished "
              f"epoch ({run_dir}/checkpoints/last.keras).")
        sys.exit(130)
    print(f"Run folder: {run_dir} (summary.md, losses.png, samples/)")
    return True
