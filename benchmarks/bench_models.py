"""Forward + backward time of the evaluation networks, per 256-image batch.

Compares eager vs ``torch.compile`` and contiguous vs channels-last memory, for ConvNet at
widths 128/64/32 and the DD AlexNet, on 1×28×28 input (Fashion-MNIST's shape) or any other
shape. One SGD step (forward, cross-entropy, backward, optimiser step) is timed; the median of
``--reps`` steps after ``--warmup`` steps is reported (variants interleaved, so that load from
other processes hits them alike), and the warm-up time, which includes compilation, apart.
Run on one thread by default, as on the shared 2-core machine (the reference ConvNet-128 of
VICO-UoE/DatasetCondensation@53f63a6 was timed once on such a step: see the
``reference_model_step`` table of ``benchmarks/results/reference_speed.json``)::

    .venv/bin/python benchmarks/bench_models.py [--threads 1] [--reps 5] [--device cpu]

Each run prints its table and writes the same rows, with the provenance (commit, versions,
threads, CPU or GPU, load, command line), to ``benchmarks/results/bench_models.json`` and
``.md``, replacing the previous run's (``--out PATH`` writes elsewhere, ``--no-save``
nowhere). What ``EvalConfig(compile=...)`` and ``channels_last`` gain on a machine is the
``vs eager`` column of such a run there.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from fairdd.augment import DEFAULT_STRATEGY, dsa
from fairdd.models import NetworkSpec

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_results.py
from _results import add_arguments, save_from_args  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_variants(spec: NetworkSpec, args: argparse.Namespace) -> list[tuple[bool, bool, float, float]]:
    """Per (compiled, channels_last): median seconds per step and warm-up seconds.

    The variants are timed interleaved (one step of each per round), so that load from other
    processes on a shared machine affects them alike and the ratios stay meaningful.
    """
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(args.batch, args.channels, args.size, args.size, generator=g).to(device)
    y = torch.randint(0, 10, (args.batch,), generator=g).to(device)
    variants = [(c, cl) for c in ((False,) if args.no_compile else (False, True)) for cl in (False, True)]
    steps, warm = [], []
    for compiled, channels_last in variants:
        model = spec.build(args.channels, 10, args.size, seed=0)
        model = model.to(device)
        x = x0
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
            x = x0.contiguous(memory_format=torch.channels_last)
        forward = torch.compile(model) if compiled else model
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

        def step(forward=forward, x=x, opt=opt) -> None:
            loss = F.cross_entropy(forward(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        _sync(device)
        t0 = time.perf_counter()
        for _ in range(args.warmup):
            step()
        _sync(device)
        warm.append(time.perf_counter() - t0)
        steps.append(step)
    times: list[list[float]] = [[] for _ in variants]
    for _ in range(args.reps):
        for i, step in enumerate(steps):
            t0 = time.perf_counter()
            step()
            _sync(device)
            times[i].append(time.perf_counter() - t0)
    return [(c, cl, statistics.median(t), w) for (c, cl), t, w in zip(variants, times, warm)]


def time_dsa(args: argparse.Namespace) -> float:
    device = torch.device(args.device)
    x = torch.rand(args.batch, args.channels, args.size, args.size, device=device, requires_grad=True)
    g = torch.Generator(device=device).manual_seed(0)
    times = []
    for _ in range(max(args.reps, 12)):
        _sync(device)
        t0 = time.perf_counter()
        dsa(x, DEFAULT_STRATEGY, generator=g).sum().backward()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    add_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    nets = [
        NetworkSpec(width=128),
        NetworkSpec(width=64),
        NetworkSpec(width=32),
        NetworkSpec(model="alexnet"),
    ]
    print(f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, "
          f"batch {args.batch}×{args.channels}×{args.size}×{args.size}, median of {args.reps}")
    print(f"{'network':<14}{'compile':>8}{'ch_last':>8}{'s/step':>9}{'vs eager':>9}{'warm-up s':>10}")
    table = []
    for spec in nets:
        label = spec.model + (f"-w{spec.width}" if spec.model == "convnet" else "")
        rows = time_variants(spec, args)
        eager = rows[0][2]
        for compiled, channels_last, sec, warm in rows:
            print(f"{label:<14}{str(compiled):>8}{str(channels_last):>8}{sec:>9.3f}{eager / sec:>8.2f}×{warm:>10.1f}",
                  flush=True)
            table.append({"network": label, "compile": compiled, "channels_last": channels_last, "s_per_step": sec,
                          "speedup_vs_eager": eager / sec, "warmup_s": warm})
    dsa_s = time_dsa(args)
    print(f"DSA draw + apply + backward on the batch: {dsa_s * 1000:.1f} ms")
    save_from_args(args, "bench_models", {"sgd_step": table, "dsa": [{"what": "DSA draw + apply + backward",
                                                                      "ms_per_batch": dsa_s * 1000}]},
                   notes=f"device {args.device}, batch {args.batch}x{args.channels}x{args.size}x{args.size}, "
                         f"median of {args.reps} steps after {args.warmup} warm-up steps (warm-up includes compilation)")


if __name__ == "__main__":
    main()
