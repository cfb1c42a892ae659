"""Seconds per epoch of a distilled student beside a non-distilled one (Mohammadshahi & Ioannou, fairdd.kd).

Usage::

    python benchmarks/bench_kd.py                       # the cpu profile's Fashion-MNIST pair
    python benchmarks/bench_kd.py --profile paper --epochs 1 --train-per-class 100
    python benchmarks/bench_kd.py --augment             # teacher per batch (no cache possible)

In one run, on the same data, network and seed: a teacher is trained (its time is printed
apart), then the student three ways — non-distilled (hard labels, α = 0), distilled from the
teacher's cached outputs (computed once on the un-augmented training set, the time of that
pass printed apart), and distilled with the teacher run on every batch under inference mode
(what augmentation forces). Each is timed as wall-clock and process CPU seconds per epoch (on a
machine shared with other jobs the wall time is inflated by the load; CPU time much less).
The ratio distilled / non-distilled with cached outputs should be near 1: the soft term adds a
softmax and a KL over (B, K) logits per batch, nothing the size of a forward pass.

Each run prints its table and writes the same numbers, with the provenance (commit, versions,
threads, CPU, load, command line), to ``benchmarks/results/bench_kd.json`` and ``.md``,
replacing the previous run's (``--out PATH`` writes elsewhere, ``--no-save`` nowhere).

Mohammadshahi & Ioannou, "What's Left After Distillation?"; Hinton et al. 2015.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

from fairdd import kd
from fairdd.data import load_dataset, normalize_splits, stratified_subset
from fairdd.studies.kd import KDStudyConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_results.py
from _results import add_arguments, save_from_args  # noqa: E402


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu", choices=["smoke", "cpu", "paper"])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per timed student (and the teacher)")
    parser.add_argument("--train-per-class", type=int, default=300)
    parser.add_argument("--temperature", type=float, default=4.0)
    parser.add_argument("--augment", action="store_true", help="crop + flip (then only per-batch teacher)")
    parser.add_argument("--threads", type=int, default=1)
    add_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    protocol = KDStudyConfig.for_profile(args.profile).protocol("fashion_mnist")
    config = dataclasses.replace(protocol, epochs=args.epochs, milestones=(args.epochs,), augment=args.augment,
                                 temperature=args.temperature)
    train = stratified_subset(load_dataset("fashion_mnist", "train"), args.train_per_class, 0)
    test = stratified_subset(load_dataset("fashion_mnist", "test"), 100, 0)
    train, test, _ = normalize_splits(train, test)
    print(f"profile {args.profile}: {config.teacher.model} → {config.student.model}, {len(train)} images, "
          f"{args.epochs} epochs, batch {config.batch_size}, augment {args.augment}, T {args.temperature:g}", flush=True)
    init, data = 11, 12
    teacher = config.teacher.build(1, 10, 28, seed=init)
    teacher_log, wall, cpu = _timed(lambda: kd.fit(teacher, train, dataclasses.replace(config, alpha=0.0),
                                                   generator=torch.Generator().manual_seed(data)))
    teacher.eval()
    print(f"{'teacher':28} {wall / args.epochs:8.3f} wall s/epoch {cpu / args.epochs:8.3f} cpu s/epoch", flush=True)
    teacher_rows = [{"what": "teacher training", "model": config.teacher.model, "unit": "per epoch",
                     "wall_s": wall / args.epochs, "cpu_s": cpu / args.epochs}]
    logits, wall, cpu = _timed(lambda: kd._logits(teacher, train.inputs, config.eval_batch_size))
    print(f"{'teacher outputs, once':28} {wall:8.3f} wall s       {cpu:8.3f} cpu s", flush=True)
    teacher_rows.append({"what": "teacher outputs, once", "model": config.teacher.model, "unit": "whole pass",
                         "wall_s": wall, "cpu_s": cpu})

    def run(alpha: float, cached: bool) -> tuple[float, float]:
        model = config.student.build(1, 10, 28, seed=init)
        cfg = dataclasses.replace(config, alpha=alpha)
        _, w, c = _timed(lambda: kd.fit(model, train, cfg, generator=torch.Generator().manual_seed(data),
                                        teacher=None if (cached or alpha == 0) else teacher,
                                        cached_logits=logits if (cached and alpha > 0) else None))
        return w / args.epochs, c / args.epochs

    timings = {"non-distilled (α = 0)": run(0.0, False)}
    if not args.augment:
        timings["distilled, cached outputs"] = run(protocol.alpha if protocol.alpha > 0 else 0.8, True)
    timings["distilled, teacher per batch"] = run(protocol.alpha if protocol.alpha > 0 else 0.8, False)
    base_w, base_c = timings["non-distilled (α = 0)"]
    student_rows = []
    for name, (w, c) in timings.items():
        print(f"{name:28} {w:8.3f} wall s/epoch {c:8.3f} cpu s/epoch   ratio {c / base_c:.2f} (cpu) {w / base_w:.2f} (wall)",
              flush=True)
        student_rows.append({"student": name, "model": config.student.model, "wall_s_per_epoch": w,
                             "cpu_s_per_epoch": c, "ratio_cpu": c / base_c, "ratio_wall": w / base_w})
    print(f"teacher final train loss {teacher_log.epoch_loss[-1]:.3f}")
    teacher_rows[0]["final_train_loss"] = teacher_log.epoch_loss[-1]
    save_from_args(args, "bench_kd", {"students": student_rows, "teacher": teacher_rows},
                   notes=f"profile {args.profile}, {len(train)} images, {args.epochs} epochs, batch {config.batch_size}, "
                         f"augment {args.augment}, T {args.temperature:g}")


if __name__ == "__main__":
    main()
