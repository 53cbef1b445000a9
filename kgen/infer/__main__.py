"""`python -m kgen.infer`: sampling, partial denoising, VAE reconstruction and latent walks.

Imports onnxruntime, numpy and Pillow only when given ONNX files (the
default models are the ones shipped in `exported/`); `.keras` checkpoints
also work and then load Keras.

    python -m kgen.infer denoise --t 10 image.png
    python -m kgen.infer sample --labels all
    python -m kgen.infer sample --model exported/mnist_generator.onnx --count 64
"""

import sys
from typing import Optional, Sequence

from kgen.infer import denoise, reconstruct, sample
from kgen.utils.cli import ArgumentParser, exit_on_bad_input
from kgen.utils.shipped import shipped_path as default


@exit_on_bad_input
def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = ArgumentParser(prog="python -m kgen.infer", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sample.add_parser(sub, default("mnist_denoiser.onnx"))
    denoise.add_parser(sub, default("mnist_denoiser.onnx"))
    reconstruct.add_parsers(sub, default("mnist_vae_encoder.onnx"), default("mnist_vae_decoder.onnx"))
    args = parser.parse_args(argv)
    return args.run(args)


def console_main() -> None:
    """The `kgen.infer` console command."""
    sys.exit(main())


if __name__ == "__main__":
    console_main()
