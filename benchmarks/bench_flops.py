"""How close one DC, DM and MTT iteration comes to this machine's own convolution ceiling.

Two measurements in one run, on the same device and thread count:

1. **The ceiling.** The ConvNet's convolutions in isolation (``F.conv2d`` forward, and its
   backward for input and weight), at the shapes a distillation iteration runs them — each
   layer's channels and spatial size for ``--width``/``--depth`` on Fashion-MNIST's 28×28
   images, at batch ``--batch`` — timed alone. Their FLOPs (``torch.utils.flop_counter``) per
   second is what this machine's convolution kernels reach when nothing else runs: the
   practical limit for a FLOP-bound iteration.
2. **The iterations.** ``--iterations`` iterations of each method at its ``cpu`` profile settings
   (``fairdd.distill.config_for(method, "cpu")``, at ``--width``), the time per iteration from the
   difference of two runs (``k`` and ``1`` iterations, so set-up and the initial images cancel),
   and the FLOPs per iteration counted by ``FlopCounterMode`` on one iteration. MTT gets tiny
   cached experts (one expert, 512 images per epoch): an MTT iteration's cost does not depend
   on how good its expert is.

The table gives GFLOP per iteration, seconds per iteration, achieved GFLOP/s, and that as a
fraction of the ceiling; FlopCounterMode counts convolutions and matrix products only, so the
fraction is a lower bound on how busy the arithmetic units are (element-wise work, DSA
augmentation and the optimiser are not counted). Run it with one thread, as the studies' worker
processes run::

    .venv/bin/python benchmarks/bench_flops.py                        # DC, DM, MTT at IPC 10
    .venv/bin/python benchmarks/bench_flops.py --methods dm --ipc 1 10 --iterations 5

The results also go to ``benchmarks/results/bench_flops.json`` (and ``.md``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fairdd.data import channel_stats, load_dataset, normalize  # noqa: E402
from fairdd.distill import config_for, distill  # noqa: E402
from fairdd.models import NetworkSpec  # noqa: E402


def _flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def _best_time(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def conv_ceiling(width: int, depth: int, batch: int, image: int, channels: int, repeats: int) -> dict:
    """FLOP/s of the ConvNet's 3×3 convolutions alone, forward and backward, at these shapes."""
    gen = torch.Generator().manual_seed(0)
    layers = []
    c_in, size = channels, image
    for _ in range(depth):
        x = torch.randn(batch, c_in, size, size, generator=gen, requires_grad=True)
        w = torch.randn(width, c_in, 3, 3, generator=gen, requires_grad=True)
        layers.append((x, w))
        c_in, size = width, size // 2

    def step() -> None:
        for x, w in layers:
            out = F.conv2d(x, w, padding=1)
            gx, gw = torch.autograd.grad(out, (x, w), torch.ones_like(out))
            del gx, gw

    flops = _flops(step)
    seconds = _best_time(step, repeats)
    return {"what": f"conv ceiling (width {width}, depth {depth}, batch {batch})", "gflop": flops / 1e9,
            "seconds": seconds, "gflop_per_s": flops / seconds / 1e9}


def _config(method: str, width: int, iterations: int):
    cfg = config_for(method, "cpu")
    cfg = dataclasses.replace(cfg, network=dataclasses.replace(cfg.network, width=width), iterations=iterations,
                              checkpoint_every=max(iterations, 1))
    if method == "mtt":
        cfg = dataclasses.replace(cfg, num_experts=1, expert_train_epochs=cfg.max_start_epoch + cfg.expert_epochs,
                                  expert_epoch_size=512)
    return cfg


def iteration_rate(train, method: str, ipc: int, width: int, iterations: int) -> dict:
    def run(k: int) -> float:
        start = time.perf_counter()
        distill(train, _config(method, width, k), images_per_class=ipc, seed=0, progress=False)
        return time.perf_counter() - start

    run(1)  # experts (MTT) trained and cached, first-call overheads paid
    seconds = (run(iterations) - run(1)) / (iterations - 1)
    # One iteration's FLOPs (initialising the set from real images and loading an expert do none).
    per_iteration = _flops(lambda: distill(train, _config(method, width, 1), images_per_class=ipc, seed=0, progress=False))
    return {"what": f"{method.upper()} IPC {ipc}", "gflop": per_iteration / 1e9, "seconds": seconds,
            "gflop_per_s": per_iteration / seconds / 1e9}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["dc", "dm", "mtt"], choices=["dc", "dsa", "dm", "mtt"])
    parser.add_argument("--ipc", nargs="+", type=int, default=[10])
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--batch", type=int, default=256, help="batch of the isolated convolutions")
    parser.add_argument("--iterations", type=int, default=4, help="k of the k-minus-1 iteration timing (>= 2)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-save", action="store_true", help="do not write benchmarks/results/bench_flops.*")
    args = parser.parse_args(argv)
    if args.iterations < 2:
        parser.error(f"--iterations={args.iterations}: must be >= 2 (the timing is k minus 1 iterations)")
    torch.set_num_threads(args.threads)
    os.environ.setdefault("FAIRDD_RESULTS", tempfile.mkdtemp(prefix="bench-flops-"))  # MTT's expert cache

    train = load_dataset("fashion_mnist", "train")
    mean, std = channel_stats(train.inputs)
    train = dataclasses.replace(train, inputs=normalize(train.inputs, mean, std))

    ceiling = conv_ceiling(args.width, args.depth, args.batch, train.inputs.shape[-1], train.inputs.shape[1], args.repeats)
    rows = [ceiling]
    for method in args.methods:
        for ipc in args.ipc:
            rows.append(iteration_rate(train, method, ipc, args.width, args.iterations))
    for r in rows:
        r["fraction_of_ceiling"] = r["gflop_per_s"] / ceiling["gflop_per_s"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), width {args.width}")
    print(f"{'what':44s} {'GFLOP':>9s} {'seconds':>9s} {'GFLOP/s':>9s} {'of ceiling':>11s}")
    for r in rows:
        print(f"{r['what']:44s} {r['gflop']:9.3f} {r['seconds']:9.4f} {r['gflop_per_s']:9.2f} {r['fraction_of_ceiling']:11.2f}")
    if not args.no_save:
        try:
            from _results import save
        except ImportError:
            save = None
        if save is not None:
            print(f"results: {save('bench_flops', {'flops': rows}, argv=sys.argv)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
