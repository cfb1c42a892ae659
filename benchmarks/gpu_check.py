"""The GPU checks of the throughput work, in one script that finishes in under 8 minutes.

Run it once on a lent GPU (H100/H200), from the repository root, then hand the machine back::

    python benchmarks/gpu_check.py --out "$OUT"        # $OUT: the folder the device tool returns

It does, in order, each step under its own time limit (``--budget-s`` in all; a step that would
start past its share is skipped and marked so):

1. **Equivalence on CUDA**, each against its sequential path at the CPU tests' tolerance
   (``rtol 1e-4 / atol 1e-5``, ``tests/test_batched.py``, ``tests/test_kd_batched.py``,
   ``tests/test_distill_dm_side_by_side.py``): evaluation ConvNets with DSA
   (:func:`fairdd.batched.train_networks`), ResNet-20s with BatchNorm, KD students at three
   temperatures (:func:`fairdd.kd.fit_many`) and DM seeds (:func:`fairdd.distill.distill_side_by_side`).
2. **bf16 where accuracy holds.** 20 ConvNets on a random IPC-10 set of Fashion-MNIST, batched,
   300 epochs, in fp32 and under bf16 autocast: both mean test accuracies and their difference.
3. **The throughput tables.** ``benchmarks/bench_throughput.py --devices cuda`` (evaluation
   N = 1, 4, 16, 64; KD students; DM seeds), its JSON written to ``<out>/bench_throughput.json``.
4. **One full ``paper`` evaluation.** 20 ConvNets (width 128) × 1000 epochs with DSA on the same
   IPC-10 set, batched — the evaluation the papers repeat per synthetic set — its wall time
   and mean accuracy, stored through the run store (:func:`fairdd.results.run`, study
   ``gpu_check``, under ``<out>/results``) so its rows carry the provenance every run has
   (commit, device, finish time).
5. **The projection.** ``benchmarks/projection.py --device cuda`` with what time is left: the
   measured GPU rates of every study's ``paper`` work and the projected GPU-hours, written to
   ``<out>/projection.json``.

Everything is also summarised in ``<out>/gpu_check.json`` with provenance (commit, device name,
torch and CUDA versions, date). Copy ``gpu_check.json``, ``bench_throughput.json`` and
``projection.json`` (and their ``.md``) to ``benchmarks/results/``, record the run with
``python -m fairdd.records record --profile paper --from <out>/results`` (that rebuilds
``records/paper/`` from the folder given: while it holds other paper runs, put those in the same
folder first), and commit them. On the CPU the script refuses to run (the CPU checks are the
tests).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fairdd import kd, results  # noqa: E402
from fairdd.data import Dataset  # noqa: E402
from fairdd.evaluate import EvalConfig, evaluate_synthetic, random_subset, train_network  # noqa: E402
from fairdd.models import NetworkSpec  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5


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


def _compare(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, Any]:
    worst = max(float((a.float() - b.float()).abs().max()) for a, b in pairs)
    within = all(torch.allclose(a.float(), b.float(), rtol=RTOL, atol=ATOL) for a, b in pairs)
    return {"max_abs_difference": worst, "within_cpu_test_tolerance": within}


def _states(models: list[torch.nn.Module]) -> list[torch.Tensor]:
    return [t for m in models for t in m.state_dict().values() if t.is_floating_point()]


def equivalence(device: torch.device) -> dict[str, Any]:
    """Every batched path against its sequential one, in full float32: TF32 (on by default for
    cuDNN convolutions) is switched off for the comparison, since it rounds inputs to 10
    mantissa bits and would swamp the summation-order differences being checked."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        return _equivalence(device)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _equivalence(device: torch.device) -> dict[str, Any]:
    from fairdd.batched import train_networks
    from fairdd.distill import DMConfig, distill, distill_side_by_side

    out: dict[str, Any] = {}
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(40, 3, 28, 28, generator=gen).to(device)
    labels = torch.arange(10).repeat(4).to(device)
    # ResNet-20 for one epoch (three steps): in 20 layers the two summation orders' rounding grows
    # about tenfold per epoch on random data, past the tolerance by the third.
    for name, network, dsa, epochs in (("convnet_dsa", NetworkSpec(width=16), True, 3),
                                       ("resnet20_batchnorm", NetworkSpec(model="resnet20"), False, 1)):
        config = EvalConfig(network=network, epochs=epochs, batch_size=16, num_networks=4, dsa=dsa)
        models = [config.network.build(3, 10, 28, seed=s).to(device) for s in range(4)]
        seq = [copy.deepcopy(m) for m in models]
        for s, m in enumerate(seq):
            train_network(m, images, labels, config, generator=torch.Generator(device=device).manual_seed(s))
        train_networks(models, images, labels, config, generators=[torch.Generator(device=device).manual_seed(s) for s in range(4)])
        out[name] = _compare(list(zip(_states(seq), _states(models))))
    train = Dataset("random", "train", images, labels, tuple(map(str, range(10))))
    teacher = NetworkSpec(width=16).build(3, 10, 28, seed=9).to(device).eval()
    base = kd.KDConfig(student=NetworkSpec(model="lenet"), epochs=2, milestones=(1,), batch_size=16, crop_padding=2)
    configs = [dataclasses.replace(base, temperature=t, alpha=a) for t, a in ((1.0, 0.0), (4.0, 0.8), (10.0, 0.8))]
    alone = [kd.student(c, train, seed=0, teacher_model=teacher)[0] for c in configs]
    together = [m for m, _ in kd.students(configs, train, seed=0, teacher_model=teacher)]
    out["kd_students"] = _compare(list(zip(_states(alone), _states(together))))
    cfg = DMConfig(network=NetworkSpec(width=16), iterations=3, batch_real=8, checkpoint_every=3)
    seeds = [0, 1, 2]
    seq_sets = [distill(train, cfg, images_per_class=2, seed=s, device=device, progress=False).images for s in seeds]
    bat_sets = [s.images for s in distill_side_by_side(train, cfg, images_per_class=2, seeds=seeds, device=device)]
    out["dm_seeds"] = _compare(list(zip(seq_sets, bat_sets)))
    return out


def _fashion_ipc10(device: torch.device) -> tuple[Dataset, Dataset]:
    from fairdd.data import channel_stats, load_dataset, normalize

    train, test = load_dataset("fashion_mnist", "train"), load_dataset("fashion_mnist", "test")
    mean, std = channel_stats(train.inputs)
    train = dataclasses.replace(train, inputs=normalize(train.inputs, mean, std))
    test = dataclasses.replace(test, inputs=normalize(test.inputs, mean, std)).to(device)
    return random_subset(train, 10, seed=0).to(device), test


def bf16_accuracy(device: torch.device) -> dict[str, Any]:
    subset, test = _fashion_ipc10(device)
    out: dict[str, Any] = {}
    for precision in ("fp32", "bf16"):
        config = EvalConfig(network=NetworkSpec(width=128), epochs=300, num_networks=20, precision=precision, side_by_side=True)
        start = time.perf_counter()
        rows = evaluate_synthetic(subset.inputs, subset.labels, test, config, seed=0)
        out[precision] = {"wall_s": time.perf_counter() - start, "mean_accuracy": sum(r["accuracy"] for r in rows) / len(rows)}
    out["accuracy_difference_bf16_minus_fp32"] = out["bf16"]["mean_accuracy"] - out["fp32"]["mean_accuracy"]
    out["speedup_bf16"] = out["fp32"]["wall_s"] / out["bf16"]["wall_s"]
    return out


@dataclasses.dataclass(frozen=True)
class PaperEvaluation:
    """The run-store identity of step 4: what was evaluated and how."""

    data: str = "fashion_mnist random IPC 10 (seed 0)"
    evaluation: EvalConfig = EvalConfig(network=NetworkSpec(width=128), epochs=1000, num_networks=20, dsa=True, side_by_side=True)
    seed: int = 0


def paper_evaluation(device: torch.device, root: Path) -> dict[str, Any]:
    subset, test = _fashion_ipc10(device)
    cell = PaperEvaluation()
    start = time.perf_counter()
    rows = results.run(
        "gpu_check", cell, lambda: evaluate_synthetic(subset.inputs, subset.labels, test, cell.evaluation, seed=cell.seed),
        root=root,
    )
    return {"networks": len(rows), "epochs": cell.evaluation.epochs, "wall_s": time.perf_counter() - start,
            "mean_accuracy": float(rows["accuracy"].mean()), "run_id": results.run_id(cell)}


def _script(args: list[str], timeout: float) -> dict[str, Any]:
    try:
        done = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        return {"returncode": done.returncode, "stdout": done.stdout[-20000:], "stderr": done.stderr[-4000:]}
    except subprocess.TimeoutExpired as exc:
        return {"returncode": None, "timed_out_after_s": timeout, "stdout": str(exc.stdout or "")[-20000:]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--budget-s", type=float, default=450.0, help="all steps together (default 450)")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        parser.error("no CUDA device: this script is for a lent GPU (the CPU checks are the tests)")
    device = torch.device("cuda")
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"provenance": _provenance(), "steps": {}}
    t0 = time.perf_counter()
    left = lambda: args.budget_s - (time.perf_counter() - t0)  # noqa: E731

    def step(name: str, share_s: float, fn: Callable[[], Any]) -> None:
        if left() < share_s * 0.5:
            report["steps"][name] = {"skipped": f"{left():.0f} s left of the budget"}
        else:
            begin = time.perf_counter()
            try:
                report["steps"][name] = fn()
            except Exception as exc:  # noqa: BLE001 — one failed check must not lose the others
                report["steps"][name] = {"error": f"{type(exc).__name__}: {exc}"}
            report["steps"][name + "_s"] = time.perf_counter() - begin
        print(name, json.dumps(report["steps"][name], indent=1)[:3000], flush=True)
        (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")  # kept current: a kill loses nothing

    step("equivalence", 30, lambda: equivalence(device))
    step("bf16", 60, lambda: bf16_accuracy(device))
    step("throughput", 90, lambda: _script(
        ["benchmarks/bench_throughput.py", "--devices", "cuda", "--out", str(args.out / "bench_throughput.json")],
        timeout=min(150.0, max(left() - 200, 30))))
    step("paper_evaluation", 120, lambda: paper_evaluation(device, args.out / "results"))
    step("projection", 60, lambda: _script(
        ["benchmarks/projection.py", "--device", "cuda", "--batch-points", "all", "--max-seconds", str(max(left() - 30, 30)),
         "--out", str(args.out / "projection.json")], timeout=max(left() - 10, 20)))
    report["total_s"] = time.perf_counter() - t0
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
