"""fairdd.distill.mtt: expert buffers on disk, the normalised trajectory loss."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from fairdd.distill import MTTConfig, distill, expert_cache_dir, train_experts
from fairdd.distill.mtt import load_trajectory
from fairdd.models import NetworkSpec, build_model, count_parameters
from tests.test_distill_common import SMALL, toy_dataset

CFG = MTTConfig(
    iterations=2,
    num_experts=2,
    expert_train_epochs=3,
    expert_batch=16,
    max_start_epoch=2,
    expert_epochs=1,
    syn_steps=3,
    lr_img=100.0,
    **SMALL,
)


def test_experts_are_cached_and_reused(tmp_path) -> None:
    train = toy_dataset()
    paths = train_experts(train, CFG, progress=False, root=tmp_path)
    assert [p.name for p in paths] == ["expert_0000.pt", "expert_0001.pt"]
    net = build_model("convnet", channels=1, num_classes=4, image_size=8, width=8, depth=2)
    traj = load_trajectory(paths[0])
    assert traj.shape == (CFG.expert_train_epochs + 1, count_parameters(net))
    assert not torch.equal(traj[0], traj[-1])  # the expert learned
    assert not torch.equal(traj[0], load_trajectory(paths[1])[0])  # different inits
    stamps = [p.stat().st_mtime_ns for p in paths]
    # Distillation-only fields share the buffer; a third expert is added, the others kept.
    more = dataclasses.replace(CFG, syn_steps=5, lr_img=10.0, num_experts=3)
    assert expert_cache_dir(train, more, root=tmp_path) == paths[0].parent
    again = train_experts(train, more, progress=False, root=tmp_path)
    assert again[:2] == paths and [p.stat().st_mtime_ns for p in paths] == stamps
    assert torch.equal(load_trajectory(again[0]), traj)
    # Expert settings and data content change the key.
    assert expert_cache_dir(train, dataclasses.replace(CFG, expert_seed=1), root=tmp_path) != paths[0].parent
    assert expert_cache_dir(train, dataclasses.replace(CFG, expert_lr=0.02), root=tmp_path) != paths[0].parent
    other = dataclasses.replace(train, inputs=train.inputs + 1)
    assert expert_cache_dir(other, CFG, root=tmp_path) != paths[0].parent


def test_loss_is_one_when_the_student_does_not_move(tmp_path, monkeypatch) -> None:
    # ‖θ_student − θ_target‖² / ‖θ_start − θ_target‖² with a vanishing step size: θ_student = θ_start.
    monkeypatch.setenv("FAIRDD_RESULTS", str(tmp_path))
    cfg = dataclasses.replace(CFG, lr_init=1e-12, iterations=1)
    out = distill(toy_dataset(), cfg, images_per_class=1, seed=0, progress=False)
    assert out.losses[0] == pytest.approx(1.0, abs=1e-6)


def test_learned_learning_rate_is_returned_and_trained(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FAIRDD_RESULTS", str(tmp_path))
    out = distill(toy_dataset(), dataclasses.replace(CFG, lr_lr=1e-3), images_per_class=2, seed=0, progress=False)
    assert isinstance(out.learning_rate, float) and out.learning_rate != CFG.lr_init
    cfg = out.evaluation_config(epochs=5, num_networks=1)
    assert cfg.dsa and cfg.network == NetworkSpec(width=8, depth=2)


def test_a_live_expert_claim_is_respected_and_a_dead_one_taken_over(tmp_path) -> None:
    """MTT's experts are claimed through the run store's claim_file (one worker trains each)."""
    import os
    import subprocess
    import sys

    from fairdd.results import claim_file as _claim

    target = tmp_path / "expert_0000.pt"
    assert _claim(target)  # ours now
    assert not _claim(target)  # held by a live process (this one)
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    target.with_suffix(".claim").write_text(done.stdout.strip())  # a pid that has exited
    assert _claim(target)
    assert target.with_suffix(".claim").read_text() == str(os.getpid())


@pytest.mark.slow  # two spawned interpreters importing torch: ~20 s
def test_experts_in_worker_processes_equal_experts_trained_here(tmp_path) -> None:
    train = toy_dataset()
    here = train_experts(train, CFG, progress=False, root=tmp_path / "a")
    there = train_experts(train, CFG, progress=False, root=tmp_path / "b", processes=2)
    for a, b in zip(here, there):
        assert torch.equal(load_trajectory(a), load_trajectory(b))
