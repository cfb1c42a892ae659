"""How close a training step, an evaluation step and one DC, DM and MTT iteration come to this
core's physical limit, before and after ``NetworkSpec(fast_kernels=True)``.

Measured in one run, on one thread (``torch.set_num_threads(1)``, as the studies' worker
processes run):

1. **The limits.** The core's matrix-product rate, fp32 and bf16 (``torch.mm`` of 1024³, and
   at the ConvNet's im2col shapes: ``(batch·H·W) × (C·9)`` by ``(C·9) × C`` for the second
   layer at ``--width`` and at 128), and the ConvNet's 3×3 convolutions alone (``F.conv2d``
   forward and its backward for input and weight, at a distillation iteration's shapes, batch
   ``--batch``: the "conv ceiling" earlier versions of this benchmark compared against), fp32
   channels-first, fp32 channels-last, bf16 and bf16 channels-last.
2. **The workloads** (:mod:`_workloads`): ``train_step`` (ConvNet SGD step, batch 256),
   ``eval_step`` (a step of the evaluation protocol of DM's ``cpu`` sets, DSA on), and one
   ``dc``, ``dm``, ``mtt`` iteration at ``cpu`` settings (IPC ``--ipc``), each with the switch
   off (today's path) and on, in fresh worker processes run alternately (off, on, off, on,
   ...: the machine's load hits both alike); the time is the median over the workers of each
   worker's median. FLOPs per unit are counted once on today's path (``FlopCounterMode``:
   convolutions and matrix products; element-wise work, DSA and the optimiser are not counted,
   so every fraction is a lower bound on how busy the arithmetic units are). The same work is
   done with the switch on, so the "after" rate uses the same FLOPs.

Every workload's GFLOP/s is given as a fraction of the fp32 and the bf16 matrix-product rate
(1024³) and of the fp32 conv ceiling. Run::

    .venv/bin/python benchmarks/bench_flops.py                 # everything, 3 repeats (DC, MTT 2)
    .venv/bin/python benchmarks/bench_flops.py --workloads train_step dm --repeats 3

The results go to ``benchmarks/results/bench_flops.json`` (and ``.md``) with provenance.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _results import add_arguments, save_from_args  # noqa: E402
from _workloads import WORKLOADS, _data, _distill_config, interleaved  # noqa: E402

#: Units timed per worker (each worker also runs one warm-up unit first).
UNITS = {"train_step": 3, "eval_step": 1, "dc": 1, "dm": 3, "mtt": 2}


def _flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _row(what: str, flops: float, seconds: float) -> dict:
    return {"what": what, "gflop": flops / 1e9, "seconds": seconds, "gflop_per_s": flops / seconds / 1e9}


def matmul_rate(m: int, k: int, n: int, dtype: torch.dtype, repeats: int) -> dict:
    """``torch.mm`` of an (m, k) by a (k, n) matrix in ``dtype``."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(m, k, generator=gen).to(dtype)
    b = torch.randn(k, n, generator=gen).to(dtype)
    name = {torch.float32: "fp32", torch.bfloat16: "bf16"}[dtype]
    return _row(f"matmul {name} {m}x{k} @ {k}x{n}", 2.0 * m * k * n, _median_time(lambda: torch.mm(a, b), repeats))


def conv_ceiling(width: int, depth: int, batch: int, image: int, channels: int, repeats: int, *,
                 channels_last: bool = False, dtype: torch.dtype = torch.float32) -> dict:
    """FLOP/s of the ConvNet's 3×3 convolutions alone, forward and backward, at these shapes."""
    gen = torch.Generator().manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    layers = []
    c_in, size = channels, image
    for _ in range(depth):
        x = torch.randn(batch, c_in, size, size, generator=gen).to(dtype).contiguous(memory_format=fmt)
        w = torch.randn(width, c_in, 3, 3, generator=gen).to(dtype).contiguous(memory_format=fmt)
        layers.append((x.requires_grad_(True), w.requires_grad_(True)))
        c_in, size = width, size // 2

    def step() -> None:
        for x, w in layers:
            out = F.conv2d(x, w, padding=1)
            gx, gw = torch.autograd.grad(out, (x, w), torch.ones_like(out))
            del gx, gw

    name = {torch.float32: "fp32", torch.bfloat16: "bf16"}[dtype] + (" channels-last" if channels_last else "")
    return _row(f"conv ceiling {name} (width {width}, depth {depth}, batch {batch})", _flops(step),
                _median_time(step, repeats))


def limits(args: argparse.Namespace, image: int, channels: int) -> list[dict]:
    rows = [matmul_rate(1024, 1024, 1024, torch.float32, args.limit_repeats),
            matmul_rate(1024, 1024, 1024, torch.bfloat16, args.limit_repeats)]
    for width in sorted({args.width, 128}):
        m = args.gemm_batch * 16 * 16  # the second layer's 16×16 maps (28 → 32 by padding → 16 by pooling)
        for dtype in (torch.float32, torch.bfloat16):
            rows.append(matmul_rate(m, width * 9, width, dtype, args.limit_repeats))
    for channels_last in (False, True):
        for dtype in (torch.float32, torch.bfloat16):
            rows.append(conv_ceiling(args.width, args.depth, args.batch, image, channels, args.limit_repeats,
                                     channels_last=channels_last, dtype=dtype))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=WORKLOADS)
    parser.add_argument("--ipc", type=int, default=10)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--batch", type=int, default=256, help="batch of the isolated convolutions")
    parser.add_argument("--gemm-batch", type=int, default=32, help="images in the im2col matrix products' rows")
    parser.add_argument("--limit-repeats", type=int, default=2, help="timed repeats of each limit (after a warm-up)")
    parser.add_argument("--repeats", type=int, default=3, help="worker pairs (off, on) per workload")
    parser.add_argument("--slow-repeats", type=int, default=2, help="at most this many pairs for DC and MTT")
    parser.add_argument("--threads", type=int, default=1)
    add_arguments(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = os.environ.get("FAIRDD_RESULTS") or tempfile.mkdtemp(prefix="bench-flops-")  # MTT's expert cache
    env = {"FAIRDD_RESULTS": results}
    os.environ["FAIRDD_RESULTS"] = results

    train = _data()
    image, channels = train.inputs.shape[-1], train.inputs.shape[1]
    peak = limits(args, image, channels)
    for r in peak:
        print(f"{r['what']:62s} {r['gflop_per_s']:9.1f} GFLOP/s", flush=True)
    fp32, bf16 = peak[0]["gflop_per_s"], peak[1]["gflop_per_s"]
    conv = next(r for r in peak if r["what"].startswith("conv ceiling fp32 ("))["gflop_per_s"]
    for r in peak:
        r.update(of_fp32_matmul=r["gflop_per_s"] / fp32, of_bf16_matmul=r["gflop_per_s"] / bf16,
                 of_conv_ceiling=r["gflop_per_s"] / conv)

    if "mtt" in args.workloads:  # the experts are trained (and cached) here, outside every timing
        from fairdd.distill import train_experts

        for fast in (False, True):
            train_experts(train, _distill_config("mtt", args.width, 1, fast), progress=False)

    rows = []
    for name in args.workloads:
        base = [name, "--width", str(args.width), "--ipc", str(args.ipc), "--units", str(UNITS[name]),
                "--threads", str(args.threads)]
        repeats = min(args.repeats, args.slow_repeats) if name in ("dc", "mtt") else args.repeats  # minutes a worker
        # Today's path counts its warm-up unit's FLOPs (outside the timing); the fast path does the same work.
        off, on, counted = interleaved(base, [["--fast", "0", "--count-flops"], ["--fast", "1"]], repeats, env=env,
                                       extra="flops")
        flops = counted[0]
        before, after = statistics.median(off), statistics.median(on)
        what = {"train_step": f"training step (ConvNet-{args.width}, batch 256)",
                "eval_step": f"evaluation step (ConvNet-{args.width}, DSA, batch 256)"}.get(name, f"{name.upper()} IPC {args.ipc}")
        row = {"what": what, "gflop": flops / 1e9, "before_ms": before * 1e3, "after_ms": after * 1e3,
               "speedup": before / after, "before_runs_ms": [t * 1e3 for t in off],
               "after_runs_ms": [t * 1e3 for t in on]}
        for tag, secs in (("before", before), ("after", after)):
            rate = flops / secs / 1e9
            row[f"{tag}_gflop_per_s"] = rate
            row[f"{tag}_of_fp32_matmul"] = rate / fp32
            row[f"{tag}_of_bf16_matmul"] = rate / bf16
            row[f"{tag}_of_conv_ceiling"] = rate / conv
        rows.append(row)
        print(f"{what:48s} {row['gflop']:8.3f} GFLOP  {row['before_ms']:9.1f} -> {row['after_ms']:9.1f} ms  "
              f"x{row['speedup']:.2f}  fp32-mm {row['before_of_fp32_matmul']:.3f} -> {row['after_of_fp32_matmul']:.3f}", flush=True)
    notes = ("Shared machine (2 cores, several other agents' jobs running): absolute times are noisy; before and after "
             "were measured in alternating fresh worker processes in this one run, and the ratio is of medians. "
             "'before' is NetworkSpec(fast_kernels=False) (today's path), 'after' fast_kernels=True.")
    save_from_args(args, "bench_flops", {"limits": peak, "workloads": rows}, notes=notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
