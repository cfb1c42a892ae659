"""Networks trained per second: N networks side by side (``fairdd.batched``) vs one by one.

Three tables, each in one run, on the CPU and on CUDA when present (``--devices``):

1. **evaluation** — for each N (default 1, 4, 16, 64), N fresh ConvNets trained with the
   evaluation protocol of :class:`fairdd.evaluate.EvalConfig` (SGD with momentum and weight
   decay, the rate drop at half) on one random set of ``--images`` images, once sequentially
   (N ``train_network`` calls) and once batched (one ``train_networks`` call): networks per
   second at ``--epochs`` epochs for each, their ratio, and the largest weight difference
   between the two paths (a check that both did the same work). Networks per second at the full
   protocol is the printed rate × ``--epochs`` / the protocol's epochs (300 or 1000), since every
   epoch costs the same.
2. **kd** — for each N in ``--kd-sizes``, N KD students of one seed at N temperatures (the
   chapter's sweep shape: one protocol, own T each), trained by :func:`fairdd.kd.fit` one by one
   and by :func:`fairdd.kd.fit_many` side by side, from a teacher's cached logits, on
   ``--kd-images`` random images; students per second and the ratio.
3. **dm** — for each S in ``--dm-seeds``, S DM distillations (seeds) of ``--dm-iterations``
   iterations at IPC 10 on random 10-class data, by :func:`fairdd.distill.distill` one by one and
   by :func:`fairdd.distill.distill_side_by_side`; seed-iterations per second and the ratio.

Each timing is the best of ``--repeats``; one untimed warm-up run of each path precedes them
(first-call overhead of ``vmap``, CUDA start-up). ``--precision bf16`` runs the evaluation
table under bf16 autocast (both paths). Skip a table with ``--skip kd dm``.

Run it (one thread on the CPU, as on the shared 2-core machine)::

    .venv/bin/python benchmarks/bench_throughput.py                       # defaults
    .venv/bin/python benchmarks/bench_throughput.py --sizes 1 4 16 --width 32 --epochs 2
    .venv/bin/python benchmarks/bench_throughput.py --devices cuda --dsa  # GPU only, with DSA

On a loaded machine the absolute rates are noisy; the batched/sequential ratio less so.

Each run prints its tables and writes the same rows, with the provenance (commit, versions,
threads, CPU and GPU, load, command line), to ``benchmarks/results/bench_throughput.json`` and
``.md``, replacing the previous run's (``--out PATH`` writes elsewhere, ``--no-save`` nowhere).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from fairdd import kd
from fairdd.batched import train_networks
from fairdd.data import Dataset
from fairdd.distill import DMConfig, distill, distill_side_by_side
from fairdd.evaluate import EvalConfig, train_network
from fairdd.models import NetworkSpec

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_results.py
from _results import add_arguments, save_from_args  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best(fn: Callable[[], Any], repeats: int, device: torch.device) -> tuple[float, Any]:
    """One untimed warm-up call, then the best wall time of ``repeats`` calls and the last result."""
    fn()
    times, out = [], None
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        out = fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return min(times), out


def _max_diff(a: list[torch.nn.Module], b: list[torch.nn.Module]) -> float:
    return max(
        (p - q).abs().max().item()
        for m, n in zip(a, b)
        for p, q in zip(m.parameters(), n.parameters())
    )


def _random_set(args: argparse.Namespace, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, args.channels, args.size, args.size, generator=g).to(device)
    y = (torch.arange(n) % args.classes).to(device)
    return x, y


# ------------------------------------------------------------------------------ evaluation


def time_pair(
    cfg: EvalConfig, args: argparse.Namespace, num: int, device: torch.device
) -> tuple[float, float, float]:
    """Best-of-``repeats`` seconds to train ``num`` networks sequentially and batched, and the
    largest absolute weight difference between the two results."""
    x, y = _random_set(args, args.images, device)

    def build() -> list[torch.nn.Module]:
        return [cfg.network.build(args.channels, args.classes, args.size, seed=s).to(device) for s in range(num)]

    def generators() -> list[torch.Generator]:
        return [torch.Generator(device=device).manual_seed(1000 + i) for i in range(num)]

    def sequential() -> list[torch.nn.Module]:
        models = build()
        for m, gen in zip(models, generators()):
            train_network(m, x, y, cfg, generator=gen)
        return models

    def batched() -> list[torch.nn.Module]:
        models = build()
        train_networks(models, x, y, cfg, generators=generators())
        return models

    seq, seq_models = _best(sequential, args.repeats, device)
    bat, bat_models = _best(batched, args.repeats, device)
    return seq, bat, _max_diff(seq_models, bat_models)


# ------------------------------------------------------------------------------------- KD


def kd_pair(args: argparse.Namespace, num: int, device: torch.device) -> tuple[float, float, float]:
    """Seconds to train ``num`` KD students (temperatures 1..num, α 0.8, cached teacher logits)
    one by one and side by side, and the largest weight difference."""
    x, y = _random_set(args, args.kd_images, device)
    train = Dataset("random", "train", x, y, tuple(str(c) for c in range(args.classes)))
    student = NetworkSpec(model=args.kd_student) if args.kd_student != "convnet" else NetworkSpec(width=32)
    base = kd.KDConfig(student=student, epochs=args.epochs, milestones=(max(1, args.epochs // 2),), augment=False,
                       batch_size=args.kd_batch, alpha=0.8)
    configs = [dataclasses.replace(base, temperature=float(t)) for t in range(1, num + 1)]
    logits = torch.randn(args.kd_images, args.classes, generator=torch.Generator().manual_seed(1)).to(device)

    def build() -> list[torch.nn.Module]:
        return [student.build(args.channels, args.classes, args.size, seed=0).to(device) for _ in configs]

    def generators() -> list[torch.Generator]:
        return [torch.Generator(device=device).manual_seed(7) for _ in configs]

    def sequential() -> list[torch.nn.Module]:
        models = build()
        for m, cfg, gen in zip(models, configs, generators()):
            kd.fit(m, train, cfg, generator=gen, cached_logits=logits)
        return models

    def batched() -> list[torch.nn.Module]:
        models = build()
        kd.fit_many(models, train, configs, generators=generators(), cached_logits=logits)
        return models

    seq, seq_models = _best(sequential, args.repeats, device)
    bat, bat_models = _best(batched, args.repeats, device)
    return seq, bat, _max_diff(seq_models, bat_models)


# ------------------------------------------------------------------------------------- DM


def dm_pair(args: argparse.Namespace, seeds: int, device: torch.device) -> tuple[float, float, float]:
    """Seconds to distil ``seeds`` DM runs one by one and side by side, and the largest image
    difference."""
    n = args.classes * args.dm_per_class
    x, y = _random_set(args, n, device)
    train = Dataset("random", "train", x, y, tuple(str(c) for c in range(args.classes)))
    # channels_last off: the side-by-side path does not use it, so both paths round alike and
    # max |Δ| measures the batching alone (a layout's rounding grows over DM's iterations too).
    cfg = DMConfig(network=NetworkSpec(width=args.width, depth=args.depth), iterations=args.dm_iterations,
                   batch_real=args.dm_batch_real, checkpoint_every=args.dm_iterations, channels_last=False)
    wanted = list(range(seeds))

    def sequential() -> list[torch.Tensor]:
        return [distill(train, cfg, images_per_class=10, seed=s, device=device, progress=False).images for s in wanted]

    def batched() -> list[torch.Tensor]:
        return [s.images for s in distill_side_by_side(train, cfg, images_per_class=10, seeds=wanted, device=device)]

    seq, seq_images = _best(sequential, args.repeats, device)
    bat, bat_images = _best(batched, args.repeats, device)
    diff = max((a - b).abs().max().item() for a, b in zip(seq_images, bat_images))
    return seq, bat, diff


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16, 64], help="numbers of networks N")
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, and cuda when present")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads")
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--norm", default="instancenorm")
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--images", type=int, default=100, help="training set size (10 classes × IPC)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--dsa", action="store_true")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="evaluation table only")
    parser.add_argument("--kd-sizes", type=int, nargs="+", default=[1, 4, 13], help="KD students N (13: the chapter's temperatures)")
    parser.add_argument("--kd-student", default="lenet", help="lenet, resnet20, mlp_small or convnet (width 32)")
    parser.add_argument("--kd-images", type=int, default=512)
    parser.add_argument("--kd-batch", type=int, default=128)
    parser.add_argument("--dm-seeds", type=int, nargs="+", default=[1, 4], help="DM seeds S")
    parser.add_argument("--dm-iterations", type=int, default=5)
    parser.add_argument("--dm-batch-real", type=int, default=64)
    parser.add_argument("--dm-per-class", type=int, default=100, help="real images per class of the random set")
    parser.add_argument("--skip", nargs="*", default=[], choices=("evaluation", "kd", "dm"))
    parser.add_argument("--repeats", type=int, default=1)
    add_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    devices = args.devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    cfg = EvalConfig(
        network=NetworkSpec(width=args.width, depth=args.depth, norm=args.norm),
        epochs=args.epochs,
        batch_size=args.batch,
        dsa=args.dsa,
        precision=args.precision,
        num_networks=max(args.sizes),
    )
    print(
        f"torch {torch.__version__}; ConvNet-{args.width}-{args.depth} {args.norm}; {args.images} images "
        f"{args.channels}×{args.size}×{args.size}, batch {args.batch}, {args.epochs} epochs, dsa={args.dsa}, "
        f"{args.precision}; CPU threads {torch.get_num_threads()}; best of {args.repeats}"
    )
    tables: dict[str, list[dict[str, Any]]] = {}
    header = f"{'device':<8}{'N':>5}{'seq /s':>12}{'batched /s':>14}{'batched/seq':>13}{'max |Δ|':>11}"

    def report(name: str, unit: str, sizes: list[int], pair: Callable[[int, torch.device], tuple[float, float, float]],
               per: Callable[[int], int] = lambda n: n) -> None:
        print(f"\n{name}: {unit} per second\n{header}")
        rows = tables.setdefault(name, [])
        for dev in devices:
            device = torch.device(dev)
            for num in sizes:
                seq, bat, diff = pair(num, device)
                work = per(num)
                print(f"{dev:<8}{num:>5}{work / seq:>12.3f}{work / bat:>14.3f}{seq / bat:>12.2f}×{diff:>11.1e}", flush=True)
                rows.append({"device": dev, "n": num, "seq_s": seq, "batched_s": bat, f"seq_{unit}_per_s": work / seq,
                             f"batched_{unit}_per_s": work / bat, "batched_over_seq": seq / bat, "max_abs_diff": diff})

    if "evaluation" not in args.skip:
        report("evaluation", "networks", args.sizes, lambda n, d: time_pair(cfg, args, n, d))
    if "kd" not in args.skip:
        report("kd", "students", args.kd_sizes, lambda n, d: kd_pair(args, n, d))
    if "dm" not in args.skip:
        report("dm", "seed_iterations", args.dm_seeds, lambda n, d: dm_pair(args, n, d),
               per=lambda n: n * args.dm_iterations)
    save_from_args(
        args,
        "bench_throughput",
        tables,
        notes=(
            f"evaluation: ConvNet-{args.width}-{args.depth} {args.norm}, {args.images} images, batch {args.batch}, "
            f"{args.epochs} epochs, dsa={args.dsa}, {args.precision}; kd: {args.kd_student} students, "
            f"{args.kd_images} images, batch {args.kd_batch}, {args.epochs} epochs, cached logits; dm: ConvNet-"
            f"{args.width}-{args.depth}, IPC 10, batch_real {args.dm_batch_real}, {args.dm_iterations} iterations, "
            "channels_last off; "
            f"best of {args.repeats}"
        ),
    )


if __name__ == "__main__":
    main()
