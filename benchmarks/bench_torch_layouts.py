"""Torch's CPU kernels for the UNet's elementwise and normalisation ops, channels_last against NCHW.

    python benchmarks/bench_torch_layouts.py [--batch 128] [--rounds 7] [--dtype bfloat16]

Why kgen's UNet trains slower on the torch backend than diffusers' identical
network although its convolutions are faster: Keras hands torch NHWC tensors,
which kgen's layers view as NCHW in torch's `channels_last` memory format
(oneDNN's convolutions run that layout without reordering), while diffusers
runs contiguous NCHW. This times each op of a residual block on the UNet's
three activation shapes in both memory formats, forward and forward plus
backward through autograd, rounds interleaved, median of `--rounds`; and the
one workaround open to a layer, a group norm that copies its input to NCHW
and its output back. With `--dtype bfloat16` (the mixed policy's activations)
it adds kgen's own group norm for channels_last tensors
(`kgen.models.torch_ops.ChannelsLastGroupNorm`) and checks that kgen's layer
picks it exactly where it is the faster (`--shapes` adds shapes).
"""

import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from kgen.models import torch_ops  # noqa: E402
from kgen.utils.allocator import tune_malloc  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import timing  # noqa: E402


def group_norm_via_nchw(x, groups, weight, bias):
    """Group norm of a channels_last tensor computed in contiguous NCHW, the result channels_last again."""
    y = F.group_norm(x.contiguous(), groups, weight, bias, 1e-5)
    return y.contiguous(memory_format=torch.channels_last)


def cases(batch, channels, size, dtype):
    torch.manual_seed(0)
    nhwc = torch.randn(batch, size, size, channels).to(dtype)
    other = torch.randn(batch, size, size, channels).to(dtype)
    weight, bias = torch.randn(channels, requires_grad=True), torch.randn(channels, requires_grad=True)
    layouts = {"channels_last": (nhwc.permute(0, 3, 1, 2), other.permute(0, 3, 1, 2)),
               "NCHW": (nhwc.permute(0, 3, 1, 2).contiguous(), other.permute(0, 3, 1, 2).contiguous())}
    ops = {"group norm": lambda x, y: F.group_norm(x, 8, weight, bias, 1e-5),
           "SiLU": lambda x, y: F.silu(x),
           "add": lambda x, y: x + y}
    found = {}
    for layout, (x, y) in layouts.items():
        for name, op in ops.items():
            found[(name, layout)] = (x, y, op)
    x, y = layouts["channels_last"]
    copies = lambda a, b: group_norm_via_nchw(a, 8, weight, bias)  # noqa: E731
    found[("group norm", "channels_last via NCHW copies")] = (x, y, copies)
    if dtype == torch.bfloat16:
        kgen = lambda a, b: torch_ops.ChannelsLastGroupNorm.apply(a, 8, weight, bias, 1e-5)  # noqa: E731
        found[("group norm", "channels_last, kgen")] = (x, y, kgen)
    return found


def timed_op(x, y, op, backward, repeats=5):
    """Milliseconds per call of `op(x, y)` (and its backward pass): the median of `timing.timed`."""
    x = x.detach().requires_grad_(backward)

    def call():
        out = op(x, y)
        if backward:
            out.backward(y)

    return timing.timed(call, min_repeats=repeats, min_seconds=0.0, warmup=0) * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--shapes", default="32x32x32,64x16x16,128x8x8",
                        help="activations as CxHxW, comma-separated (default: the CIFAR-10 UNet's three levels)")
    parser.add_argument("--tune-malloc", action="store_true",
                        help="kgen.utils.allocator.tune_malloc() first, as the recipes do under torch")
    args = parser.parse_args()
    if args.tune_malloc:
        tune_malloc()
    dtype = getattr(torch, args.dtype)
    malloc = "tuned" if args.tune_malloc else "default"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, {args.dtype}, "
          f"malloc {malloc}, median of {args.rounds} interleaved rounds, ms per call")
    print("| op | activations (C, H, W) | pass | channels_last | NCHW | channels_last / NCHW |")
    print("| --- | --- | --- | --- | --- | --- |")
    choices = []
    for shape in args.shapes.split(","):
        channels, height, width = (int(v) for v in shape.split("x"))
        assert height == width, "square activations only"
        found = cases(args.batch, channels, height, dtype)
        for backward in (False, True):
            times = {key: [] for key in found}
            for key, case in found.items():
                timed_op(*case, backward, repeats=1)  # warm-up
            for _ in range(args.rounds):
                for key, case in found.items():
                    times[key].append(timed_op(*case, backward))
            median = {key: sorted(v)[len(v) // 2] for key, v in times.items()}
            rows = [("group norm", ("group norm", "channels_last")),
                    ("group norm via NCHW copies", ("group norm", "channels_last via NCHW copies")),
                    ("group norm, kgen's ChannelsLastGroupNorm", ("group norm", "channels_last, kgen")),
                    ("SiLU", ("SiLU", "channels_last")), ("add", ("add", "channels_last"))]
            for name, key in rows:
                if key not in median:
                    continue
                last, first = median[key], median[(key[0], "NCHW")]
                pass_name = "forward + backward" if backward else "forward"
                print(f"| {name} | {channels}, {height}, {width} | {pass_name} | {last:.2f} | {first:.2f} | "
                      f"{last / first:.2f} |", flush=True)
            if backward and ("group norm", "channels_last, kgen") in median:
                x = found[("group norm", "channels_last")][0]
                picked = torch_ops._narrow_groups_channels_last(x, 8)
                faster = median[("group norm", "channels_last, kgen")] < median[("group norm", "channels_last")]
                choices.append(f"{channels}x{height}x{width}: kgen's layer runs "
                               f"{'ChannelsLastGroupNorm' if picked else 'torch.group_norm'}; the faster here is "
                               f"{'ChannelsLastGroupNorm' if faster else 'torch.group_norm'}")
    for line in choices:
        print(line)


if __name__ == "__main__":
    main()
