"""fit_resumable: a recipe's training run in resumable, time-budgeted chunks on one locked run folder."""

from __future__ import annotations

import enum
import math
import sys
from typing import Any, Callable, Optional

import keras

from kgen.backend.processes import PeerLost, current_launch, first_line
from kgen.runs.run_folder import optimizers
from kgen.runs.run_recorder import RunRecorder


class TrainingDiverged(RuntimeError):
    """A loss or a variable became NaN or infinite; the run folder keeps its last finite commit."""

    exit_status = 3  # what a command's entry point exits with (kgen.utils.cli.exit_on_bad_input)


class FitStatus(enum.Enum):
    """How `fit_resumable` ended."""

    NOTHING_TO_DO = "nothing to do"
    FINISHED = "finished"
    TIME_BUDGET = "time budget reached"
    INTERRUPTED = "interrupted"

    @property
    def exit_status(self) -> int:
        """The conventional exit status of a command that ended this way (130: SIGINT)."""
        return 130 if self is FitStatus.INTERRUPTED else 0


def _progress(verbose: int):
    """Keras' progress logger, whose last line counts the steps actually run when a run stops inside an epoch."""

    class Progress(keras.callbacks.ProgbarLogger):
        def on_epoch_end(self, epoch, logs=None):
            if self.model.stop_training and self.progbar is not None and self.seen < (self.target or 0):
                self.target = self.progbar.target = self.seen
            super().on_epoch_end(epoch, logs)

    progress = Progress()
    progress.verbose = verbose
    return progress


def progress_verbosity() -> int:
    """Keras `fit` verbosity: a live progress bar on a terminal, else a line per epoch."""
    return 1 if sys.stdout.isatty() else 2


def fit_resumable(model: keras.Model, dataset: Any, recorder: RunRecorder, epochs: int, description: str,
                  resume: bool = True, warm_start: Optional[Callable] = None, continue_command: Optional[str] = None,
                  validation_data: Any = None) -> FitStatus:
    """The recipes' training run: resume, fit in time-budgeted chunks, stop cleanly.

    The data is read as one stream (`dataset.repeat()`), so a run resumed
    after step s continues with batch s + 1 of the same stream: the data
    order of an uninterrupted run. Every commit (`RunFolder.commit`) holds
    the model, its optimizers, its RNG state and the history in one file,
    so a run killed at any moment resumes with each step trained once.

    Args:
        model: a compiled kgen trainer.
        dataset: a finite `tf.data.Dataset` of whole batches (one epoch).
        recorder: `RunRecorder` of the run folder; its `time_budget` and
            `checkpoint_every` apply.
        epochs: int. Total epochs, counting resumed ones.
        description: str. One line printed before training.
        resume: bool. Continue from the run folder's checkpoint. Defaults to `True`.
        warm_start: callable or None. `warm_start(model)` loads earlier
            weights into a run that has nothing to resume and returns
            `(line, prior_training)` (`kgen.export.warm_start.warm_starter`);
            `prior_training` goes to `warm_start.json`. Defaults to `None`.
        continue_command: str or None. Printed when the time budget ends
            the run. Defaults to `None`.
        validation_data: a finite `tf.data.Dataset` or None. Evaluated at
            each epoch end (`val_` keys in the history). Defaults to `None`.

    Under a multi-process launch (`kgen.backend.processes`) every process
    runs this with the same arguments: each reads its share of every
    global batch (`kgen.data.shard_for_processes`), all stop at the same
    step, and only the chief writes and prints.

    Returns:
        `FitStatus`: `NOTHING_TO_DO`, `FINISHED`, `TIME_BUDGET` (checkpoint
        written; the same command continues) or `INTERRUPTED` (Ctrl-C; the
        last checkpoint stands). The command decides the exit status.

    Raises:
        TrainingDiverged: a loss or variable became non-finite.
        PeerLost: several processes train and a step or collective failed
            (another process ended); the last commit stands.
    """
    folder = recorder.folder
    launch = current_launch()
    say = print if launch.chief else _silent
    steps_per_epoch = int(dataset.cardinality())
    if steps_per_epoch < 1:
        raise ValueError("the dataset must be finite and hold at least one whole batch "
                         f"(cardinality {steps_per_epoch}).")
    recorder.steps_per_epoch = steps_per_epoch
    if resume:
        _restore(model, recorder)
    done = recorder.step
    if done >= epochs * steps_per_epoch:
        say(f"{folder.root} already holds {done // steps_per_epoch} epochs; nothing to do.")
        return FitStatus.NOTHING_TO_DO
    if done:
        say(f"Resuming {folder.root} after step {done} (epoch {done // steps_per_epoch + 1}, "
              f"step {done % steps_per_epoch} of {steps_per_epoch}).")
    elif warm_start is not None:
        line, prior = warm_start(model)
        say(line)
        # Recorded before training, so the model card counts the earlier model's training too.
        folder.write_json("warm_start.json", prior)
    say(description)
    recorder.total_steps = epochs * steps_per_epoch
    first = done // steps_per_epoch
    try:
        # One iterator over one stream for the whole chunk: tf.data reshuffles
        # per iterator, so a second fit() would see another order.
        verbose = progress_verbosity() if launch.chief else 0
        stream = dataset.repeat().skip(done)
        if launch.several:
            from kgen.data import shard_for_processes

            stream = shard_for_processes(stream, launch)
        model.fit(stream, initial_epoch=first,
                  epochs=first + math.ceil((recorder.total_steps - done) / steps_per_epoch),
                  steps_per_epoch=steps_per_epoch, callbacks=[recorder, _progress(verbose)], verbose=verbose,
                  shuffle=False, validation_data=validation_data)
        done = recorder.step
    except KeyboardInterrupt:
        say(f"\nInterrupted. Rerun the same command to resume from the last checkpoint ({folder.checkpoint}).")
        return FitStatus.INTERRUPTED
    except PeerLost as error:
        raise PeerLost(f"process {launch.index} of {launch.count}: {error}; {_kept(recorder)}.") from None
    except Exception as error:
        if not launch.several:
            raise
        raise PeerLost(f"process {launch.index} of {launch.count} stopped: {type(error).__name__}: {first_line(error)} "
                       f"(another training process ended or cannot be reached?); {_kept(recorder)}.") from None
    finally:
        folder.unlock()
    if not launch.chief:
        if recorder.diverged:
            raise TrainingDiverged(f"process {launch.index}: stopped with the chief at step {recorder.diverged[0]} "
                                   "(a non-finite value; the chief's message names it).")
        return FitStatus.TIME_BUDGET if recorder.budget_reached else FitStatus.FINISHED
    return _report_end(recorder, done, steps_per_epoch, continue_command)


def _silent(*args, **kwargs):
    """`print` on a training process other than the chief: the chief speaks for the launch."""


def _kept(recorder: RunRecorder) -> str:
    step = recorder.committed_step
    return (f"{recorder.folder.checkpoint} holds the last commit (step {step}); rerun the same commands to resume"
            if step is not None else "no commit had been written; rerun the same commands to start again")


def _restore(model, recorder: RunRecorder) -> None:
    """Resumes the recorder's folder into `model`; flags changed with an override apply from here."""
    compiled = {id(o): float(keras.ops.convert_to_numpy(o.learning_rate)) for o in optimizers(model)
                if not callable(getattr(o, "_learning_rate", None))}
    recorder.overrides = dict(getattr(recorder.folder, "overrides", {}) or {})
    recorder.restore(model)
    if "learning_rate" in recorder.overrides:  # the checkpoint restored the old rate
        for optimizer in optimizers(model):
            if id(optimizer) in compiled:
                optimizer.learning_rate = compiled[id(optimizer)]


def _report_end(recorder: RunRecorder, done: int, steps_per_epoch: int, continue_command) -> FitStatus:
    folder = recorder.folder
    if recorder.diverged:
        step, key, value = recorder.diverged
        saved = recorder.committed_step
        kept = (f"{folder.checkpoint} holds the last finite commit (step {saved})"
                if saved is not None else "no commit had been written yet")
        raise TrainingDiverged(f"{key} = {value} at step {step}; stopped. {kept}.")
    if recorder.budget_reached:
        print(f"Time budget of {recorder.time_budget:g} min reached after step {done} "
              f"({done / steps_per_epoch:.2f} epochs); checkpoint written.")
        if continue_command:
            launch = current_launch()
            where = (f" (on each of the {launch.count} processes, with its launcher's variables)"
                     if launch.several else "")
            print(f"Continue with{where}:\n  {continue_command}")
        return FitStatus.TIME_BUDGET
    print(f"Run folder: {folder.root} (summary.md, losses.png, samples/)")
    return FitStatus.FINISHED
