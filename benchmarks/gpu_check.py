"""The GPU checks of the throughput work, in one script that finishes in under 8 minutes.

Run it once on a lent GPU (H100/H200), from the repository root, then hand the machine back::

    python benchmarks/gpu_check.py --out "$OUT"        # $OUT: the folder the device tool returns

It does, in order (the throughput step has a 3-minute timeout, the paper evaluation reports
whether it stayed within ``--paper-budget-s``):

1. **Equivalence on CUDA.** N = 4 ConvNets trained side by side (:func:`fairdd.batched.train_networks`)
   against the same four trained one by one (:func:`fairdd.evaluate.train_network`), 28×28 colour
   images with DSA, a few epochs: the largest weight difference and whether it is within the CPU
   test's tolerance (``rtol 1e-4 / atol 1e-5``, ``tests/test_batched.py``).
2. **The throughput table.** ``benchmarks/bench_throughput.py --devices cuda`` for N = 1, 4, 16, 64.
3. **One full ``paper`` evaluation.** 20 ConvNets (width 128) × 1000 epochs with DSA on a random
   IPC-10 set of Fashion-MNIST, batched — the evaluation the papers repeat per synthetic set —
   its wall time and its mean accuracy.

Everything it measures is written to ``<out>/gpu_check.json`` with provenance (commit, device
name, torch and CUDA versions, date); copy it to ``benchmarks/results/`` and commit it. It has not
been run yet: no GPU was lent to the sessions that wrote it.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fairdd.evaluate import EvalConfig, evaluate_synthetic, random_subset, train_network  # noqa: E402
from fairdd.models import NetworkSpec  # noqa: E402


def _provenance() -> dict:
    def git(*a: str) -> str | None:
        try:
            return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    return {
        "commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "torch": torch.__version__, "cuda": torch.version.cuda,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def equivalence(device: torch.device) -> dict:
    from fairdd.batched import train_networks

    gen = torch.Generator().manual_seed(0)
    images = torch.randn(40, 3, 28, 28, generator=gen).to(device)
    labels = torch.arange(10).repeat(4).to(device)
    config = EvalConfig(network=NetworkSpec(width=16), epochs=4, batch_size=16, num_networks=4, dsa=True)
    models = [config.network.build(3, 10, 28, seed=s).to(device) for s in range(4)]
    seq_models = [copy.deepcopy(m) for m in models]
    for s, m in enumerate(seq_models):
        train_network(m, images, labels, config, generator=torch.Generator().manual_seed(s))
    train_networks(models, images, labels, config, generators=[torch.Generator().manual_seed(s) for s in range(4)])
    worst = 0.0
    within = True
    for a, b in zip(models, seq_models):
        for pa, pb in zip(a.parameters(), b.parameters()):
            worst = max(worst, float((pa - pb).detach().abs().max()))
            within &= bool(torch.allclose(pa, pb, rtol=1e-4, atol=1e-5))
    return {"max_abs_weight_difference": worst, "within_cpu_test_tolerance": within}


def paper_evaluation(device: torch.device, budget_s: float) -> dict:
    from fairdd.data import channel_stats, load_dataset, normalize

    train, test = load_dataset("fashion_mnist", "train"), load_dataset("fashion_mnist", "test")
    mean, std = channel_stats(train.inputs)
    train = dataclasses.replace(train, inputs=normalize(train.inputs, mean, std))
    test = dataclasses.replace(test, inputs=normalize(test.inputs, mean, std)).to(device)
    subset = random_subset(train, 10, seed=0)
    config = EvalConfig(network=NetworkSpec(width=128), epochs=1000, num_networks=20, dsa=True)
    start = time.perf_counter()
    rows = evaluate_synthetic(subset.inputs.to(device), subset.labels.to(device), test, config, seed=0, batched=True)
    wall = time.perf_counter() - start
    return {"networks": 20, "epochs": 1000, "wall_s": wall, "within_budget": wall <= budget_s,
            "mean_accuracy": sum(r["accuracy"] for r in rows) / len(rows)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--paper-budget-s", type=float, default=300.0)
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        parser.error("no CUDA device: this script is for a lent GPU (the CPU checks are tests/test_batched.py)")
    device = torch.device("cuda")
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict = {"provenance": _provenance()}
    t0 = time.perf_counter()
    report["equivalence"] = equivalence(device)
    print("equivalence:", report["equivalence"], flush=True)
    throughput = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_throughput.py"), "--devices", "cuda", "--sizes", "1", "4", "16", "64"],
        capture_output=True, text=True, timeout=180,
    )
    report["throughput_stdout"] = throughput.stdout
    print(throughput.stdout, flush=True)
    report["paper_evaluation"] = paper_evaluation(device, args.paper_budget_s)
    print("paper evaluation:", report["paper_evaluation"], flush=True)
    report["total_s"] = time.perf_counter() - t0
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
