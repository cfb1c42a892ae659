"""benchmarks/gpu_check.py, the GPU script, checked where it can be here: its equivalence step on
the CPU (every batched path against its sequential one), its refusal without CUDA, and the
run-store identity of its paper evaluation."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from fairdd import results

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.py"
_spec = importlib.util.spec_from_file_location("gpu_check_under_test", _PATH)
gpu_check = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = gpu_check
_spec.loader.exec_module(gpu_check)


def test_equivalence_step_passes_on_the_cpu() -> None:
    torch.set_num_threads(1)
    out = gpu_check.equivalence(torch.device("cpu"))
    assert set(out) == {"convnet_dsa", "resnet20_batchnorm", "kd_students", "dm_seeds"}
    for name, check in out.items():
        assert check["within_cpu_test_tolerance"], (name, check)
        assert 0 <= check["max_abs_difference"] < 1e-3


def test_refuses_without_cuda(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit):
        gpu_check.main(["--out", str(tmp_path)])
    assert not any(tmp_path.iterdir())


def test_paper_evaluation_is_the_papers_protocol_and_a_stable_run() -> None:
    cell = gpu_check.PaperEvaluation()
    e = cell.evaluation
    assert (e.network.width, e.epochs, e.num_networks, e.dsa, e.side_by_side) == (128, 1000, 20, True, True)
    assert results.run_id(cell) == results.run_id(gpu_check.PaperEvaluation())
