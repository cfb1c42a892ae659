"""Where the time of a training step and of one DM, DC and MTT iteration goes, at ``cpu``
settings: a ``torch.profiler`` breakdown into buckets, with ``NetworkSpec(fast_kernels=False)``
(today's path) and ``True``.

Each (workload, switch) is one fresh worker process (:mod:`_workloads`): one warm-up unit, one
timed unit, then one unit under ``torch.profiler`` (CPU activity, shapes recorded). Every
profiler event's own (self) CPU time is put in one bucket (:func:`_workloads.buckets`):

convolutions · matrix products (linear) · normalisation · activation · pooling · DSA (the
draws and the transformations, forward, and ``grid_sample``'s backward) · optimiser
(``Optimizer.step``/``zero_grad``) · loss · data movement (copies, indexing, concatenation,
allocation) · other ops · Python/autograd overhead (the autograd engine's and Python's own
time, and the wall time no operation covers).

The profiler adds a few microseconds per operation, so a unit of many small operations (DSA,
MTT's unrolled steps) is slower under it; the buckets' shares are what to read, the
``unprofiled_ms`` column is the unit's time without the profiler. The cost of fresh memory
(page faults while a new tensor is first written) shows inside whichever operation writes
it, which is why the same operation's bucket shrinks with the switch on. Run with one thread::

    .venv/bin/python benchmarks/bench_profile.py
    .venv/bin/python benchmarks/bench_profile.py --workloads train_step dm

Results: ``benchmarks/results/bench_profile.json`` (and ``.md``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _results import add_arguments, save_from_args  # noqa: E402
from _workloads import BUCKETS, WORKLOADS, _data, _distill_config, spawn  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=WORKLOADS)
    parser.add_argument("--ipc", type=int, default=10)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    add_arguments(parser)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)  # the workers' count, so the provenance states it
    results = os.environ.get("FAIRDD_RESULTS") or tempfile.mkdtemp(prefix="bench-profile-")
    os.environ["FAIRDD_RESULTS"] = results
    if "mtt" in args.workloads:  # experts trained and cached outside every measurement
        from fairdd.distill import train_experts

        train = _data()
        for fast in (False, True):
            train_experts(train, _distill_config("mtt", args.width, 1, fast), progress=False)
    rows = []
    for name in args.workloads:
        for fast in (0, 1):
            res = spawn([name, "--fast", str(fast), "--width", str(args.width), "--ipc", str(args.ipc),
                         "--units", "1", "--threads", str(args.threads), "--profile"], env={"FAIRDD_RESULTS": results})
            total = sum(res["buckets"].values())
            row = {"workload": name, "fast_kernels": bool(fast), "unprofiled_ms": res["seconds"][0] * 1e3,
                   "profiled_ms": res["profiled_wall_s"] * 1e3}
            for bucket in BUCKETS:
                row[f"{bucket} ms"] = res["buckets"][bucket] * 1e3
            for bucket in BUCKETS:
                row[f"{bucket} %"] = 100 * res["buckets"][bucket] / total
            row["largest other ops"] = res["other_ops"]
            rows.append(row)
            top = sorted(BUCKETS, key=lambda b: -res["buckets"][b])[:4]
            print(f"{name:10s} fast={fast} {row['unprofiled_ms']:9.1f} ms  "
                  + ", ".join(f"{b} {row[f'{b} %']:.0f}%" for b in top), flush=True)
    ms = [{k: v for k, v in r.items() if not k.endswith(" %") and k != "largest other ops"} for r in rows]
    share = [{k: v for k, v in r.items() if not k.endswith(" ms") or k in ("unprofiled_ms", "profiled_ms")} for r in rows]
    notes = ("Shared machine (2 cores, several other agents' jobs running): absolute times are noisy; the shares "
             "are the profiled unit's. eval_step units are per minibatch step (8 steps profiled, divided by 8).")
    save_from_args(args, "bench_profile", {"buckets_ms": ms, "buckets_share": share}, notes=notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
