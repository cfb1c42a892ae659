"""The units of work that ``bench_flops.py`` and ``bench_profile.py`` time and profile, each run
in a fresh worker process (``python benchmarks/_workloads.py WORKLOAD ...`` prints one JSON line).

Why a process per measurement: ``NetworkSpec(fast_kernels=True)`` changes the process's
allocator for good (:func:`fairdd.training.keep_freed_memory`), so a "before" measured after an
"after" in the same process would not be today's path. The parent runs the workers
alternately (off, on, off, on, ...) so the machine's load hits both alike, and takes medians.

Workloads, all at the ``cpu`` profile's settings on Fashion-MNIST (28×28, normalised):

- ``train_step``: one SGD step (momentum 0.9, weight decay 5e-4, as the evaluation protocol)
  of the network at batch 256, no augmentation. The network is ``--model`` (``convnet`` at
  ``--width``, or ``lenet``/``alexnet``); ``--precision bf16`` runs it under CPU autocast.
- ``eval_step``: one minibatch step of :func:`fairdd.evaluate.train_network` under the
  evaluation protocol of DM's ``cpu`` sets (:func:`fairdd.distill.evaluation_config`:
  ConvNet-32, DSA on, batch 256), on 1,024 real images (4 steps an epoch, 2 epochs per unit).
- ``dc``, ``dm``, ``mtt``: one iteration of :func:`fairdd.distill.distill` with
  ``config_for(method, "cpu")`` at ``--ipc`` (MTT with one cached expert of 512 images an
  epoch: an iteration's cost does not depend on how good its expert is), timed between
  consecutive callbacks (so set-up, the initial images and the first iteration are left out).

A worker warms up (one unit), then times ``--units`` units; with ``--profile`` it profiles
one more unit with ``torch.profiler`` and returns its time split into buckets
(:func:`buckets`). ``--flops`` counts one unit's FLOPs (``FlopCounterMode``: convolutions and
matrix products only).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

WORKLOADS = ("train_step", "eval_step", "dc", "dm", "mtt")
BUCKETS = (
    "convolutions",
    "matrix products (linear)",
    "normalisation",
    "activation",
    "pooling",
    "DSA",
    "optimiser",
    "loss",
    "data movement",
    "other ops",
    "Python/autograd overhead",
)


# ---------------------------------------------------------------------------- workers


def _data():
    from fairdd.data import channel_stats, load_dataset, normalize

    train = load_dataset("fashion_mnist", "train")
    mean, std = channel_stats(train.inputs)
    return dataclasses.replace(train, inputs=normalize(train.inputs, mean, std))


def cpu_config(method: str):
    """The ``cpu`` profile's config of ``method``: the methods study's (which states the reduced
    protocol), or the method's own ``for_profile("cpu")`` where a version still has one."""
    try:
        from fairdd.studies.methods import MethodsStudyConfig

        return getattr(MethodsStudyConfig.for_profile("cpu"), method)
    except (ImportError, AttributeError, TypeError, ValueError):
        from fairdd.distill import config_for

        return config_for(method, "cpu")


def _distill_config(method: str, width: int, iterations: int, fast: bool):
    cfg = cpu_config(method)
    network = dataclasses.replace(cfg.network, width=width, fast_kernels=fast)
    cfg = dataclasses.replace(cfg, network=network, iterations=iterations, checkpoint_every=max(iterations, 1))
    if method == "mtt":
        cfg = dataclasses.replace(cfg, num_experts=1, expert_train_epochs=cfg.max_start_epoch + cfg.expert_epochs,
                                  expert_epoch_size=512)
    return cfg


def make_runner(args: argparse.Namespace) -> tuple[Callable[[int, Callable[[int], None]], None], int]:
    """``(run, steps_per_unit)``: ``run(units, tick)`` does ``units`` units of work, calling
    ``tick(i)`` before the first (i = 0) and after each (i = 1..units)."""
    import torch
    from torch.nn import functional as F

    from fairdd.models import NetworkSpec
    from fairdd.training import autocast

    train = _data()
    fast = bool(args.fast)
    if args.workload == "train_step":
        spec = NetworkSpec(model=args.model, width=args.width, fast_kernels=fast)
        net = spec.build(1, 10, 28, seed=0)
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        x, y = train.inputs[:256].clone(), train.labels[:256].clone()
        cpu = torch.device("cpu")

        def run(units: int, tick: Callable[[int], None]) -> None:
            tick(0)
            for i in range(units):
                with autocast(cpu, args.precision):
                    out = net(x)
                loss = F.cross_entropy(out.float(), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                tick(i + 1)

        return run, 1
    if args.workload == "eval_step":
        from fairdd.distill import evaluation_config
        from fairdd.evaluate import train_network
        from fairdd.seeding import generator

        cfg = evaluation_config(cpu_config("dm"), epochs=2, num_networks=1)
        cfg = dataclasses.replace(cfg, network=dataclasses.replace(cfg.network, width=args.width, fast_kernels=fast),
                                  precision=args.precision)
        images, labels = train.inputs[:1024].clone(), train.labels[:1024].clone()

        def run(units: int, tick: Callable[[int], None]) -> None:
            tick(0)
            for i in range(units):
                net = cfg.network.build(1, 10, 28, seed=i)
                train_network(net, images, labels, cfg, generator=generator(i))
                tick(i + 1)

        return run, 8
    from fairdd.distill import distill

    def run(units: int, tick: Callable[[int], None]) -> None:
        cfg = _distill_config(args.workload, args.width, units, fast)
        tick(0)
        distill(train, cfg, images_per_class=args.ipc, seed=0, progress=False, callback=lambda done, _: tick(done))

    return run, 1


def buckets(prof, wall_s: float) -> dict[str, float]:
    """Seconds per bucket of one profiled unit: each profiler event's self CPU time goes to a
    bucket by its name, or by its enclosing range (DSA: ``fairdd.dsa`` ranges the worker puts
    around :func:`fairdd.augment.dsa_sample` and ``dsa_apply``; the optimiser: PyTorch's
    ``Optimizer.step``/``zero_grad`` ranges; pooling: ``fairdd.pool`` around the ConvNet's
    pooling modules, and the backward of a 2×2 depthwise convolution, which is
    :class:`fairdd.models.AvgPool2x2`'s). Non-``aten`` events' own time (autograd engine,
    Python ranges) and the wall time no event covers are "Python/autograd overhead"."""
    out = dict.fromkeys(BUCKETS, 0.0)
    total = 0.0
    for ev in prof.events():
        self_s = ev.self_cpu_time_total / 1e6
        total += self_s
        bucket = _bucket(ev)
        out[bucket] += self_s
        if bucket == "other ops":
            OTHER_OPS[ev.name] = OTHER_OPS.get(ev.name, 0.0) + self_s
    out["Python/autograd overhead"] += max(wall_s - total, 0.0)
    return out


#: Seconds per operation name of the "other ops" bucket, filled by :func:`buckets`.
OTHER_OPS: dict[str, float] = {}


def _ancestors(ev):
    p = ev.cpu_parent
    while p is not None:
        yield p.name
        p = p.cpu_parent


def _bucket(ev) -> str:
    name = ev.name
    for a in _ancestors(ev):
        if a == "fairdd.dsa":
            return "DSA"
        if a.startswith("Optimizer."):
            return "optimiser"
        if a == "fairdd.pool" and name.startswith("aten::"):
            return "pooling"
    if name == "fairdd.dsa":
        return "Python/autograd overhead"
    if name.startswith("Optimizer."):
        return "optimiser"
    if not name.startswith("aten::"):
        return "Python/autograd overhead"
    op = name[6:]
    if "grid_sampler" in op or "affine_grid" in op:
        return "DSA"
    if "conv" in op:
        shapes = getattr(ev, "input_shapes", None) or []
        if any(list(s) [1:] == [1, 2, 2] for s in shapes if isinstance(s, (list, tuple)) and len(s) == 4):
            return "pooling"  # AvgPool2x2's depthwise 2×2 convolution (its backward)
        return "convolutions"
    if "pool" in op:
        return "pooling"
    if "norm" in op:
        return "normalisation"
    if op in ("relu", "relu_", "threshold_backward", "clamp_min", "clamp_min_", "leaky_relu", "sigmoid",
              "sigmoid_backward", "tanh", "tanh_backward"):
        return "activation"
    if op in ("mm", "addmm", "bmm", "matmul", "linear", "baddbmm"):
        return "matrix products (linear)"
    if any(k in op for k in ("cross_entropy", "log_softmax", "nll_loss", "softmax")):
        return "loss"
    if op in ("copy_", "_to_copy", "to", "index", "index_select", "cat", "stack", "clone", "contiguous",
              "empty", "empty_strided", "empty_like", "zeros", "zeros_like", "ones_like", "fill_", "zero_",
              "randperm", "gather", "index_put_", "_index_put_impl_", "split", "narrow", "slice", "select",
              "view", "reshape", "flatten", "_unsafe_view", "as_strided", "expand", "t", "transpose",
              "permute", "detach", "detach_", "unsqueeze", "squeeze", "set_", "resize_", "new_zeros",
              "new_empty", "full", "lift_fresh", "alias", "unbind", "chunk", "embedding_dense_backward"):
        return "data movement"
    return "other ops"


def _patch_ranges() -> None:
    """Name the DSA and pooling work for :func:`buckets` (``record_function`` ranges)."""
    import torch

    from fairdd import augment, models

    def ranged(fn, label):
        def wrapper(*a, **k):
            with torch.profiler.record_function(label):
                return fn(*a, **k)
        return wrapper

    augment.dsa_apply = ranged(augment.dsa_apply, "fairdd.dsa")
    augment.dsa_sample = ranged(augment.dsa_sample, "fairdd.dsa")
    models.AvgPool2x2.forward = ranged(models.AvgPool2x2.forward, "fairdd.pool")
    torch.nn.AvgPool2d.forward = ranged(torch.nn.AvgPool2d.forward, "fairdd.pool")
    torch.nn.MaxPool2d.forward = ranged(torch.nn.MaxPool2d.forward, "fairdd.pool")


def flops_of(args: argparse.Namespace) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    run, per_unit = make_runner(args)
    counter = FlopCounterMode(display=False)
    state = {}

    def tick(i: int) -> None:
        if i == 0 and args.workload in ("dc", "dm", "mtt"):
            return
        if i == (0 if args.workload in ("train_step", "eval_step") else 1):
            counter.__enter__()
            state["on"] = True
        elif state.get("on"):
            counter.__exit__(None, None, None)
            state["on"] = False

    # train/eval: count unit 1 (ticks 0 → 1); distill: count iteration 2 (ticks 1 → 2).
    run(1 if args.workload in ("train_step", "eval_step") else 2, tick)
    if state.get("on"):
        counter.__exit__(None, None, None)
    return counter.get_total_flops() / per_unit


def worker(argv: Sequence[str] | None = None) -> dict:
    import torch

    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.flops:
        return {"flops": flops_of(args)}
    if args.profile:
        _patch_ranges()
    run, per_unit = make_runner(args)
    stamps: list[float] = []
    prof_box: dict = {}
    warm, units = 1, args.units

    def tick(i: int) -> None:
        if args.count_flops and i in (0, warm):  # the warm-up unit (MTT's experts: trained beforehand)
            if i == 0:
                from torch.utils.flop_counter import FlopCounterMode

                prof_box["counter"] = FlopCounterMode(display=False)
                prof_box["counter"].__enter__()
            else:
                prof_box["counter"].__exit__(None, None, None)
        now = time.perf_counter()
        if args.profile and i == warm + units:
            prof_box["p"] = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True)
            prof_box["p"].__enter__()
            prof_box["t0"] = time.perf_counter()
            stamps.append(now)
            return
        if args.profile and i == warm + units + 1:
            prof_box["wall"] = time.perf_counter() - prof_box["t0"]
            prof_box["p"].__exit__(None, None, None)
            return
        stamps.append(now)

    run(warm + units + (1 if args.profile else 0), tick)
    times = [(b - a) / per_unit for a, b in zip(stamps[warm:], stamps[warm + 1 :])]
    out: dict = {"seconds": times}
    if args.count_flops:
        out["flops"] = prof_box["counter"].get_total_flops() / per_unit
    if args.profile:
        out["buckets"] = {k: v / per_unit for k, v in buckets(prof_box["p"], prof_box["wall"]).items()}
        out["profiled_wall_s"] = prof_box["wall"] / per_unit
        top = sorted(OTHER_OPS.items(), key=lambda kv: -kv[1])[:6]
        out["other_ops"] = ", ".join(f"{k[6:] if k.startswith('aten::') else k} {v / per_unit * 1e3:.0f} ms" for k, v in top)
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="one benchmark worker (see the module docstring)")
    p.add_argument("workload", choices=WORKLOADS)
    p.add_argument("--fast", type=int, choices=(0, 1), default=0, help="NetworkSpec.fast_kernels")
    p.add_argument("--model", default="convnet", choices=("convnet", "lenet", "alexnet"))
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--ipc", type=int, default=10)
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    p.add_argument("--units", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--flops", action="store_true", help="only count one unit's FLOPs")
    p.add_argument("--count-flops", action="store_true", help="also count the warm-up unit's FLOPs")
    return p


def spawn(argv: Sequence[str], *, env: dict | None = None) -> dict:
    """Run one worker in a fresh interpreter; its JSON result."""
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), *argv], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {list(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    # The profiler's C++ side may print its own lines to stdout; the result is the last JSON line.
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"worker {list(argv)} printed no result:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def interleaved(argv: Sequence[str], variants: Sequence[Sequence[str]], repeats: int, *,
                env: dict | None = None, log: Callable[[str], None] | None = None,
                extra: str | None = None) -> list[list[float]]:
    """Per variant, the per-unit seconds of ``repeats`` workers, run round-robin
    (variant 0, 1, ..., 0, 1, ...): each entry is that worker's median. With ``extra``, one
    more list: that key of every worker's result that has it, in order."""
    log = log or (lambda line: print(line, flush=True))
    out: list[list[float]] = [[] for _ in variants]
    found: list = []
    for r in range(repeats):
        for v, more in enumerate(variants):
            res = spawn([*argv, *more], env=env)
            out[v].append(statistics.median(res["seconds"]))
            if extra is not None and extra in res:
                found.append(res[extra])
            log(f"  {' '.join([*argv, *more])}: {out[v][-1] * 1e3:.1f} ms (repeat {r + 1})")
    return [*out, found] if extra is not None else out


if __name__ == "__main__":
    with contextlib.redirect_stdout(sys.stderr):
        result = worker()
    print(json.dumps(result))
