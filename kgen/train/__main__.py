"""`kgen.train {dcgan,vae,ddpm,classifier,distill} [flags]`: train a model family into a resumable run folder.

    kgen.train dcgan --data cifar10 --epochs 20 --output-dir runs/dcgan_cifar10
    kgen.train ddpm --help

Every family takes the same run flags (--data, --limit, --epochs,
--batch-size, --seed, --output-dir, --time-budget, --checkpoint-every,
--dtype-policy, --devices, --init-from) and its own.
"""

import importlib
import sys
from typing import Optional, Sequence

from kgen.utils.cli import exit_on_bad_input

FAMILIES = {
    "dcgan": "a DCGAN (adversarial objective)",
    "vae": "a convolutional VAE, vanilla or hourglass (ELBO)",
    "ddpm": "a class-conditional diffusion model (UNet denoiser)",
    "classifier": "the CNN classifier behind kgen.evaluate's classifier metrics",
    "distill": "a few-step student of a diffusion model (guidance, then step distillation)",
}


def usage() -> str:
    lines = ["usage: kgen.train {" + ",".join(FAMILIES) + "} [flags]   (kgen.train FAMILY --help for its flags)", ""]
    lines += [f"  {name:<11} {text}" for name, text in FAMILIES.items()]
    return "\n".join(lines)


@exit_on_bad_input
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs one family's training command; returns its exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    family, rest = argv[0], argv[1:]
    if family not in FAMILIES:
        print(f"error: unknown family {family!r}; accepted: {', '.join(FAMILIES)} (see kgen.train --help)",
              file=sys.stderr)
        return 2
    return importlib.import_module(f"kgen.train.{family}").main(rest, prog=f"kgen.train {family}")


def console_main() -> None:
    sys.exit(main())


if __name__ == "__main__":
    console_main()
