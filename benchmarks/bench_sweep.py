"""Overhead of a Ray sweep against the local worker pool, on one smoke grid, in one run.

Usage::

    .venv/bin/python benchmarks/bench_sweep.py [--study embedding_dd] [--profile smoke]
        [--set key=value ...] [--cpus 2] [--repeat 1]

The grid (default: the embedding study's whole smoke profile, 48 short runs, so that the
overhead shows) is computed into fresh temporary run stores, three ways:

(a) ``local``: :meth:`fairdd.studies.Study.run`, ``--cpus`` one-thread worker processes (the wall
    time includes spawning them, i.e. importing torch in each);
(b) ``ray``: :func:`fairdd.sweep.run_ray` on a local Ray instance with ``--cpus`` CPUs, one task
    per run, each under its lease, the instance already started (its workers start with the
    first tasks, so that is counted);
(c) ``ray + init``: (b) plus ``ray.init`` itself, what ``fairdd run --ray`` costs on a laptop.

It prints seconds, seconds per run and the ratio to (a), and checks that (a) and (b) stored the
same rows (timing columns aside). The machine is shared: repeat before trusting a ratio.

Run it on an otherwise idle machine for numbers to compare. Each run prints its table and
writes the same rows, with the provenance (commit, versions, CPU, load, command line), to
``benchmarks/results/bench_sweep.json`` and ``.md``, replacing the previous run's (``--out
PATH`` writes elsewhere, ``--no-save`` nowhere); no measured values are kept here, they would
go stale.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_results.py

from fairdd import results  # noqa: E402
from fairdd.cli import build_config  # noqa: E402
from fairdd.sweep import import_ray, run_ray  # noqa: E402
from _results import add_arguments, save_from_args  # noqa: E402


def _rows(study: str, root: Path) -> pd.DataFrame:
    """The stored rows without their timing columns (``*seconds`` and the ``finished`` time stamp)."""
    frame = results.load(study, root=root)
    return frame[[c for c in frame.columns if not c.endswith("seconds") and c != "finished"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", default="embedding_dd")
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    add_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(1)
    ray = import_ray()
    key, study, _, cells = build_config(args.study, args.profile, args.set)
    print(f"{key} --profile {args.profile}: {len(cells)} runs, {args.cpus} CPUs", flush=True)
    print(f"{'mode':<12} {'seconds':>8} {'s per run':>10} {'ratio':>7}", flush=True)
    rows = []
    for repeat in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            local, remote = Path(tmp) / "local", Path(tmp) / "ray"
            t0 = time.perf_counter()
            study.run(cells, processes=args.cpus, root=local)
            t_local = time.perf_counter() - t0
            t0 = time.perf_counter()
            ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
            t_init = time.perf_counter() - t0
            try:
                t0 = time.perf_counter()
                run_ray(study, cells, root=remote)
                t_ray = time.perf_counter() - t0
            finally:
                ray.shutdown()
            pd.testing.assert_frame_equal(_rows(key, local), _rows(key, remote), check_exact=True)
        for mode, seconds in (("local", t_local), ("ray", t_ray), ("ray + init", t_ray + t_init)):
            print(f"{mode:<12} {seconds:8.1f} {seconds / len(cells):10.3f} {seconds / t_local:7.2f}", flush=True)
            rows.append({"repeat": repeat, "mode": mode, "runs": len(cells), "cpus": args.cpus, "seconds": seconds,
                         "s_per_run": seconds / len(cells), "ratio_to_local": seconds / t_local})
    print("rows identical (timing columns aside)", flush=True)
    save_from_args(args, "bench_sweep", {"sweep": rows},
                   notes=f"{key} --profile {args.profile}: {len(cells)} runs; local and ray stored identical rows")


if __name__ == "__main__":
    main()
