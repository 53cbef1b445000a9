"""The one way kgen's benchmarks time things: a function's median, and steps inside Keras' `fit()`."""

import time

import numpy as np


def timed(fn, min_repeats=3, min_seconds=2.0, cpu=False, warmup=1, max_repeats=200):
    """Median seconds of `fn()` after `warmup` calls (with `cpu`: also the median process CPU seconds).

    Repeats until both `min_repeats` calls and `min_seconds` of calls are done
    (at most `max_repeats`): short calls get many samples, long ones few.
    """
    for _ in range(warmup):
        fn()
    times, cpu_times = [], []
    while len(times) < min_repeats or sum(times) < min_seconds:
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - start_cpu)
        if len(times) >= max_repeats:
            break
    return (float(np.median(times)), float(np.median(cpu_times))) if cpu else float(np.median(times))


def step_clock(first, last):
    """A Keras callback that reads the time after training steps `first` and `last` (1-based) of an epoch.

    `clock.seconds()` is the time between them: steps `first + 1 .. last`.
    Reading a log value as numpy waits for an asynchronous backend's step.
    Put it first among the callbacks, so that a later callback's epoch-end
    work (checkpoints, sample grids) is not counted as step time.
    """
    import keras

    class StepClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.marks = []

        def on_train_batch_end(self, batch, logs=None):
            if batch + 1 in (first, last):
                keras.ops.convert_to_numpy(next(iter(logs.values())))
                self.marks.append(time.perf_counter())

        def seconds(self):
            return self.marks[-1] - self.marks[0]

    return StepClock()
