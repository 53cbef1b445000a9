"""`python -m kgen.export --format onnx CHECKPOINT`: ONNX files with kgen metadata.

    python -m kgen.export --format onnx runs/ddpm/checkpoints/last.keras
    python -m kgen.export runs/vae/checkpoints/last.keras --part vae_encoder
    python -m kgen.export exported/mnist_denoiser.onnx --quantize int8

Always exports through the TensorFlow backend (`.keras` checkpoints from any
backend load there); the file is checked with `onnx.checker` and compared
with Keras before it is written.
"""

import os

os.environ["KERAS_BACKEND"] = "tensorflow"  # the exporter (tf2onnx); checkpoints are portable

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
from typing import Optional, Sequence  # noqa: E402

from kgen.schedulers import LINEAR_SAMPLERS  # noqa: E402
from kgen.utils.cli import ArgumentParser, exit_on_bad_input  # noqa: E402


def _parser():
    parser = ArgumentParser(prog="python -m kgen.export", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a .keras checkpoint of any kgen trainer (any backend); with --sampler "
                                           "or --quantize also an exported .onnx")
    parser.add_argument("--format", default="onnx", help="export format (onnx)")
    parser.add_argument("--part", help="generator, discriminator, vae_decoder, vae_encoder or denoiser (default: the "
                                       "main one)")
    parser.add_argument("--output", help="output file (default <run folder>/exported/<dataset>_<part>.onnx, or beside "
                                         "a checkpoint outside a run folder)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file and its card")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset, 13..18")
    parser.add_argument("--dataset", help="dataset name for the metadata (default: from the run's config.json)")
    parser.add_argument("--class-names", help="comma-separated class names (default: from the run's config.json)")
    parser.add_argument("--tolerance", type=float, default=1e-3, help="largest accepted |ONNX - Keras|")
    parser.add_argument("--card-command", help="the recipe command that trained it, for the model card")
    parser.add_argument("--card-metrics", help="a JSON file of measured metrics (kgen.evaluate --json), for the model "
                                               "card; with an exported .onnx alone: put them into its card")
    parser.add_argument("--card-metrics-json", help=argparse.SUPPRESS)
    parser.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                        help="import MODULE first: it registers a trainer defined outside kgen (repeatable)")
    parser.add_argument("--sampler", choices=LINEAR_SAMPLERS,
                        help="also write the whole guided sampler as one graph (the denoiser's name with "
                             "_sampler for _denoiser)")
    parser.add_argument("--steps", type=int, help="sampling steps of the --sampler graph (default 25, or the steps "
                                                  "a distilled denoiser was trained for)")
    parser.add_argument("--eta", type=float, default=0.0, help="DDIM eta of the --sampler graph (> 0: it takes "
                                                              "per-step noise)")
    parser.add_argument("--sampler-output", help="sampler graph file (default: the denoiser's name with _sampler for "
                                                         "_denoiser, e.g. cifar10_sampler_fast.onnx)")
    parser.add_argument("--quantize", choices=("int8",),
                        help="also write a static int8 (QDQ) copy, <name>_int8.onnx, calibrated on training "
                             "images (denoiser, encoder) or prior latents (generator, decoder)")
    parser.add_argument("--calibration-images", type=int, default=256, help="calibration examples of --quantize")
    parser.add_argument("--data", help="dataset of the --quantize calibration images (default: the model's)")
    parser.add_argument("--fuse-group-norms", action="store_true",
                        help="with an exported .onnx: rewrite its group norms as InstanceNormalization, as export "
                             "now writes them (checked against the file), in place or to --output")
    parser.add_argument("--unfused", action="store_true",
                        help="keep group norms as tf2onnx traced them (slower; for comparisons)")
    parser.add_argument("--refresh-cards", action="store_true",
                        help="CHECKPOINT is a folder of exported models: rewrite every model card with portable "
                             "paths and its Markdown (<name>.md) beside it")
    parser.add_argument("--json-result", action="store_true", help=argparse.SUPPRESS)
    return parser


def _checked(args):
    """Refuses bad flags before any work; returns the model card's metrics (or None)."""
    for module in args.imports:
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise ValueError(f"--import {module}: {error}.") from None
    if args.format != "onnx":
        raise ValueError(f"format {args.format!r} is not supported; accepted: onnx.")
    if not (math.isfinite(args.tolerance) and args.tolerance > 0):
        raise ValueError(f"--tolerance must be a finite number > 0; got {args.tolerance}.")
    if args.sampler and args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be >= 1; got {args.steps}.")
    if args.sampler and not (math.isfinite(args.eta) and args.eta >= 0):
        raise ValueError(f"--eta must be a finite number >= 0; got {args.eta}.")
    if args.quantize and not 1 <= args.calibration_images <= 100_000:
        raise ValueError(f"--calibration-images must be in 1..100,000; got {args.calibration_images}.")
    if args.quantize and args.sampler:
        raise ValueError("--quantize and --sampler are separate steps: quantize the denoiser first, then build "
                         "the sampler graph from either file.")
    metrics = json.loads(args.card_metrics_json) if args.card_metrics_json else None
    if args.card_metrics:
        if not os.path.isfile(args.card_metrics):
            raise ValueError(f"--card-metrics {args.card_metrics!r} not found; give a JSON file.")
        try:
            with open(args.card_metrics) as f:
                metrics = json.load(f)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"--card-metrics {args.card_metrics!r} is not a JSON file ({error}).") from None
    return metrics


@exit_on_bad_input
def main(argv: Optional[Sequence[str]] = None) -> None:
    args = _parser().parse_args(argv)
    if args.refresh_cards:
        from kgen.export.model_card import refresh_cards

        for path in refresh_cards(args.checkpoint):
            print(f"wrote {path}")
        return None
    metrics = _checked(args)
    if args.checkpoint.endswith(".onnx") and metrics is not None and not (
            args.sampler or args.quantize or args.fuse_group_norms):
        from kgen.export.model_card import record_metrics

        print(f"wrote {record_metrics(args.checkpoint, metrics)} (and its Markdown) with the metrics of "
              f"{args.card_metrics or 'the JSON given'}")
        return None
    from kgen.utils.cli import require_training_install
    from kgen.utils.quiet import quiet_tensorflow

    require_training_install("kgen.export")
    quiet_tensorflow()
    if args.checkpoint.endswith(".onnx"):
        if not (args.sampler or args.quantize or args.fuse_group_norms):
            raise ValueError(f"{args.checkpoint} is already ONNX; give a .keras checkpoint, or --sampler to build "
                             "a sampler graph, --quantize int8 for an int8 copy or --fuse-group-norms, from an "
                             "exported file.")
        if not os.path.isfile(args.checkpoint):
            raise ValueError(f"{args.checkpoint!r} not found; give an .onnx file from `python -m kgen.export`.")
        if args.fuse_group_norms:
            if args.sampler or args.quantize:
                raise ValueError("--fuse-group-norms is a step of its own: fuse first, then --quantize or --sampler.")
            if args.output and not args.output.endswith(".onnx"):
                raise ValueError(f"--output must end in .onnx; got {args.output!r}.")
            from kgen.export.graph_rewrites import fuse_file

            result = fuse_file(args.checkpoint, args.output, args.tolerance)
            print(f"wrote {result['path']} ({result['fused']} group norms fused; max |fused - original| = "
                  f"{result['max_abs_error']:.2e} on batches 1 and 3)")
            return None
        if args.quantize:
            return _write_int8(args.checkpoint, args, metrics)
        return _write_sampler(args.checkpoint, args)
    from kgen.export.onnx_export import export_onnx

    result = export_onnx(args.checkpoint, args.part, args.output, args.opset, args.dataset,
                         args.class_names.split(",") if args.class_names else None, args.tolerance,
                         args.card_command, metrics, fuse=not args.unfused, overwrite=args.overwrite)
    if args.json_result:
        print(json.dumps(result))
        return
    meta = result["metadata"]
    print(f"wrote {result['path']} ({meta['kind']}, image shape {tuple(meta['image_shape'])}, "
          f"opset {args.opset}); onnx.checker passed; max |ONNX - Keras| = {result['max_abs_error']:.2e} "
          f"(tolerance {args.tolerance:g}, batches 1 and 3); card {result['card']}")
    if args.quantize:
        _write_int8(result["path"], args)
    if args.sampler:
        if meta["kind"] != "denoiser":
            raise ValueError(f"--sampler needs a denoiser; {result['path']} is a {meta['kind']}.")
        _write_sampler(result["path"], args)


def _write_int8(path, args, metrics=None):
    from kgen.export.quantize import int8_path, quantize_int8

    output = args.output if path == args.checkpoint and args.output else int8_path(path)
    result = quantize_int8(path, output, args.calibration_images, args.data, card_metrics=metrics)
    q = result["quantization"]
    print(f"wrote {result['path']} (int8 QDQ: weights {q['weights']}, activations {q['activations']}, "
          f"{q['calibration']} on {q['calibration_examples']} examples of {q['calibration_data']}); "
          f"card {result['card']}")


def _write_sampler(denoiser, args):
    from kgen.export.sampler_graph import export_sampler

    result = export_sampler(denoiser, args.sampler, args.steps, args.eta, args.sampler_output)
    print(f"wrote {result['path']} ({args.sampler}-{result['metadata']['num_steps']} sampler graph, eta {args.eta:g}); "
          f"max |graph - numpy sampler| = {result['max_abs_error']:.2e} on 2 guided samples")


if __name__ == "__main__":
    main()
