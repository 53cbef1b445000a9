"""Command-line plumbing: dataclass configs to argparse, and clean errors."""

import argparse
import dataclasses
import functools
import math
import os
import sys
import typing
from typing import Any, Callable, Iterable, Optional, Sequence, Union


def option(default: Any, help: str) -> Any:
    """A config dataclass field with a default and its `--help` text."""
    return dataclasses.field(default=default, metadata={"help": help})


def _parse_bool(text):
    value = text.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends each option's default to its help, unless the help already states it or there is none."""

    def _get_help_string(self, action):
        text = action.help or ""
        hidden = action.default is None or action.default is False or action.default in ([], argparse.SUPPRESS)
        if "default" in text or hidden or not action.option_strings:
            return text
        if isinstance(action.default, tuple):
            return f"{text} (default: {','.join(str(v) for v in action.default)})"
        return super()._get_help_string(action)


class ArgumentParser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` whose usage errors are one `error:` line (exit 2), and whose
    `--help` shows every default."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _DefaultsFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _parse_tuple(item):
    """Parses "a,b,c" into a tuple of `item`s ("" is the empty tuple)."""
    names = {int: "integers", float: "numbers", str: "names"}

    def parse(text):
        try:
            return tuple(item(part.strip()) for part in text.split(",") if part.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {names.get(item, item.__name__)}, "
                                             f"got {text!r}") from None

    parse.__name__ = f"comma-separated {names.get(item, item.__name__)}"
    return parse


def _field_parser(kind):
    if kind is bool:
        return _parse_bool
    if typing.get_origin(kind) is tuple:  # tuple[int, ...] and the like
        return _parse_tuple(typing.get_args(kind)[0])
    return kind


def parse_config(config_cls: type, argv: Optional[Sequence[str]] = None, description: Optional[str] = None,
                 prog: Optional[str] = None) -> Any:
    """Parses command-line flags into a frozen dataclass of defaults.

    Every field becomes `--field-name`, typed after its annotation (`bool`
    takes true/false, `tuple[int, ...]` and the like a comma-separated list),
    with the field's `metadata["help"]` as help text. The dataclass checks
    its values itself (`__post_init__` raising `ValueError`), so a bad flag
    is refused here, before any work.
    """
    parser = ArgumentParser(prog=prog, description=description or config_cls.__doc__)
    hints = typing.get_type_hints(config_cls)
    for field in dataclasses.fields(config_cls):
        kind = hints[field.name]
        origin = typing.get_args(kind)
        if typing.get_origin(kind) is typing.Union and type(None) in origin:  # Optional[X]
            kind = next(a for a in origin if a is not type(None))
        parser.add_argument(
            "--" + field.name.replace("_", "-"),
            dest=field.name,
            type=_field_parser(kind),
            default=field.default,
            help=field.metadata.get("help", " "),
        )
    args = parser.parse_args(argv)
    return config_cls(**vars(args))


def require(condition: Any, message: str) -> None:
    """Raises `ValueError(message)` unless `condition`: the configs' checks read as a list of rules."""
    if not condition:
        raise ValueError(message)


def require_known(names: Iterable[str], accepted: Iterable[str], what: str) -> None:
    """Raises `ValueError` naming the entries of `names` that are not in `accepted` (and what is accepted)."""
    unknown = sorted(set(names) - set(accepted))
    require(not unknown, f"unknown {what} {unknown}; accepted: {', '.join(accepted)}.")


def finite(value: Optional[float]) -> bool:
    return value is not None and math.isfinite(value)


def exit_on_bad_input(main: Callable) -> Callable:
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
            if getattr(error, "leave_at_once", False):  # no interpreter shutdown (kgen.backend.processes.PeerLost)
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(status)
            sys.exit(status)

    return wrapper


def require_training_install(command: str) -> None:
    """Refuses, in one line, a command that needs Keras and TensorFlow in an inference-only install."""
    import importlib.util

    missing = [name for name in ("keras", "tensorflow") if importlib.util.find_spec(name) is None]
    if missing:
        raise ValueError(f"{command} needs {' and '.join(missing)}, which kgen's inference-only install leaves "
                         "out; install the training profile: pip install 'kgen[train]'.")


def check_common_fields(config: Any) -> None:
    """Checks the fields most recipe configs share, where `config` has them."""
    fields = {f.name for f in dataclasses.fields(config)}
    if "epochs" in fields:
        require(config.epochs >= 1, f"epochs must be >= 1; got {config.epochs}.")
    if "batch_size" in fields:
        require(1 <= config.batch_size <= 65_536, f"batch_size must be in 1..65,536; got {config.batch_size}.")
    if "learning_rate" in fields:
        require(finite(config.learning_rate) and config.learning_rate > 0,
                f"learning_rate must be a finite number > 0; got {config.learning_rate}.")
    if "widths" in fields:
        require(len(config.widths) >= 1 and all(w >= 1 for w in config.widths),
                f"widths must be one or more positive channel counts, e.g. 32,64; got {config.widths}.")
    for name in ("output_dir", "report_dir"):
        if name in fields and getattr(config, name):
            check_output_folder(getattr(config, name), name)


def check_output_folder(path: str, name: str = "output_dir") -> None:
    """Refuses a folder path that is an existing file or lies under one (before any work)."""
    probe = os.path.abspath(path)
    while probe and not os.path.exists(probe):
        probe = os.path.dirname(probe)
    require(os.path.isdir(probe), f"{name} {path!r} is, or lies under, an existing file; give a folder.")
    require(os.access(probe, os.W_OK), f"{name} {path!r}: {probe} is not writable.")


def config_flags(config: Any) -> list:
    """Command-line flags that reproduce `config`: one per field that differs from its default."""
    flags = []
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if value != field.default:
            text = ",".join(str(v) for v in value) if isinstance(value, tuple) else str(value)
            flags += ["--" + field.name.replace("_", "-"), text]
    return flags


def command_line(program: Union[str, Sequence[str]], config: Any) -> str:
    """The shell command that runs `program` (a script path, or a list of words) with `config`'s flags."""
    import shlex

    words = ["python", os.path.relpath(program)] if isinstance(program, str) else list(program)
    # The environment the run needs to continue the same way: the backend and the local data.
    env = "".join(f"{name}={shlex.quote(os.environ[name])} " for name in ("KERAS_BACKEND", "KGEN_DATA_DIR")
                  if os.environ.get(name))
    return env + shlex.join([*words, *config_flags(config)])
