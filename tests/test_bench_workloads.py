"""benchmarks/_workloads.py: the profiler buckets of bench_profile, on a tiny training step."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from fairdd.augment import dsa
from fairdd.models import NetworkSpec

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "_workloads.py"
_spec = importlib.util.spec_from_file_location("workloads_under_test", _PATH)
workloads = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = workloads
_spec.loader.exec_module(workloads)


def _profiled_step(fast: bool) -> dict[str, float]:
    net = NetworkSpec(width=4, depth=2, fast_kernels=fast).build(1, 3, 8, seed=0)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(16, 1, 8, 8), torch.arange(16) % 3
    g = torch.Generator().manual_seed(0)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True) as prof:
        start = time.perf_counter()
        with torch.profiler.record_function("fairdd.dsa"):
            xa = dsa(x, "color_crop", generator=g)
        loss = F.cross_entropy(net(xa), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        wall = time.perf_counter() - start
    return workloads.buckets(prof, wall)


def test_every_bucket_of_a_step_is_found_and_the_time_adds_up() -> None:
    for fast in (False, True):
        out = _profiled_step(fast)
        assert set(out) == set(workloads.BUCKETS)
        for bucket in ("convolutions", "normalisation", "activation", "pooling", "DSA", "optimiser", "loss",
                       "matrix products (linear)"):
            assert out[bucket] > 0, (fast, bucket, out)
        assert all(v >= 0 for v in out.values())


def test_depthwise_pooling_is_pooling_not_convolution() -> None:
    class Ev:  # the fields of torch.autograd.profiler_util.FunctionEvent that _bucket reads
        def __init__(self, name, shapes, parent=None):
            self.name, self.input_shapes, self.cpu_parent = name, shapes, parent

    assert workloads._bucket(Ev("aten::convolution_backward", [[8, 4, 4, 4], [8, 4, 8, 8], [4, 1, 2, 2]])) == "pooling"
    assert workloads._bucket(Ev("aten::convolution_backward", [[8, 4, 4, 4], [8, 4, 8, 8], [4, 4, 3, 3]])) == "convolutions"
    assert workloads._bucket(Ev("aten::mul", [], Ev("fairdd.dsa", []))) == "DSA"
    assert workloads._bucket(Ev("aten::add_", [], Ev("Optimizer.step#SGD.step", []))) == "optimiser"
    assert workloads._bucket(Ev("autograd::engine::evaluate_function: X", [])) == "Python/autograd overhead"
