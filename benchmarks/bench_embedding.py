"""Han et al.'s distillation time on a problem of MOJI's shape.

MOJI (the paper's Table 2a): 100 000 training vectors of 2304 dimensions, 2 classes, 2 groups,
distilled size 10, 5 distillation epochs (T = 50 unrolled steps), real minibatch 1024, and the
reference scripts' 50 passes over the data = 4900 outer steps. The paper reports 632 s for DD at
size 10 on an RTX 3090 (629 s with ADV, 268 s with BTEO, whose schedule counts passes over a
smaller, balanced set; here the schedule counts steps, so BTEO costs what DD costs per step).

The data are random (the cost does not depend on the values). Each variant runs
``distill_embeddings`` for ``--iterations`` outer steps; the median wall time of one outer step
after the first ``--warmup`` (the run's own ``history["step_seconds"]``, robust to load from other
processes on a shared machine) is extrapolated to the reference's 4900 steps, and the whole run's
time is printed too (``--iterations 4900`` times the full protocol)::

    .venv/bin/python benchmarks/bench_embedding.py [--iterations 30] [--device cpu|cuda] [--debias none adv bteo]

Each run prints its table and writes the same rows, with the provenance (commit, versions,
threads, CPU or GPU, command line), to ``benchmarks/results/bench_embedding.json`` and ``.md``,
replacing the previous run's (``--out PATH`` writes elsewhere, ``--no-save`` nowhere). The
seconds quoted above are the paper's own (its Table 2a), not measurements of this code.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from fairdd.data import Dataset
from fairdd.distill.embedding import EmbeddingDDConfig, distill_embeddings

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_results.py
from _results import add_arguments, save_from_args  # noqa: E402

PAPER_SECONDS = {"none": 632, "adv": 629, "bteo": 268}  # Table 2a, size 10, RTX 3090
REFERENCE_STEPS = 4900  # 50 passes × ⌈100 000 / 1024⌉


def moji_shaped(n: int, dim: int, seed: int = 0) -> Dataset:
    """Random vectors with random labels and groups, 80 % of each class in its 'stereotyped' group."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    groups = torch.where(torch.rand(n, generator=g) < 0.8, labels, 1 - labels)
    inputs = torch.randn(n, dim, generator=g)
    return Dataset("moji_shaped", "train", inputs, labels, ("sad", "happy"), groups, "race", ("SAE", "AAE"))


def per_step(train: Dataset, cfg: EmbeddingDDConfig, device: str, warmup: int) -> tuple[float, float]:
    """(median seconds of one outer step after ``warmup`` steps, seconds of the whole call)."""
    start = time.perf_counter()
    result = distill_embeddings(train, cfg, device=device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return statistics.median(result.history["step_seconds"][warmup:]), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="training vectors (MOJI 100 000)")
    parser.add_argument("--dim", type=int, default=2304, help="vector dimensions (DeepMoji 2304)")
    parser.add_argument("--size", type=int, default=10, help="distilled size (Table 2a row)")
    parser.add_argument("--distill-epochs", type=int, default=5, help="cycles of the steps (MOJI 5)")
    parser.add_argument("--iterations", type=int, default=30, help="outer steps timed")
    parser.add_argument("--warmup", type=int, default=3, help="first outer steps left out of the median")
    parser.add_argument("--debias", nargs="+", default=["none", "adv", "bteo"], choices=["none", "adv", "bteo"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    add_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    train = moji_shaped(args.n, args.dim)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"CPU, {args.threads} thread(s)"
    print(f"device: {name}; data {args.n} × {args.dim}, size {args.size}, T = {args.size * args.distill_epochs} unrolled steps")
    print(f"{'variant':8} {'s/step':>8} {'4900 steps (s)':>15} {'paper RTX 3090 (s)':>19} {'paper / ours':>12}")
    if args.iterations <= args.warmup:
        parser.error("--iterations must exceed --warmup")
    rows = []
    for debias in args.debias:
        base = EmbeddingDDConfig(size=args.size, distill_epochs=args.distill_epochs, debias=debias, decay_every=980)
        cfg = EmbeddingDDConfig(**{**base.__dict__, "iterations": args.iterations})
        step, whole = per_step(train, cfg, args.device, args.warmup)
        total = step * REFERENCE_STEPS
        paper = PAPER_SECONDS[debias]
        print(f"{debias:8} {step:8.3f} {total:15.0f} {paper:19d} {paper / total:12.2f}   "
              f"({args.iterations} steps took {whole:.0f} s with set-up)")
        rows.append({"variant": debias, "device": name, "n": args.n, "dim": args.dim, "size": args.size,
                     "unrolled_steps": args.size * args.distill_epochs, "iterations": args.iterations,
                     "warmup": args.warmup, "s_per_step": step, "reference_steps": REFERENCE_STEPS,
                     "extrapolated_s": total, "paper_rtx3090_s": paper, "paper_over_ours": paper / total,
                     "whole_run_s": whole})
    save_from_args(args, "bench_embedding", {"embedding_dd": rows},
                   notes=f"median outer step after {args.warmup} warm-up steps, extrapolated to {REFERENCE_STEPS} steps")


if __name__ == "__main__":
    main()
