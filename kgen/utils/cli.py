"""Command-line plumbing: dataclass configs to argparse, and clean errors."""

import argparse
import dataclasses
import functools
import os
import sys
import typing


def option(default, help):
    """A config dataclass field with a default and its `--help` text."""
    return dataclasses.field(default=default, metadata={"help": help})


def _parse_bool(text):
    value = text.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def parse_config(config_cls, argv=None, description=None):
    """Parses command-line flags into a frozen dataclass of defaults.

    Every field becomes `--field-name`, typed after its annotation, with the
    field's `metadata["help"]` as help text.
    """
    parser = argparse.ArgumentParser(
        description=description or config_cls.__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    hints = typing.get_type_hints(config_cls)
    for field in dataclasses.fields(config_cls):
        kind = hints[field.name]
        origin = typing.get_args(kind)
        if origin and type(None) in origin:  # Optional[X]
            kind = next(a for a in origin if a is not type(None))
        parse = _parse_bool if kind is bool else kind
        parser.add_argument(
            "--" + field.name.replace("_", "-"),
            dest=field.name,
            type=parse,
            default=field.default,
            help=field.metadata.get("help", " "),
        )
    args = parser.parse_args(argv)
    return config_cls(**vars(args))


def exit_on_bad_input(main):
    """Turns ValueError/TypeError into one stderr line and exit status 2.

    An exception that carries an `exit_status` (a diverged training) also
    becomes one line, with that status. Set KGEN_DEBUG=1 to see the
    traceback instead.
    """

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except (ValueError, TypeError, FileNotFoundError) as error:
            if os.environ.get("KGEN_DEBUG"):
                raise
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        except RuntimeError as error:
            status = getattr(error, "exit_status", None)
            if status is None or os.environ.get("KGEN_DEBUG"):
                raise
            print(f"error: {error}", file=sys.stderr)
            sys.exit(status)

    return wrapper


def progress_verbosity():
    """Keras `fit` verbosity: a live progress bar on a terminal, else a line per epoch."""
    return 1 if sys.stdout.isatty() else 2


DTYPE_POLICIES = ("float32", "mixed_bfloat16")


@dataclasses.dataclass(frozen=True)
class TrainingRunOptions:
    """Options every training recipe shares: precision, and runs split into resumable chunks."""

    dtype_policy: str = option("float32", f"Keras dtype policy of the layers: {', '.join(DTYPE_POLICIES)} "
                                          "(variables, losses and optimizer state stay float32)")
    time_budget: typing.Optional[float] = option(
        None, "minutes of training after which the run checkpoints and exits 0; rerun to continue")
    checkpoint_every: float = option(10.0, "minutes between checkpoints inside an epoch")
    init_from: typing.Optional[str] = option(
        None, "a .keras checkpoint of the same model whose weights start a new run (ignored when resuming)")


def apply_training_options(config):
    """Checks a `TrainingRunOptions` config and sets the global dtype policy (before building models)."""
    import keras

    if config.dtype_policy not in DTYPE_POLICIES:
        raise ValueError(f"dtype_policy must be one of {', '.join(DTYPE_POLICIES)}; got {config.dtype_policy!r}.")
    if config.time_budget is not None and not config.time_budget > 0:
        raise ValueError(f"time_budget must be a positive number of minutes; got {config.time_budget}.")
    if not config.checkpoint_every > 0:
        raise ValueError(f"checkpoint_every must be a positive number of minutes; got {config.checkpoint_every}.")
    if config.init_from is not None and not (config.init_from.endswith(".keras") and os.path.isfile(config.init_from)):
        raise ValueError(f"init_from must be an existing .keras checkpoint; got {config.init_from!r}.")
    keras.config.set_dtype_policy(config.dtype_policy)


def config_flags(config):
    """Command-line flags that reproduce `config`: one per field that differs from its default."""
    flags = []
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if value != field.default:
            flags += ["--" + field.name.replace("_", "-"), str(value)]
    return flags


def command_line(script, config):
    """The shell command that runs `script` with `config`."""
    import shlex

    words = ["python", os.path.relpath(script), *config_flags(config)]
    env = f"KERAS_BACKEND={os.environ['KERAS_BACKEND']} " if os.environ.get("KERAS_BACKEND") else ""
    return env + shlex.join(words)
