"""Threads or processes for many small trainings? Times one workload three ways.

The workload is what the studies repeat over seeds: a small ConvNet (width 32, depth 3,
instance norm) trained with SGD on 1x28x28 inputs, one training per seed. It runs as

(a) one process with 2 torch threads, the seeds one after another;
(b) ``map_processes``: 2 worker processes with 1 torch thread each (wall time includes
    starting the workers, i.e. importing torch in each);
(c) for reference, one process with 1 thread, the seeds one after another.

Usage::

    .venv/bin/python benchmarks/bench_threads.py [--seeds 4] [--steps 20] [--batch 128]

The data are seeded random tensors: the timing, not the accuracy, is the point. The
machine is shared, so repeat a run before trusting a ratio.

Each run prints its table and writes the same numbers, with the provenance (commit, versions,
CPU, load, command line), to ``benchmarks/results/bench_threads.json`` and ``.md``, replacing
the previous run's (``--out PATH`` writes elsewhere, ``--no-save`` nowhere).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from fairdd.models import NetworkSpec
from fairdd.parallel import map_processes

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_results.py
from _results import add_arguments, save_from_args  # noqa: E402

NUM_CLASSES = 10
IMAGE_SIZE = 28  # Fashion-MNIST / MNIST resolution
POOL = 8  # training-set size in batches: enough distinct samples, little memory


def train_one(seed: int, *, steps: int, batch: int, width: int) -> dict[str, float]:
    """Train one seeded ConvNet for ``steps`` SGD steps; return its time and final loss."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(POOL * batch, 1, IMAGE_SIZE, IMAGE_SIZE, generator=g)  # (N, 1, 28, 28)
    y = torch.randint(0, NUM_CLASSES, (POOL * batch,), generator=g)
    model = NetworkSpec(width=width).build(1, NUM_CLASSES, IMAGE_SIZE, seed=seed)
    # lr 0.01 and momentum 0.9: the DC/DSA/DM evaluation optimiser.
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    start = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (batch,), generator=g)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return {"seconds": time.perf_counter() - start, "loss": loss.item()}


MODES = {
    "a": ("(a) 1 process x 2 threads, sequential", dict(processes=1, threads_per_process=2)),
    "b": ("(b) 2 processes x 1 thread (map_processes)", dict(processes=2, threads_per_process=1)),
    "c": ("(c) 1 process x 1 thread, sequential", dict(processes=1, threads_per_process=1)),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=4, help="number of independent trainings")
    parser.add_argument("--steps", type=int, default=20, help="SGD steps per training")
    parser.add_argument("--batch", type=int, default=128, help="batch size")
    parser.add_argument("--width", type=int, default=32, help="ConvNet width (feature maps)")
    parser.add_argument("--modes", default="abc", help="which of a, b, c to run, in this order")
    parser.add_argument("--repeats", type=int, default=1, help="rounds over the modes; medians are reported")
    add_arguments(parser)
    args = parser.parse_args()
    if not args.modes or set(args.modes) - set(MODES):
        parser.error(f"--modes={args.modes!r}: use letters from {''.join(MODES)}")

    job = functools.partial(train_one, steps=args.steps, batch=args.batch, width=args.width)
    seeds = list(range(args.seeds))
    print(
        f"ConvNet width {args.width}, {args.seeds} seeds x {args.steps} steps of batch {args.batch}, "
        f"torch {torch.__version__}, {args.repeats} round(s)"
    )
    walls: dict[str, list[float]] = {m: [] for m in args.modes}
    losses: dict[str, list[float]] = {}
    rounds = []
    for repeat in range(args.repeats):
        # Round-robin, so that a change in the shared machine's load hits every mode.
        for mode in args.modes:
            label, kwargs = MODES[mode]
            start = time.perf_counter()
            # processes=1 runs inline with the given thread count, then restores it.
            out = map_processes(job, seeds, **kwargs)
            walls[mode].append(time.perf_counter() - start)
            losses[mode] = [o["loss"] for o in out]
            per_seed = statistics.mean(o["seconds"] for o in out)
            print(f"{label:<44} wall {walls[mode][-1]:7.2f} s   training time per seed {per_seed:6.2f} s")
            rounds.append({"round": repeat, "mode": mode, "label": label, **kwargs, "wall_s": walls[mode][-1],
                           "train_s_per_seed": per_seed})
    median = {m: statistics.median(w) for m, w in walls.items()}
    print("median wall: " + "   ".join(f"({m}) {median[m]:.2f} s" for m in args.modes))
    summary = [{"mode": m, "label": MODES[m][0], "median_wall_s": median[m],
                "speedup_over_a": median["a"] / median[m] if "a" in median else None} for m in args.modes]
    for other in "bc":
        if "a" in median and other in median:
            print(f"speed-up of ({other}) over (a): {median['a'] / median[other]:.2f}x")
    diff = None
    if "a" in losses and "b" in losses:
        diff = max(abs(x - y) for x, y in zip(losses["a"], losses["b"]))
        print(f"largest final-loss difference between (a) and (b): {diff:.2e} (thread count changes summation order)")
    save_from_args(args, "bench_threads", {"summary": summary, "rounds": rounds,
                                           "check": [{"max_final_loss_diff_a_b": diff}]},
                   notes=f"ConvNet width {args.width}, {args.seeds} seeds x {args.steps} steps of batch {args.batch}, "
                         f"{args.repeats} round(s), medians over rounds")


if __name__ == "__main__":
    main()
