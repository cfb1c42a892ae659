"""bf16 autocast on this CPU: its speed per network and width, and its accuracy beside fp32 on a
methods protocol and a KD protocol.

1. **Speed.** A training step (SGD, batch 256, Fashion-MNIST 28×28; :mod:`_workloads`'s
   ``train_step``) of ConvNet-32, ConvNet-128 and LeNet, fp32 against bf16 autocast
   (:func:`fairdd.training.autocast`, as ``EvalConfig(precision="bf16")`` runs it), both with
   ``fast_kernels=True``, in alternating fresh worker processes; medians and their ratio.
2. **Methods protocol.** One DM set (``cpu`` settings, IPC ``--ipc``, ``--dm-iterations``
   iterations, seed 0) evaluated by ``--seeds`` fresh ConvNet-32 networks (the evaluation
   protocol of DM's sets: DSA, ``--eval-epochs`` epochs) trained in fp32 and in bf16, tested on
   the first ``--test`` Fashion-MNIST test images. Network i has the same θ0, data order and
   DSA draws in both precisions, so the per-seed difference is paired.
3. **KD protocol.** A ConvNet-32 teacher (fp32) trained on the first ``--kd-train`` training
   images, then LeNet students (α 0.8, T 4) trained in fp32 and under bf16 autocast
   (:func:`fairdd.kd.student` has no precision field: the whole student run is wrapped in
   ``torch.autocast("cpu", bfloat16)``), seeds 0..``--seeds``−1, tested as above.

"Equivalent within the margin" means |mean paired difference| + 2·(its standard error) is at
most ``--margin`` accuracy points. Results: ``benchmarks/results/bench_bf16.json`` (and ``.md``).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _results import add_arguments, save_from_args  # noqa: E402
from _workloads import _data, cpu_config, interleaved  # noqa: E402


def _summary(what: str, fp32: list[float], bf16: list[float], margin: float) -> dict:
    diff = [b - a for a, b in zip(fp32, bf16)]
    se = statistics.stdev(diff) / math.sqrt(len(diff)) if len(diff) > 1 else float("nan")
    bound = abs(statistics.mean(diff)) + 2 * se
    return {
        "protocol": what, "seeds": len(fp32),
        "fp32_mean": statistics.mean(fp32), "fp32_std": statistics.stdev(fp32) if len(fp32) > 1 else float("nan"),
        "bf16_mean": statistics.mean(bf16), "bf16_std": statistics.stdev(bf16) if len(bf16) > 1 else float("nan"),
        "paired_diff_mean": statistics.mean(diff), "paired_diff_std": statistics.stdev(diff) if len(diff) > 1 else float("nan"),
        "margin_points": margin, "equivalent": bool(bound <= margin),
    }


def methods_protocol(args, train, test) -> tuple[list[dict], dict]:
    from fairdd.distill import distill, evaluation_config
    from fairdd.evaluate import evaluate_synthetic

    cfg = cpu_config("dm")
    cfg = dataclasses.replace(cfg, network=dataclasses.replace(cfg.network, fast_kernels=True),
                              iterations=args.dm_iterations, checkpoint_every=args.dm_iterations)
    syn = distill(train, cfg, images_per_class=args.ipc, seed=0, progress=False)
    ev = evaluation_config(cfg, epochs=args.eval_epochs, num_networks=args.seeds)
    acc = {}
    for precision in ("fp32", "bf16"):
        rows = evaluate_synthetic(syn.images, syn.labels, test, dataclasses.replace(ev, precision=precision), seed=0)
        acc[precision] = [100 * r["accuracy"] for r in rows]
        print(f"DM set, {precision}: {acc[precision]}", flush=True)
    per_seed = [{"protocol": "DM set evaluated", "network": i, "fp32": a, "bf16": b}
                for i, (a, b) in enumerate(zip(acc["fp32"], acc["bf16"]))]
    what = f"DM IPC {args.ipc} ({args.dm_iterations} it.) evaluated by ConvNet-32, DSA, {args.eval_epochs} epochs"
    return per_seed, _summary(what, acc["fp32"], acc["bf16"], args.margin)


def kd_protocol(args, train, test) -> tuple[list[dict], dict]:
    from fairdd import kd
    from fairdd.evaluate import accuracy_report, predict
    from fairdd.models import NetworkSpec

    small = train.subset(torch.arange(args.kd_train))
    cfg = kd.KDConfig(teacher=NetworkSpec(width=32, fast_kernels=True), student=NetworkSpec(model="lenet", fast_kernels=True),
                      epochs=args.kd_epochs, milestones=(args.kd_epochs // 2,), lr=0.05, batch_size=128,
                      augment=False, flip=False, alpha=0.8, temperature=4.0)
    teacher, _ = kd.student(dataclasses.replace(cfg, student=cfg.teacher, alpha=0.0), small, seed=1000)
    acc = {"fp32": [], "bf16": []}
    for seed in range(args.seeds):
        for precision in ("fp32", "bf16"):
            if precision == "bf16":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    model, _ = kd.student(cfg, small, seed=seed, teacher_model=teacher)
            else:
                model, _ = kd.student(cfg, small, seed=seed, teacher_model=teacher)
            preds = predict(model, test.inputs, precision=precision)
            acc[precision].append(100 * accuracy_report(preds, test)["accuracy"])
        print(f"KD student seed {seed}: fp32 {acc['fp32'][-1]:.2f}, bf16 {acc['bf16'][-1]:.2f}", flush=True)
    per_seed = [{"protocol": "KD student", "network": i, "fp32": a, "bf16": b}
                for i, (a, b) in enumerate(zip(acc["fp32"], acc["bf16"]))]
    what = f"KD: LeNet student of a ConvNet-32 teacher, {args.kd_train} images, {args.kd_epochs} epochs"
    return per_seed, _summary(what, acc["fp32"], acc["bf16"], args.margin)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="worker pairs (fp32, bf16) per network for the speed")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--ipc", type=int, default=10)
    parser.add_argument("--dm-iterations", type=int, default=100)
    parser.add_argument("--eval-epochs", type=int, default=100)
    parser.add_argument("--kd-train", type=int, default=2000)
    parser.add_argument("--kd-epochs", type=int, default=6)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--margin", type=float, default=1.0, help="accuracy points")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    add_arguments(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    os.environ.setdefault("FAIRDD_RESULTS", tempfile.mkdtemp(prefix="bench-bf16-"))
    tables: dict[str, list[dict]] = {}
    if not args.skip_speed:
        speed = []
        for model, width, units in (("convnet", 32, 2), ("convnet", 128, 1), ("lenet", 32, 3)):
            base = ["train_step", "--model", model, "--width", str(width), "--fast", "1", "--units", str(units)]
            fp32, bf16 = interleaved(base, [["--precision", "fp32"], ["--precision", "bf16"]], args.repeats)
            name = f"ConvNet-{width}" if model == "convnet" else "LeNet"
            a, b = statistics.median(fp32), statistics.median(bf16)
            speed.append({"network": name, "fp32_ms": a * 1e3, "bf16_ms": b * 1e3, "bf16_speedup": a / b,
                          "fp32_runs_ms": [t * 1e3 for t in fp32], "bf16_runs_ms": [t * 1e3 for t in bf16]})
            print(f"{name}: fp32 {a * 1e3:.0f} ms, bf16 {b * 1e3:.0f} ms, x{a / b:.2f}", flush=True)
        tables["speed"] = speed
    if not args.skip_accuracy:
        from fairdd.data import channel_stats, load_dataset, normalize

        train = _data()
        raw = load_dataset("fashion_mnist", "train")
        mean, std = channel_stats(raw.inputs)
        test = load_dataset("fashion_mnist", "test")
        test = dataclasses.replace(test, inputs=normalize(test.inputs, mean, std)).subset(torch.arange(args.test))
        seeds_dm, summary_dm = methods_protocol(args, train, test)
        seeds_kd, summary_kd = kd_protocol(args, train, test)
        tables["accuracy"] = [summary_dm, summary_kd]
        tables["accuracy_per_seed"] = seeds_dm + seeds_kd
    flags = open("/proc/cpuinfo", encoding="utf-8").read() if os.path.exists("/proc/cpuinfo") else ""
    native = "avx512_bf16" in flags or "amx_bf16" in flags
    notes = (f"Shared machine (2 cores, other agents' jobs running): times are noisy, ratios are of medians of "
             f"alternating worker processes. This CPU {'has' if native else 'has no'} native bf16 instructions "
             f"(avx512_bf16/amx_bf16 in /proc/cpuinfo: {native}).")
    save_from_args(args, "bench_bf16", tables, notes=notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
