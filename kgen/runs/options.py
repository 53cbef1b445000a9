"""The options every training command shares, and the process settings they imply."""

import dataclasses
import os
import sys
import typing

from kgen.utils.cli import check_common_fields, finite, option, require

DTYPE_POLICIES = ("float32", "mixed_bfloat16")


@dataclasses.dataclass(frozen=True)
class TrainingRunOptions:
    """The flags every training command takes: the data, the run, its precision and its chunks.

    A family's config subclasses it, adds its own fields, and changes a
    default with `default_of` (the help text stays the one written here).
    Its `__post_init__` also checks these fields; a subclass with its own
    rules calls `super().__post_init__()` first.

    Example:
    >>> @dataclasses.dataclass(frozen=True)
    ... class VAEConfig(TrainingRunOptions):
    ...     epochs: int = default_of("epochs", 20)
    ...     latent_dim: int = option(16, "size of the latent vector")
    """

    data: str = option("mnist", "TFDS name or path; names are first looked up under $KGEN_DATA_DIR")
    limit: typing.Optional[int] = option(None, "use only this many training images")
    epochs: int = option(10, "epochs to train (in total, counting resumed ones)")
    batch_size: int = option(128, "images per step")
    learning_rate: float = option(1e-3, "Adam learning rate")
    seed: int = option(0, "seed of weights, noise and data order")
    output_dir: str = option("runs/run", "run folder (rerunning the same command resumes it)")
    resume: bool = option(True, "resume from output_dir's last checkpoint if there is one")
    dtype_policy: str = option("float32", f"Keras dtype policy of the layers: {', '.join(DTYPE_POLICIES)} "
                                          "(variables, losses and optimizer state stay float32)")
    time_budget: typing.Optional[float] = option(
        None, "minutes of training after which the run checkpoints and exits 0; rerun to continue")
    checkpoint_every: float = option(10.0, "minutes between checkpoints inside an epoch")
    init_from: typing.Optional[str] = option(
        None, "a .keras checkpoint of the same model, or kgen .onnx exports of its parts (comma-separated: "
              "e.g. a VAE's decoder and encoder), whose weights start a new run (ignored when resuming)")
    devices: int = option(1, "devices to train on, data-parallel (jax and tensorflow backends); "
                             "--batch-size is the global batch")
    override_flags: bool = option(False, "resume although training flags differ from the run folder's "
                                         "config.json; the differences are recorded in chunks.json")

    def __post_init__(self):
        require(self.dtype_policy in DTYPE_POLICIES,
                f"dtype_policy must be one of {', '.join(DTYPE_POLICIES)}; got {self.dtype_policy!r}.")
        require(self.time_budget is None or (finite(self.time_budget) and self.time_budget > 0),
                f"time_budget must be a positive number of minutes; got {self.time_budget}.")
        require(finite(self.checkpoint_every) and self.checkpoint_every > 0,
                f"checkpoint_every must be a positive number of minutes; got {self.checkpoint_every}.")
        require(self.init_from is None or init_files(self.init_from) is not None,
                f"init_from must be an existing .keras checkpoint, or one or more comma-separated existing .onnx "
                f"exports; got {self.init_from!r}.")
        require(self.devices >= 1, f"devices must be >= 1; got {self.devices}.")
        require(self.limit is None or self.limit >= 1, f"limit must be >= 1; got {self.limit}.")
        if self.devices > 1:
            require(self.batch_size % self.devices == 0, f"batch_size {self.batch_size} must be a multiple of "
                    f"devices ({self.devices}): each device takes an equal slice of every global batch.")
        check_common_fields(self)


def init_files(value: typing.Any) -> typing.Optional[list]:
    """The files of an `--init-from` value, or None when it is not one existing `.keras` checkpoint or
    one or more comma-separated existing `.onnx` exports."""
    files = [f.strip() for f in value.split(",")] if isinstance(value, str) else []
    valid = (files and all(f.endswith((".keras", ".onnx")) and os.path.isfile(f) for f in files)
             and (len(files) == 1 or all(f.endswith(".onnx") for f in files)))
    return files if valid else None


def default_of(name: str, value: typing.Any) -> typing.Any:
    """A field of `TrainingRunOptions` with another default, for a family's config."""
    field = next(f for f in dataclasses.fields(TrainingRunOptions) if f.name == name)
    return option(value, field.metadata["help"])


def cpu_bfloat16_support(cpuinfo: str = "/proc/cpuinfo") -> typing.Optional[bool]:
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


def apply_training_options(config: TrainingRunOptions) -> None:
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
