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

The reference code's own seconds per iteration (VICO-UoE/DatasetCondensation@53f63a6 for
DC/DSA/DM, GeorgeCazenavette/mtt-distillation@50dccea for MTT; wall, idle machine, width 128),
measured once outside this repository, are read from ``benchmarks/results/reference_speed.json``
(whose notes say what was measured and how) and printed beside the paper-profile rows.

Every run prints its table and writes the same rows, with the provenance (commit, versions,
threads, CPU, load, command line), to ``benchmarks/results/bench_distill.json`` and ``.md``,
replacing the previous run's (``--out PATH`` writes elsewhere, ``--no-save`` nowhere). No
measured values are kept here; to measure, on a machine as idle as possible (or read the CPU
column on a shared one):

- seconds per iteration, per profile: ``--profiles paper cpu --methods dc dsa dm mtt --ipc 1 10
  --iterations 3`` (a cap keeps the paper rows short);
- ``torch.compile`` for DC/DSA: the same command with and without ``--compile`` (``--out``
  keeps both files); the first iteration's wall time includes the compilation;
- DM's channels-last real embedding: ``--methods dm`` with and without ``--no-channels-last``;
- MTT's expert training: the ``expert_wall_s`` column of the first run (later runs reuse the
  cached experts);
- accuracy against a random real subset of the same size: ``--profiles cpu --accuracy``
  (``--eval-networks`` networks × ``--eval-epochs`` epochs each, the method's protocol).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_results.py

from fairdd.data import channel_stats, load_dataset, normalize  # noqa: E402
from fairdd.distill import distill, train_experts  # noqa: E402
from fairdd.studies.methods import MethodsStudyConfig  # noqa: E402
from fairdd.evaluate import evaluate_synthetic, random_subset  # noqa: E402
from _results import RESULTS_DIR, add_arguments, load, save_from_args  # noqa: E402

REFERENCE_SPEED = RESULTS_DIR / "reference_speed.json"


def reference_s_per_it(path: Path = REFERENCE_SPEED) -> dict[tuple[str, int], float]:
    """The reference code's wall seconds per iteration, (method, IPC) → s (its file's ``reference_idle`` table)."""
    rows = load(path)["tables"]["reference_idle"]
    return {(r["method"], int(r["ipc"])): float(r["wall_s_per_it"]) for r in rows}


REFERENCE_S_PER_IT = reference_s_per_it()


def fashion_mnist() -> tuple:
    train, test = load_dataset("fashion_mnist", "train"), load_dataset("fashion_mnist", "test")
    mean, std = channel_stats(train.inputs)
    train = dataclasses.replace(train, inputs=normalize(train.inputs, mean, std))
    test = dataclasses.replace(test, inputs=normalize(test.inputs, mean, std))
    return train, test


def bench_one(train, test, method: str, profile: str, ipc: int, args: argparse.Namespace) -> dict:
    # A profile's configs are the methods page's (fairdd.studies.methods states them; "paper" is
    # the references' settings).
    cfg = getattr(MethodsStudyConfig.for_profile(profile), method)
    iterations = cfg.iterations if args.iterations is None else min(args.iterations, cfg.iterations)
    overrides = {"iterations": iterations}
    if args.compile and method in ("dc", "dsa"):
        overrides["compile"] = True
    if args.no_channels_last and method == "dm":
        overrides["channels_last"] = False
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
        "compile": bool(getattr(cfg, "compile", False)),
        "channels_last": getattr(cfg, "channels_last", None),
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
    parser.add_argument("--no-channels-last", action="store_true",
                        help="DM: embed the real batches contiguous (default: channels-last)")
    parser.add_argument("--threads", type=int, default=1)
    add_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train, test = fashion_mnist()
    header = f"{'method':6} {'profile':7} {'ipc':>3} {'iters':>5} {'wall s/it':>9} {'cpu s/it':>9} {'ref s/it':>8} {'experts s':>9}  loss first→last"
    if args.accuracy:
        header += "   acc / random"
    print(header, flush=True)
    rows = []
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
                rows.append(r)
    save_from_args(args, "bench_distill", {"distillation": rows},
                   notes="seconds per iteration after the first; wall and process CPU time")


if __name__ == "__main__":
    main()
