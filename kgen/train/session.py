"""The steps every training command shares: before the data (lock, flags, precision) and the run itself."""

import functools
import os
import sys
from typing import TYPE_CHECKING, Any, Callable

from kgen.utils.cli import command_line, exit_on_bad_input

if TYPE_CHECKING:
    from kgen.runs import FitStatus, RunFolder

_OPENED = []  # the run folders this process locked, for `training_command`'s clean-up


def training_command(main: Callable[..., int]) -> Callable[..., int]:
    """A family's command: bad input is one line and exit 2 (`exit_on_bad_input`), and leaves nothing behind.

    A run folder that this process created and that holds no checkpoint yet
    is removed when the command is refused (e.g. the data does not exist).
    """

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except (ValueError, TypeError, FileNotFoundError):
            while _OPENED:
                _OPENED.pop().discard_if_empty()
            raise

    return exit_on_bad_input(wrapper)


def program(family: str) -> list:
    """The words that started this process, for the "Continue with" line: a recipe, or `kgen.train <family>`."""
    script = sys.argv[0] if sys.argv else ""
    if os.path.basename(script) == "__main__.py":
        return ["python", "-m", "kgen.train", family]
    if script.endswith(".py"):
        return ["python", os.path.relpath(script)]
    return ["kgen.train", family]


def prepare(config: Any) -> "RunFolder":
    """Locks the run folder and checks a resume's flags (before any data or model), then sets up the process.

    Returns the locked `RunFolder`.
    """
    from kgen.runs import open_run
    from kgen.utils.cli import require_training_install
    from kgen.utils.quiet import quiet_tensorflow

    require_training_install("kgen.train")
    check_launch(config)
    folder = open_run(config)  # before TensorFlow: a refused run costs nothing
    quiet_tensorflow()  # tf.data feeds every backend

    import keras

    from kgen.backend.distribution import use_devices
    from kgen.backend.processes import start_processes
    from kgen.runs import apply_training_options

    _OPENED.append(folder)
    apply_training_options(config)
    if not start_processes().several:
        use_devices(config.devices)
    keras.utils.set_random_seed(config.seed)
    return folder


def check_launch(config: Any) -> None:
    """Refuses, before any work, flags that a multi-process launch (`kgen.utils.launch`) cannot honour."""
    from kgen.utils.launch import launch_from_environment

    launch = launch_from_environment()
    if not launch.several:
        return
    if getattr(config, "devices", 1) != 1:
        raise ValueError(f"--devices {config.devices} with {launch.count} processes: each process trains on one "
                         "device; start one process per device instead (docs/scaling.md).")
    batch = getattr(config, "batch_size", None)
    if batch is not None and batch % launch.count:
        raise ValueError(f"--batch-size {batch} (the global batch) must be a multiple of the number of processes "
                         f"({launch.count}).")


def train(model: Any, dataset: Any, recorder: Any, config: Any, description: str, family: str,
          **fit_options: Any) -> "FitStatus":
    """`fit_resumable` with the config's warm start and the command that continues the run; returns its status."""
    from kgen.export.warm_start import warm_starter
    from kgen.runs import fit_resumable

    return fit_resumable(model, dataset, recorder, config.epochs, description, resume=config.resume,
                         warm_start=warm_starter(config.init_from) if config.init_from else None,
                         continue_command=command_line(program(family), config), **fit_options)
