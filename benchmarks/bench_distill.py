"""Seconds per distillation iteration of DC, DSA, DM and MTT, per profile (and accuracy).

Usage::

    python benchmarks/bench_distill.py --profiles smoke cpu --methods dc dsa dm mtt --ipc 1 10
    python benchmarks/bench_distill.py --profiles paper --methods dm --ipc 10 --iterations 3
    python benchmarks/bench_distill.py --profiles cpu --methods dm --ipc 10 --accuracy

Fashion-MNIST (normalised with the training split's statistics), one thread. For each
(method, profile, IPC) the script runs ``--iterations`` distillation iterations (default: the
profile's full count; a cap keeps paper-profile timings short) and reports the mean seconds
per iteration after the first (warm-up, and compilation with ``--compile``), both wall-clock
and process CPU time: on a machine shared with other jobs the wall time is inflated by the
load, the CPU time much less so. MTT's expert training is timed separately (its cache is
reused, so a second run reports 0). ``--accuracy`` then trains ``--eval-networks`` fresh
networks for ``--eval-epochs`` epochs on the synthetic set (the method's own protocol:
DSA for DSA/DM/MTT, MTT's learned rate) and on a random real subset of the same size, and
prints both test accuracies.

The reference code's own seconds per iteration on a machine like this one
(VICO-UoE/DatasetCondensation@53f63a6 for DC/DSA/DM, GeorgeCazenavette/mtt-distillation@50dccea
for MTT; wall, idle machine, width 128) are printed beside the paper-profile rows: DC IPC 1 16.5 s,
DC IPC 10 419 s, DSA IPC 10 425 s, DM IPC 10 5.8 s, MTT IPC 1 / 10 3.3 / 48 s (CIFAR-10 shape).

Measured on this 2-core machine while shared with other jobs (load 3–6), one thread, CPU
seconds per iteration (wall in brackets). The reference algorithms were timed at the same
time by a harness around the reference's own functions (``get_network``, ``match_loss``,
``DiffAugment``), one thread:

=============  =====  ===================  ========================  =================
method         IPC    paper profile        reference, same machine   cpu profile
=============  =====  ===================  ========================  =================
DC             1      19.4 (37.9)          21.1 (22–31)              0.55 (0.82)
DC compile     1      15.0 (27.0)          –                         –
DC / DSA       10     –                    –                         5.7 / 5.7 (11 / 9)
DM             10     7.5 (14.6)           8.0–9.0 (17–21)           0.22 (0.26)
DM             1      –                    –                         0.17 (0.17)
MTT            1 / 10 –                    –                         0.23 / 1.9 (0.36 / 2.8)
=============  =====  ===================  ========================  =================

DM's paper-size gain is the channels-last real embedding (9.05 → 7.46 s); DC's is
``torch.compile`` on the first-order passes (1.3–1.6×; ~15 s one-off compile). Both
methods are FLOP-bound convolutions on this AVX2 CPU, so the rest matches the reference.
MTT cpu experts (4 × 6 × 10k images, width 32): 357 s wall, once, then cached.

``--accuracy`` (cpu profile, seed 0, 2 networks × 300 epochs each, method's protocol; the
random subset evaluated on the same protocol), test accuracy % synthetic / random:
DC 61.6 / 51.8 (IPC 1), 75.9 / 74.4 (IPC 10); DSA 63.8 / 53.1, 77.5 / 75.8;
DM 71.2 / 53.1, 79.7 / 75.8; MTT 70.9 / 53.1, 77.2 / 75.8.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fairdd.data import channel_stats, load_dataset, normalize  # noqa: E402
from fairdd.distill import config_for, distill, train_experts  # noqa: E402
from fairdd.evaluate import evaluate_synthetic, random_subset  # noqa: E402

# The reference code's speed on this machine (see the module docstring): (method, IPC) → seconds per iteration.
REFERENCE_S_PER_IT = {("dc", 1): 16.5, ("dc", 10): 419.0, ("dsa", 10): 425.0, ("dm", 10): 5.8, ("mtt", 1): 3.3, ("mtt", 10): 48.0}


def fashion_mnist() -> tuple:
    train, test = load_dataset("fashion_mnist", "train"), load_dataset("fashion_mnist", "test")
    mean, std = channel_stats(train.inputs)
    train = dataclasses.replace(train, inputs=normalize(train.inputs, mean, std))
    test = dataclasses.replace(test, inputs=normalize(test.inputs, mean, std))
    return train, test


def bench_one(train, test, method: str, profile: str, ipc: int, args: argparse.Namespace) -> dict:
    cfg = config_for(method, profile)
    iterations = cfg.iterations if args.iterations is None else min(args.iterations, cfg.iterations)
    overrides = {"iterations": iterations}
    if args.compile and method in ("dc", "dsa"):
        overrides["compile"] = True
    cfg = dataclasses.replace(cfg, **overrides)
    expert_s = None
    if method == "mtt":
        start = time.perf_counter()
        train_experts(train, cfg, progress=False)
        expert_s = time.perf_counter() - start
    marks: list[tuple[float, float]] = []
    start = (time.perf_counter(), time.process_time())
    synthetic = distill(
        train, cfg, images_per_class=ipc, seed=args.seed, progress=False,
        callback=lambda done, loss: marks.append((time.perf_counter(), time.process_time())),
    )
    first = marks[0] if len(marks) > 1 else start
    n = max(len(marks) - 1, 1)
    row = {
        "method": method,
        "profile": profile,
        "ipc": ipc,
        "iterations": iterations,
        "wall_s_per_it": (marks[-1][0] - first[0]) / n,
        "cpu_s_per_it": (marks[-1][1] - first[1]) / n,
        "first_it_wall_s": marks[0][0] - start[0],
        "expert_wall_s": expert_s,
        "loss_first": synthetic.losses[0],
        "loss_last": synthetic.losses[-1],
        "reference_s_per_it": REFERENCE_S_PER_IT.get((method, ipc)) if profile == "paper" else None,
    }
    if args.accuracy:
        eval_cfg = synthetic.evaluation_config(epochs=args.eval_epochs, num_networks=args.eval_networks)
        rows = evaluate_synthetic(synthetic.images, synthetic.labels, test, eval_cfg, seed=args.seed,
                                  learning_rate=synthetic.learning_rate)
        subset = random_subset(train, ipc, seed=args.seed)
        base = evaluate_synthetic(subset.inputs, subset.labels, test, eval_cfg, seed=args.seed)
        row["accuracy"] = sum(r["accuracy"] for r in rows) / len(rows)
        row["random_accuracy"] = sum(r["accuracy"] for r in base) / len(base)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", nargs="+", default=["smoke", "cpu"], choices=["smoke", "cpu", "paper"])
    parser.add_argument("--methods", nargs="+", default=["dc", "dsa", "dm", "mtt"], choices=["dc", "dsa", "dm", "mtt"])
    parser.add_argument("--ipc", nargs="+", type=int, default=[1, 10])
    parser.add_argument("--iterations", type=int, default=None, help="cap on iterations per run (default: the profile's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compile", action="store_true", help="DC/DSA: torch.compile the first-order passes")
    parser.add_argument("--accuracy", action="store_true", help="also evaluate against a random real subset")
    parser.add_argument("--eval-epochs", type=int, default=300)
    parser.add_argument("--eval-networks", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train, test = fashion_mnist()
    header = f"{'method':6} {'profile':7} {'ipc':>3} {'iters':>5} {'wall s/it':>9} {'cpu s/it':>9} {'ref s/it':>8} {'experts s':>9}  loss first→last"
    if args.accuracy:
        header += "   acc / random"
    print(header, flush=True)
    for profile in args.profiles:
        for method in args.methods:
            for ipc in args.ipc:
                r = bench_one(train, test, method, profile, ipc, args)
                ref = "" if r["reference_s_per_it"] is None else f"{r['reference_s_per_it']:.1f}"
                experts = "" if r["expert_wall_s"] is None else f"{r['expert_wall_s']:.1f}"
                line = (
                    f"{method:6} {profile:7} {ipc:>3} {r['iterations']:>5} {r['wall_s_per_it']:>9.3f} "
                    f"{r['cpu_s_per_it']:>9.3f} {ref:>8} {experts:>9}  {r['loss_first']:.4g}→{r['loss_last']:.4g}"
                )
                if args.accuracy:
                    line += f"   {100 * r['accuracy']:.1f} / {100 * r['random_accuracy']:.1f}"
                print(line, flush=True)


if __name__ == "__main__":
    main()
