"""fairdd.distill: what every method must do — learn, reach the images, repeat, resume."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from fairdd.distill import METHODS, DCConfig, DMConfig, MTTConfig, distill
from fairdd.distill._common import initial_images, make_sampler
from fairdd.seeding import generator as seeded_generator
from tests.test_distill_common import SMALL, toy_dataset

LOOPS = {1: (1, 1), 2: (2, 2)}
CONFIGS = {
    "dc": DCConfig(iterations=10, batch_real=8, loops=LOOPS, init="noise", **SMALL),
    "dsa": DCConfig(augment=True, iterations=10, batch_real=8, loops=LOOPS, init="noise", **SMALL),
    "dm": DMConfig(iterations=10, batch_real=8, init="noise", **SMALL),
    "mtt": MTTConfig(
        iterations=10,
        num_experts=2,
        expert_train_epochs=3,
        expert_batch=16,
        max_start_epoch=2,
        expert_epochs=1,
        syn_steps=4,
        lr_img=100.0,  # the reference's 1000 is tuned to 32×32 images and a 128-wide net
        init="noise",
        **SMALL,
    ),
}


def test_every_method_of_the_table_is_tested_here() -> None:
    """A new row of fairdd.distill.METHODS gets a small config in CONFIGS (CONTRIBUTING.md)."""
    assert set(CONFIGS) == set(METHODS), f"add the methods {sorted(set(METHODS) - set(CONFIGS))} to CONFIGS"


@pytest.fixture(autouse=True)
def _results_in_tmp(tmp_path, monkeypatch) -> None:
    # MTT caches its experts under the results root.
    monkeypatch.setenv("FAIRDD_RESULTS", str(tmp_path / "results"))


@pytest.mark.parametrize("method", list(CONFIGS))
def test_matching_loss_falls(method: str) -> None:
    out = distill(toy_dataset(), CONFIGS[method], images_per_class=2, seed=0, progress=False)
    first, last = sum(out.losses[:3]) / 3, sum(out.losses[-3:]) / 3
    assert last < 0.9 * first, out.losses


@pytest.mark.parametrize("method", list(CONFIGS))
def test_gradients_reach_every_synthetic_image(method: str) -> None:
    train = toy_dataset()
    cfg = dataclasses.replace(CONFIGS[method], iterations=1)
    init = initial_images(train, make_sampler(train, cfg, None), cfg.init, 2, seeded_generator(3))
    out = distill(train, cfg, images_per_class=2, seed=3, progress=False)
    assert out.images.shape == init.shape == (8, 1, 8, 8)
    change = (out.images - init).flatten(1).abs().amax(1)
    assert (change > 0).all(), change
    assert torch.isfinite(out.images).all()


@pytest.mark.parametrize("method", list(CONFIGS))
def test_same_seed_same_set_other_seed_other_set(method: str) -> None:
    train = toy_dataset()
    cfg = dataclasses.replace(CONFIGS[method], iterations=3)
    a = distill(train, cfg, images_per_class=2, seed=5, progress=False)
    b = distill(train, cfg, images_per_class=2, seed=5, progress=False)
    c = distill(train, cfg, images_per_class=2, seed=6, progress=False)
    assert torch.equal(a.images, b.images) and a.losses == b.losses and a.learning_rate == b.learning_rate
    assert not torch.equal(a.images, c.images)


class _Killed(Exception):
    pass


@pytest.mark.parametrize("method", list(CONFIGS))
@pytest.mark.parametrize("kill_at", [3, 4])
def test_resume_after_interruption_equals_an_uninterrupted_run(method: str, kill_at: int, tmp_path) -> None:
    train = toy_dataset()
    cfg = dataclasses.replace(CONFIGS[method], iterations=5, checkpoint_every=2)
    whole = distill(train, cfg, images_per_class=2, seed=7, progress=False)

    def kill(done: int, loss: float) -> None:
        if done == kill_at:
            raise _Killed

    with pytest.raises(_Killed):
        distill(train, cfg, images_per_class=2, seed=7, checkpoint_dir=tmp_path, progress=False, callback=kill)
    seen: list[int] = []
    resumed = distill(
        train, cfg, images_per_class=2, seed=7, checkpoint_dir=tmp_path, progress=False,
        callback=lambda done, loss: seen.append(done),
    )
    # Checkpoints at 2 and 4: a kill after iteration 3 resumes from 2, one after 4 from 4.
    assert seen == ([3, 4, 5] if kill_at == 3 else [5])
    assert torch.equal(whole.images, resumed.images)
    assert whole.losses == resumed.losses
    assert whole.learning_rate == resumed.learning_rate
