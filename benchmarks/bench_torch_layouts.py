"""Torch's CPU kernels for the UNet's elementwise and normalisation ops, channels_last against NCHW.

    python benchmarks/bench_torch_layouts.py [--batch 128] [--rounds 7]

Why kgen's UNet trains slower on the torch backend than diffusers' identical
network although its convolutions are faster: Keras hands torch NHWC tensors,
which kgen's layers view as NCHW in torch's `channels_last` memory format
(oneDNN's convolutions run that layout without reordering), while diffusers
runs contiguous NCHW. This times each op of a residual block on the UNet's
three activation shapes in both memory formats, forward and forward plus
backward through autograd, rounds interleaved, median of `--rounds`; and the
one workaround open to a layer, a group norm that copies its input to NCHW
and its output back.
"""

import argparse
import time

import torch
import torch.nn.functional as F


def group_norm_via_nchw(x, groups, weight, bias):
    """Group norm of a channels_last tensor computed in contiguous NCHW, the result channels_last again."""
    y = F.group_norm(x.contiguous(), groups, weight, bias, 1e-5)
    return y.contiguous(memory_format=torch.channels_last)


def cases(batch, channels, size):
    torch.manual_seed(0)
    nhwc = torch.randn(batch, size, size, channels)
    other = torch.randn(batch, size, size, channels)
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
    return found


def timed(x, y, op, backward, repeats=5):
    x = x.detach().requires_grad_(backward)
    start = time.perf_counter()
    for _ in range(repeats):
        out = op(x, y)
        if backward:
            out.backward(y)
    return (time.perf_counter() - start) / repeats * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
          f"median of {args.rounds} interleaved rounds, ms per call")
    print("| op | activations (C, H, W) | pass | channels_last | NCHW | channels_last / NCHW |")
    print("| --- | --- | --- | --- | --- | --- |")
    for channels, size in ((32, 32), (64, 16), (128, 8)):
        found = cases(args.batch, channels, size)
        for backward in (False, True):
            times = {key: [] for key in found}
            for key, case in found.items():
                timed(*case, backward, repeats=1)  # warm-up
            for _ in range(args.rounds):
                for key, case in found.items():
                    times[key].append(timed(*case, backward))
            median = {key: sorted(v)[len(v) // 2] for key, v in times.items()}
            rows = [("group norm", median[("group norm", "channels_last")]),
                    ("group norm via NCHW copies", median[("group norm", "channels_last via NCHW copies")]),
                    ("SiLU", median[("SiLU", "channels_last")]), ("add", median[("add", "channels_last")])]
            for name, last in rows:
                first = median[(name.replace(" via NCHW copies", ""), "NCHW")]
                pass_name = "forward + backward" if backward else "forward"
                print(f"| {name} | {channels}, {size}, {size} | {pass_name} | {last:.2f} | {first:.2f} | "
                      f"{last / first:.2f} |", flush=True)


if __name__ == "__main__":
    main()
