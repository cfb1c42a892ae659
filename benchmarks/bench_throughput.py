"""Networks trained per second: N networks side by side (``fairdd.batched``) vs one by one.

For each N (default 1, 4, 16, 64) and each device (the CPU, and CUDA when present), N fresh
ConvNets are trained with the evaluation protocol of :class:`fairdd.evaluate.EvalConfig`
(SGD with momentum and weight decay, the rate drop at half) on one random set of
``--images`` images, once sequentially (N ``train_network`` calls) and once batched (one
``train_networks`` call), and the table gives networks per second at ``--epochs`` epochs for
each, their ratio, and the largest weight difference between the two paths (a check that
both did the same work). Each timing is the best of ``--repeats``; one untimed warm-up run of
each path precedes them (first-call overhead of ``vmap``, CUDA start-up). Networks per second
at the full protocol is the printed rate × ``--epochs`` / the protocol's epochs (300 or 1000),
since every epoch costs the same.

Run it (one thread on the CPU, as on the shared 2-core machine)::

    .venv/bin/python benchmarks/bench_throughput.py                       # defaults
    .venv/bin/python benchmarks/bench_throughput.py --sizes 1 4 16 --width 32 --epochs 2
    .venv/bin/python benchmarks/bench_throughput.py --devices cuda --dsa  # GPU only, with DSA

On a loaded machine the absolute rates are noisy; the batched/sequential ratio less so.

Each run prints its table and writes the same rows, with the provenance (commit, versions,
threads, CPU and GPU, load, command line), to ``benchmarks/results/bench_throughput.json`` and
``.md``, replacing the previous run's (``--out PATH`` writes elsewhere, ``--no-save`` nowhere).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

from fairdd.batched import train_networks
from fairdd.evaluate import EvalConfig, train_network
from fairdd.models import NetworkSpec

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_results.py
from _results import add_arguments, save_from_args  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _build(
    cfg: EvalConfig, args: argparse.Namespace, num: int, device: torch.device
) -> list[torch.nn.Module]:
    return [
        cfg.network.build(args.channels, args.classes, args.size, seed=s).to(device)
        for s in range(num)
    ]


def _generators(num: int, device: torch.device) -> list[torch.Generator]:
    return [torch.Generator(device=device).manual_seed(1000 + i) for i in range(num)]


def time_pair(
    cfg: EvalConfig, args: argparse.Namespace, num: int, device: torch.device
) -> tuple[float, float, float]:
    """Best-of-``repeats`` seconds to train ``num`` networks sequentially and batched, and the
    largest absolute weight difference between the two results."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(args.images, args.channels, args.size, args.size, generator=g).to(
        device
    )
    y = (torch.arange(args.images) % args.classes).to(device)

    def sequential() -> list[torch.nn.Module]:
        models = _build(cfg, args, num, device)
        for m, gen in zip(models, _generators(num, device)):
            train_network(m, x, y, cfg, generator=gen)
        return models

    def batched() -> list[torch.nn.Module]:
        models = _build(cfg, args, num, device)
        train_networks(models, x, y, cfg, generators=_generators(num, device))
        return models

    best = {}
    results = {}
    for name, fn in (("seq", sequential), ("bat", batched)):
        fn()  # warm-up, untimed
        times = []
        for _ in range(args.repeats):
            _sync(device)
            t0 = time.perf_counter()
            results[name] = fn()
            _sync(device)
            times.append(time.perf_counter() - t0)
        best[name] = min(times)
    diff = max(
        (p - q).abs().max().item()
        for a, b in zip(results["seq"], results["bat"])
        for p, q in zip(a.parameters(), b.parameters())
    )
    return best["seq"], best["bat"], diff


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[1, 4, 16, 64],
        help="numbers of networks N",
    )
    parser.add_argument(
        "--devices", nargs="+", default=None, help="default: cpu, and cuda when present"
    )
    parser.add_argument("--threads", type=int, default=1, help="CPU threads")
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--norm", default="instancenorm")
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument(
        "--images", type=int, default=100, help="training set size (10 classes × IPC)"
    )
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--dsa", action="store_true")
    parser.add_argument("--repeats", type=int, default=1)
    add_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    devices = args.devices or (
        ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    )
    cfg = EvalConfig(
        network=NetworkSpec(width=args.width, depth=args.depth, norm=args.norm),
        epochs=args.epochs,
        batch_size=args.batch,
        dsa=args.dsa,
    )
    cfg = dataclasses.replace(cfg, num_networks=max(args.sizes))
    print(
        f"torch {torch.__version__}; ConvNet-{args.width}-{args.depth} {args.norm}; {args.images} images "
        f"{args.channels}×{args.size}×{args.size}, batch {args.batch}, {args.epochs} epochs, dsa={args.dsa}; "
        f"CPU threads {torch.get_num_threads()}; best of {args.repeats}"
    )
    print(
        f"{'device':<8}{'N':>5}{'seq nets/s':>12}{'batched nets/s':>16}{'batched/seq':>13}{'max |Δw|':>11}"
    )
    rows = []
    for dev in devices:
        device = torch.device(dev)
        for num in args.sizes:
            seq, bat, diff = time_pair(cfg, args, num, device)
            print(
                f"{dev:<8}{num:>5}{num / seq:>12.3f}{num / bat:>16.3f}{seq / bat:>12.2f}×{diff:>11.1e}",
                flush=True,
            )
            rows.append({"device": dev, "networks": num, "seq_s": seq, "batched_s": bat,
                         "seq_nets_per_s": num / seq, "batched_nets_per_s": num / bat,
                         "batched_over_seq": seq / bat, "max_abs_weight_diff": diff})
    save_from_args(
        args,
        "bench_throughput",
        {"throughput": rows},
        notes=f"ConvNet-{args.width}-{args.depth} {args.norm}; {args.images} images, batch {args.batch}, "
        f"{args.epochs} epochs, dsa={args.dsa}; best of {args.repeats}",
    )


if __name__ == "__main__":
    main()
