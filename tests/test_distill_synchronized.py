"""fairdd.distill.synchronized: FairDD's synchronized matching for DM and DC."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from fairdd.distill import DCConfig, DMConfig, distill
from fairdd.distill.synchronized import synchronized_gradient_loss, synchronized_mean_loss
from tests.test_distill_common import SMALL, toy_dataset


def test_two_group_loss_by_hand_and_against_the_class_mean() -> None:
    # Group 0 embeds to 0 and 2 (mean 1), group 1 to 10; the synthetic mean is 4, which is
    # also the batch mean: plain DM sees no error, synchronized matching (1-4)² + (10-4)² = 45.
    real = torch.tensor([[0.0], [2.0], [10.0]])
    groups = torch.tensor([0, 0, 1])
    syn_mean = torch.tensor([4.0])
    assert float(synchronized_mean_loss(real, groups, syn_mean)) == pytest.approx(45.0)
    assert float(((real.mean(0) - syn_mean) ** 2).sum()) == pytest.approx(0.0)
    # Group labels need not be 0..G-1; a group absent from the batch does not count.
    assert float(synchronized_mean_loss(real, torch.tensor([3, 3, 7]), syn_mean)) == pytest.approx(45.0)
    with pytest.raises(ValueError, match="3 embeddings but 2 group values"):
        synchronized_mean_loss(real, groups[:2], syn_mean)


def test_the_derivation_sum_of_group_distances_is_g_times_distance_to_mean_of_group_means() -> None:
    g = torch.Generator().manual_seed(0)
    real = torch.randn(12, 5, generator=g)
    groups = torch.tensor([0] * 7 + [1] * 3 + [2] * 2)
    group_means = torch.stack([real[groups == k].mean(0) for k in range(3)])
    centre = group_means.mean(0)
    for _ in range(3):
        s = torch.randn(5, generator=g, requires_grad=True)
        loss = synchronized_mean_loss(real, groups, s)
        spread = ((group_means - centre) ** 2).sum()
        expected = 3 * ((centre - s.detach()) ** 2).sum() + spread
        assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
        (grad,) = torch.autograd.grad(loss, s)
        torch.testing.assert_close(grad, 3 * 2 * (s.detach() - centre))
    # The batch mean is not the centre when the groups are unequal: plain DM pulls elsewhere.
    assert float((real.mean(0) - centre).abs().max()) > 1e-3


def _two_group_toy():
    train = toy_dataset(per_class=16)
    attributes = (torch.arange(train.inputs.shape[0]) % 4 == 0).long()  # 1 in 4 images in group 1
    return dataclasses.replace(train, attributes=attributes, attribute_values=("a", "b"))


def test_dm_synchronized_on_balanced_batches_equals_balanced_dm_at_lr_over_g() -> None:
    train = _two_group_toy()
    base = DMConfig(iterations=3, init="real", batch_real=8, augment=False, real_sampling="group_balanced", **SMALL)
    plain = distill(train, base, images_per_class=2, seed=3, progress=False)
    synced = distill(
        train, dataclasses.replace(base, matching="synchronized", lr_img=base.lr_img / 2), images_per_class=2, seed=3,
        progress=False,
    )
    torch.testing.assert_close(synced.images, plain.images, rtol=1e-4, atol=1e-5)
    # Its logged loss is G = 2 times plain DM's plus the (constant) spread of the group means.
    assert all(s >= 2 * p - 1e-6 for s, p in zip(synced.losses, plain.losses))


def test_dm_synchronized_on_uniform_batches_differs_from_plain_dm() -> None:
    train = _two_group_toy()
    base = DMConfig(iterations=3, init="real", batch_real=8, augment=False, **SMALL)
    plain = distill(train, base, images_per_class=2, seed=3, progress=False)
    synced = distill(train, dataclasses.replace(base, matching="synchronized", lr_img=base.lr_img / 2),
                     images_per_class=2, seed=3, progress=False)
    assert float((synced.images - plain.images).abs().max()) > 1e-3


def test_dc_synchronized_differs_from_group_balanced_dc_even_on_balanced_batches() -> None:
    train = _two_group_toy()
    base = DCConfig(iterations=1, init="real", batch_real=8, real_sampling="group_balanced",
                    loops={1: (1, 1)}, **SMALL)
    plain = distill(train, base, images_per_class=1, seed=5, progress=False)
    synced = distill(train, dataclasses.replace(base, matching="synchronized"), images_per_class=1, seed=5,
                     progress=False)
    # Same batches, same network: the sum of per-group cosine distances is not 2 × the
    # distance to the mean gradient (the cosine is not linear in the real gradient).
    assert synced.losses[0] != pytest.approx(2 * plain.losses[0], rel=1e-3)
    assert torch.isfinite(synced.images).all()


def test_gradient_loss_sums_the_distance_over_the_groups_present() -> None:
    syn = [torch.tensor([1.0, 0.0])]
    by_group = {0: [torch.tensor([1.0, 0.0])], 1: [torch.tensor([0.0, 1.0])]}
    groups = torch.tensor([5, 9, 9, 5])

    def per_group(mask: torch.Tensor) -> list[torch.Tensor]:
        (key,) = {int(v) for v in groups[mask]}
        return by_group[0 if key == 5 else 1]

    def distance(a, b):
        return 1 - torch.nn.functional.cosine_similarity(a[0], b[0], dim=0)

    assert float(synchronized_gradient_loss(per_group, groups, syn, distance)) == pytest.approx(1.0)


def test_bad_matching_and_missing_attributes_are_errors_before_work() -> None:
    with pytest.raises(ValueError, match="matching='fair'"):
        DMConfig(matching="fair")
    with pytest.raises(ValueError, match="matching='synchronized' needs a training set with attributes"):
        distill(toy_dataset(), DMConfig(iterations=1, matching="synchronized", **SMALL), images_per_class=1, seed=0,
                progress=False)
    with pytest.raises(ValueError, match="matching='synchronized' needs a training set with attributes"):
        distill(toy_dataset(), DCConfig(iterations=1, matching="synchronized", loops={1: (1, 1)}, **SMALL),
                images_per_class=1, seed=0, progress=False)
