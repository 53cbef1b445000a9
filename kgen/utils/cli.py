"""Command-line plumbing: dataclass configs to argparse, and clean errors."""

import argparse
import dataclasses
import functools
import math
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

    def error(self, message):
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


def parse_config(config_cls, argv=None, description=None):
    """Parses command-line flags into a frozen dataclass of defaults.

    Every field becomes `--field-name`, typed after its annotation (`bool`
    takes true/false, `tuple[int, ...]` and the like a comma-separated list),
    with the field's `metadata["help"]` as help text. The dataclass checks
    its values itself (`__post_init__` raising `ValueError`), so a bad flag
    is refused here, before any work.
    """
    parser = ArgumentParser(description=description or config_cls.__doc__)
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


def require(condition, message):
    """Raises `ValueError(message)` unless `condition`: the configs' checks read as a list of rules."""
    if not condition:
        raise ValueError(message)


def finite(value):
    return value is not None and math.isfinite(value)


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
    """Options every training recipe shares: precision, and runs split into resumable chunks.

    Its `__post_init__` also checks the fields every training config has
    (`epochs`, `batch_size`, `learning_rate`, `output_dir`) when it has them;
    a subclass with its own rules calls `super().__post_init__()` first.
    """

    dtype_policy: str = option("float32", f"Keras dtype policy of the layers: {', '.join(DTYPE_POLICIES)} "
                                          "(variables, losses and optimizer state stay float32)")
    time_budget: typing.Optional[float] = option(
        None, "minutes of training after which the run checkpoints and exits 0; rerun to continue")
    checkpoint_every: float = option(10.0, "minutes between checkpoints inside an epoch")
    init_from: typing.Optional[str] = option(
        None, "a .keras checkpoint of the same model, or a kgen .onnx export of its main part, whose weights "
              "start a new run (ignored when resuming)")
    devices: int = option(1, "devices to train on, data-parallel (jax and tensorflow backends); "
                             "--batch-size is the global batch")

    def __post_init__(self):
        require(self.dtype_policy in DTYPE_POLICIES,
                f"dtype_policy must be one of {', '.join(DTYPE_POLICIES)}; got {self.dtype_policy!r}.")
        require(self.time_budget is None or (finite(self.time_budget) and self.time_budget > 0),
                f"time_budget must be a positive number of minutes; got {self.time_budget}.")
        require(finite(self.checkpoint_every) and self.checkpoint_every > 0,
                f"checkpoint_every must be a positive number of minutes; got {self.checkpoint_every}.")
        require(self.init_from is None or (self.init_from.endswith((".keras", ".onnx"))
                                           and os.path.isfile(self.init_from)),
                f"init_from must be an existing .keras checkpoint or .onnx export; got {self.init_from!r}.")
        require(self.devices >= 1, f"devices must be >= 1; got {self.devices}.")
        if self.devices > 1 and "batch_size" in {f.name for f in dataclasses.fields(self)}:
            require(self.batch_size % self.devices == 0, f"batch_size {self.batch_size} must be a multiple of "
                    f"devices ({self.devices}): each device takes an equal slice of every global batch.")
        check_common_fields(self)


def check_common_fields(config):
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


def check_output_folder(path, name="output_dir"):
    """Refuses a folder path that is an existing file or lies under one (before any work)."""
    probe = os.path.abspath(path)
    while probe and not os.path.exists(probe):
        probe = os.path.dirname(probe)
    require(os.path.isdir(probe), f"{name} {path!r} is, or lies under, an existing file; give a folder.")
    require(os.access(probe, os.W_OK), f"{name} {path!r}: {probe} is not writable.")


def cpu_bfloat16_support(cpuinfo="/proc/cpuinfo"):
    """Whether this CPU has bfloat16 arithmetic: True, False, or None where it cannot tell.

    Read from the kernel's CPU flags (Linux): `avx512_bf16` or `amx_bf16` on
    x86, `bf16` on Arm. Without them every bfloat16 operation is emulated.
    """
    try:
        with open(cpuinfo) as f:
            text = f.read()
    except OSError:
        return None
    flags = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    if not flags:
        return None
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def apply_training_options(config):
    """Sets the global dtype policy of a checked `TrainingRunOptions` config (before building models).

    A bfloat16 policy on a CPU-only machine whose CPU lacks bfloat16
    instructions gets a warning: there it is emulated, and docs/performance.md
    measures it far slower than float32.

    Under the torch backend it also keeps freed memory in the process
    (`kgen.utils.allocator.tune_malloc`; docs/performance.md measured the
    CIFAR-10 UNet's float32 step 1.44x faster on a CPU); `KGEN_TUNE_MALLOC=0`
    leaves the C library's settings alone.
    """
    import keras

    keras.config.set_dtype_policy(config.dtype_policy)
    if keras.backend.backend() == "torch" and os.environ.get("KGEN_TUNE_MALLOC", "1") != "0":
        from kgen.utils.allocator import tune_malloc

        tune_malloc()
    if "bfloat16" in config.dtype_policy and cpu_bfloat16_support() is False:
        try:
            devices = keras.distribution.list_devices()
        except (AttributeError, NotImplementedError):  # torch has no keras.distribution backend
            devices = [keras.ops.convert_to_tensor(0.0).device]
        if all("cpu" in str(d).lower() for d in devices):
            print(f"warning: --dtype-policy {config.dtype_policy} on a CPU without bfloat16 instructions (no "
                  "avx512_bf16, amx_bf16 or bf16 among its flags): every bfloat16 operation is emulated and "
                  "training is far slower than with --dtype-policy float32.", file=sys.stderr, flush=True)


def config_flags(config):
    """Command-line flags that reproduce `config`: one per field that differs from its default."""
    flags = []
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if value != field.default:
            text = ",".join(str(v) for v in value) if isinstance(value, tuple) else str(value)
            flags += ["--" + field.name.replace("_", "-"), text]
    return flags


def command_line(script, config):
    """The shell command that runs `script` with `config`."""
    import shlex

    words = ["python", os.path.relpath(script), *config_flags(config)]
    env = f"KERAS_BACKEND={os.environ['KERAS_BACKEND']} " if os.environ.get("KERAS_BACKEND") else ""
    return env + shlex.join(words)
