"""fairdd.distill.distill_side_by_side: several DM seeds in one vmapped loop, seed by seed
against sequential fairdd.distill.distill.

Tolerance: images and losses agree at rtol=1e-4, atol=1e-5 after a few iterations (fp32 CPU; the
batched convolutions sum in another order, so results are close, not bit-identical). Resuming a
killed side-by-side run is bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from fairdd.augment import DEFAULT_STRATEGY, DSAParams, dsa_apply, dsa_sample
from fairdd.distill import DCConfig, DMConfig, distill, distill_side_by_side
from fairdd.distill.dm import _siamese_chunks
from fairdd.models import NetworkSpec
from tests.test_distill_common import SMALL, toy_dataset

RTOL, ATOL = 1e-4, 1e-5
SEEDS = [3, 8, 21]


def assert_matches_sequential(train, cfg: DMConfig, seeds, *, ipc: int = 2, sample_weights=None) -> None:
    together = distill_side_by_side(train, cfg, images_per_class=ipc, seeds=seeds, sample_weights=sample_weights)
    assert len(together) == len(seeds)
    for seed, got in zip(seeds, together):
        want = distill(train, cfg, images_per_class=ipc, seed=seed, progress=False, sample_weights=sample_weights)
        assert (got.seed, got.method, got.images_per_class, got.config, got.learning_rate) == (
            seed, "dm", ipc, cfg, None
        )
        assert torch.equal(got.labels, want.labels)
        assert got.images.device.type == "cpu" and got.images.shape == want.images.shape
        torch.testing.assert_close(got.images, want.images, rtol=RTOL, atol=ATOL)
        assert len(got.losses) == len(want.losses) == cfg.iterations
        torch.testing.assert_close(torch.tensor(got.losses), torch.tensor(want.losses), rtol=RTOL, atol=ATOL)
        # The images moved: the comparison is not of untouched initial sets.
        assert not torch.equal(got.images, distill(
            train, dataclasses.replace(cfg, iterations=1), images_per_class=ipc, seed=seed, progress=False,
            sample_weights=sample_weights,
        ).images)


@pytest.mark.parametrize(
    ("augment", "init", "channels_last"),
    [(False, "noise", False), (False, "real", True), (True, "real", True), (True, "noise", False)],
)
def test_every_seed_equals_its_sequential_run(augment: bool, init: str, channels_last: bool) -> None:
    cfg = DMConfig(iterations=4, batch_real=8, augment=augment, init=init, channels_last=channels_last, **SMALL)
    assert_matches_sequential(toy_dataset(), cfg, SEEDS)


def test_one_seed_and_other_networks() -> None:
    cfg = DMConfig(iterations=3, batch_real=8, network=NetworkSpec(width=8, depth=2, norm="groupnorm"))
    assert_matches_sequential(toy_dataset(), cfg, [5])
    cfg = DMConfig(iterations=3, batch_real=8, network=NetworkSpec(width=6, depth=1, norm="layernorm", pooling="maxpooling"))
    assert_matches_sequential(toy_dataset(), cfg, [5, 6])


def test_sample_weights_and_group_balanced_sampling() -> None:
    train = toy_dataset(attributes=True)
    weights = torch.rand(len(train), generator=torch.Generator().manual_seed(1))
    weights[::5] = 0.0
    cfg = DMConfig(iterations=3, batch_real=6, **SMALL)
    assert_matches_sequential(train, cfg, SEEDS, sample_weights=weights)
    # Batches larger than a class (every class draws all 16 images) and group-balanced draws.
    assert_matches_sequential(train, dataclasses.replace(cfg, batch_real=20), [1, 2])
    assert_matches_sequential(train, dataclasses.replace(cfg, real_sampling="group_balanced", batch_real=5), [1, 2])


def test_dsa_of_all_chunks_at_once_is_each_chunk_augmented_alone() -> None:
    # One dsa_apply per drawn family, each chunk's 1-row parameters repeated over its images,
    # equals siamese application chunk by chunk (the sequential path).
    g = torch.Generator().manual_seed(0)
    sizes = [3, 1, 4, 2, 5, 3, 2, 2]
    x = torch.randn(sum(sizes), 3, 8, 8, generator=g)
    for mode in ("single", "all"):
        params = DSAParams(mode=mode)
        samples = [dsa_sample(DEFAULT_STRATEGY, 1, image_size=8, generator=g, params=params) for _ in sizes]
        alone = torch.cat([dsa_apply(chunk, s) for chunk, s in zip(x.split(sizes), samples)])
        torch.testing.assert_close(_siamese_chunks(x, sizes, samples), alone, rtol=1e-6, atol=1e-6)


class _Killed(Exception):
    pass


@pytest.mark.parametrize("kill_at", [3, 4])
def test_resume_after_interruption_is_bit_identical(kill_at: int, tmp_path) -> None:
    train = toy_dataset()
    cfg = DMConfig(iterations=5, batch_real=8, checkpoint_every=2, **SMALL)
    whole = distill_side_by_side(train, cfg, images_per_class=2, seeds=SEEDS)

    def kill(done: int, losses: tuple[float, ...]) -> None:
        assert len(losses) == len(SEEDS)
        if done == kill_at:
            raise _Killed

    with pytest.raises(_Killed):
        distill_side_by_side(train, cfg, images_per_class=2, seeds=SEEDS, checkpoint_dir=tmp_path, callback=kill)
    seen: list[int] = []
    resumed = distill_side_by_side(
        train, cfg, images_per_class=2, seeds=SEEDS, checkpoint_dir=tmp_path,
        callback=lambda done, losses: seen.append(done),
    )
    # Checkpoints at 2 and 4: a kill after iteration 3 resumes from 2, one after 4 from 4.
    assert seen == ([3, 4, 5] if kill_at == 3 else [5])
    for a, b in zip(whole, resumed):
        assert torch.equal(a.images, b.images)
        assert a.losses == b.losses
    # A finished checkpoint makes a rerun return at once, with the same sets.
    again = distill_side_by_side(train, cfg, images_per_class=2, seeds=SEEDS, checkpoint_dir=tmp_path,
                                 callback=lambda done, losses: seen.append(-done))
    assert seen[-1] == 5
    assert all(torch.equal(a.images, b.images) and a.losses == b.losses for a, b in zip(whole, again))


def test_checkpoint_of_another_run_is_refused(tmp_path) -> None:
    train = toy_dataset()
    cfg = DMConfig(iterations=2, batch_real=4, augment=False, **SMALL)
    distill_side_by_side(train, cfg, images_per_class=1, seeds=[0, 1], checkpoint_dir=tmp_path)
    for seeds in ([0, 2], [1, 0], [0]):
        with pytest.raises(ValueError, match="another run"):
            distill_side_by_side(train, cfg, images_per_class=1, seeds=seeds, checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="another run"):
        distill_side_by_side(train, dataclasses.replace(cfg, lr_img=0.5), images_per_class=1, seeds=[0, 1],
                             checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="another run"):  # a sequential run's checkpoint
        distill(train, cfg, images_per_class=1, seed=0, checkpoint_dir=tmp_path, progress=False)


@pytest.mark.parametrize(
    ("config", "seeds", "match"),
    [
        (DCConfig(iterations=1, batch_real=4, **SMALL), [0, 1], r"config=DCConfig \(method 'dc'\).*only DMConfig"),
        (DMConfig(matching="synchronized", **SMALL), [0, 1], r"matching='synchronized'.*only matching='class'"),
        (DMConfig(network=NetworkSpec(width=8, depth=2, norm="batchnorm")), [0, 1], "BatchNorm"),
        (DMConfig(**SMALL), [], r"seeds=\[\] is empty"),
        (DMConfig(**SMALL), [4, 2, 4], r"seeds=\[4, 2, 4\] lists \[4\] more than once"),
        (DMConfig(**SMALL), [0, -1], r"seeds\[1\]=-1"),
        (DMConfig(**SMALL), 3, "seeds=3 must be a list"),
        (object(), [0], "not a distillation config"),
    ],
)
def test_bad_calls_fail_before_any_work(config, seeds, match: str, tmp_path) -> None:
    train = toy_dataset(attributes=True)
    with pytest.raises(ValueError, match=match):
        distill_side_by_side(train, config, images_per_class=1, seeds=seeds, checkpoint_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing was written


def test_bad_images_per_class_and_data() -> None:
    cfg = DMConfig(**SMALL)
    with pytest.raises(ValueError, match="images_per_class=0"):
        distill_side_by_side(toy_dataset(), cfg, images_per_class=0, seeds=[0])
    flat = dataclasses.replace(toy_dataset(), inputs=toy_dataset().inputs.flatten(1))
    with pytest.raises(ValueError, match="image distillation needs"):
        distill_side_by_side(flat, cfg, images_per_class=1, seeds=[0])
