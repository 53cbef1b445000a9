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

    Set KGEN_DEBUG=1 to see the traceback instead.
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

    return wrapper


def progress_verbosity():
    """Keras `fit` verbosity: a live progress bar on a terminal, else a line per epoch."""
    return 1 if sys.stdout.isatty() else 2
