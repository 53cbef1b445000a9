"""`python -m kgen.evaluate SOURCE`: sample-quality metrics of any kgen model, as a table and JSON."""

import argparse
import math
import os
from typing import Optional, Sequence

from kgen.schedulers import SAMPLERS
from kgen.utils.atomic import write_json
from kgen.utils.cli import ArgumentParser, exit_on_bad_input


def _scales(text):
    try:
        return [float(g) for g in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated numbers; got {text!r}") from None


@exit_on_bad_input
def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = ArgumentParser(
        prog="python -m kgen.evaluate",
        description="Score a kgen checkpoint (any model), an exported .onnx generator, VAE decoder or denoiser, "
                    "or a folder of images against a dataset split.",
    )
    parser.add_argument("source", help=".keras checkpoint, .onnx export, or folder of images")
    parser.add_argument("--data", help="reference dataset, TFDS name or path (default: the model's own)")
    parser.add_argument("--split", default="test", help="reference split")
    parser.add_argument("--classifier", help="classifier .keras (default exported/classifiers/<data>.keras)")
    parser.add_argument("--num-samples", type=int, help="images of an unconditional model (default 10000)")
    parser.add_argument("--per-class", type=int, help="images per class of a conditional model (default 100)")
    parser.add_argument("--guidance-scale", type=_scales, help="comma-separated guidance scales, one setting "
                                                               "each (diffusion models; default: the model's)")
    parser.add_argument("--sampler", choices=SAMPLERS, help="diffusion sampler (default: the model's, ddim)")
    parser.add_argument("--steps", type=int, help="diffusion sampling steps (default: the model's, 50)")
    parser.add_argument("--eta", type=float, help="DDIM eta (default 0)")
    parser.add_argument("--inception", action="store_true",
                        help='also Inception FID/KID with the standard FID network (pip install -e ".[fid]")')
    parser.add_argument("--inception-reference", type=int, default=10_000,
                        help="reference images of the split for Inception statistics (cached)")
    parser.add_argument("--held-out-images", type=int, default=10_000,
                        help="images of the split for the model's own held-out measures (0: skip)")
    parser.add_argument("--memorization", action="store_true",
                        help="also each sample's pixel distance to its nearest training image against the "
                             "reference images' (the memorisation check)")
    parser.add_argument("--engine", default="onnxruntime", choices=("onnxruntime", "openvino"),
                        help="runtime of an .onnx source")
    parser.add_argument("--precision", default="f32", choices=("f32", "bf16"),
                        help="inference precision of an .onnx source (bf16: --engine openvino)")
    parser.add_argument("--batch-size", type=int, default=500, help="images per classifier / Inception batch")
    parser.add_argument("--seed", type=int, default=0, help="seed of the samples and of the metrics")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    from kgen.utils.cli import require_training_install
    from kgen.utils.quiet import quiet_tensorflow

    require_training_install("kgen.evaluate")
    quiet_tensorflow()
    from kgen.evaluate.evaluation import evaluate, format_table

    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be >= 1; got {args.steps}.")
    if args.guidance_scale and not all(math.isfinite(g) for g in args.guidance_scale):
        raise ValueError(f"--guidance-scale must be finite numbers; got {args.guidance_scale}.")
    if args.eta is not None and not (math.isfinite(args.eta) and args.eta >= 0):
        raise ValueError(f"--eta must be a finite number >= 0; got {args.eta}.")
    if not 1 <= args.batch_size <= 100_000:
        raise ValueError(f"--batch-size must be in 1..100,000; got {args.batch_size}.")
    if args.precision == "bf16" and args.engine != "openvino":
        raise ValueError("--precision bf16 needs --engine openvino (onnxruntime runs f32 only here).")
    if args.json:  # fail on an unwritable path now, not after the work
        if os.path.isdir(args.json):
            raise ValueError(f"--json {args.json!r} is a folder; give a file name.")
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    results = evaluate(
        args.source, data=args.data, split=args.split, classifier=args.classifier, num_samples=args.num_samples,
        per_class=args.per_class, options={"sampler": args.sampler, "num_steps": args.steps, "eta": args.eta},
        guidance_scales=args.guidance_scale, inception=args.inception,
        inception_reference=args.inception_reference, held_out_images=args.held_out_images,
        batch_size=args.batch_size, seed=args.seed, engine=args.engine, precision=args.precision,
        memorization=args.memorization,
    )
    print(format_table(results))
    if args.json:
        import shlex
        import sys

        words = sys.argv[1:] if argv is None else list(argv)
        # What a model card quotes: with the data folder it read, as the "Continue with" lines do.
        data_dir = os.environ.get("KGEN_DATA_DIR")
        env = f"KGEN_DATA_DIR={shlex.quote(data_dir)} " if data_dir else ""
        results["command"] = env + "python -m kgen.evaluate " + shlex.join(words)
        write_json(args.json, results)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
