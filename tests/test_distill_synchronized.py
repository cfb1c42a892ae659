"""fairdd.distill.synchronized: FairDD's synchronized matching for DM and DC."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from fairdd.distill import DCConfig, DMConfig, distill
from fairdd.data import RealSampler
from fairdd.distill.synchronized import expected_targets, synchronized_gradient_loss, synchronized_mean_loss
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


def _colour_class(sizes: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """One class whose images fall into groups of the given sizes (labels all 0)."""
    attributes = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    return torch.zeros(len(attributes), dtype=torch.long), attributes


def test_expected_targets_match_a_monte_carlo_of_the_real_sampler_and_the_loss_gradient() -> None:
    # The cpu profile's r = 0.9 class: 540 images of the class's colour, 6-7 of each other colour,
    # 32 drawn per batch by RealSampler's uniform mode (DM's own draws).
    sizes = [540, 7, 6, 7, 7, 6, 7, 7, 6, 7]
    labels, attributes = _colour_class(sizes)
    exact = expected_targets(np.array([sizes]), 32)
    sampler = RealSampler(labels, 1, mode="uniform")
    g = torch.Generator().manual_seed(0)
    draws = 4000
    present = np.zeros((draws, len(sizes)))
    # Fixed embeddings per image: group g's images scatter around a mean m_g. The gradient of the
    # synchronized loss in s, averaged over the sampler's batches, must be 2 * sum_g p_g (s - m_g).
    emb = torch.randn(len(labels), 3, generator=torch.Generator().manual_seed(1)) + attributes[:, None].double().float()
    s = torch.zeros(3, requires_grad=True)
    grad = torch.zeros(3)
    for i in range(draws):
        idx = sampler.sample(0, 32, g)
        present[i, torch.unique(attributes[idx]).numpy()] = 1
        (gs,) = torch.autograd.grad(synchronized_mean_loss(emb[idx], attributes[idx], s), s)
        grad += gs
    grad /= draws
    freq = present.mean(0)
    se = np.sqrt(freq * (1 - freq) / draws) + 1e-3
    assert np.all(np.abs(freq - exact.presence[0]) < 4 * se)
    assert exact.presence[0, 0] == 1.0
    assert freq[0] == 1.0
    mc_weights = freq / present.sum(1).mean()
    np.testing.assert_allclose(mc_weights, exact.weights[0], atol=0.01)
    np.testing.assert_allclose(present.sum(1).mean(), exact.step[0], rtol=0.02)
    means = torch.stack([emb[attributes == k].mean(0) for k in range(len(sizes))]).double().numpy()
    expected_grad = 2 * (exact.presence[0][:, None] * (0.0 - means)).sum(0)
    np.testing.assert_allclose(grad.numpy(), expected_grad, rtol=0.03, atol=0.05)
    # The numbers the issue and the page quote: a minority colour in about 30 % of batches, the
    # majority colour about 27 % of FairDD's expected target (10 % balanced, 90 % plain DM), step about 3.7.
    assert 0.27 < exact.presence[0, 1:].mean() < 0.33
    assert exact.weights[0, 0] == pytest.approx(0.266, abs=0.005)
    assert exact.step[0] == pytest.approx(3.76, abs=0.01)
    np.testing.assert_allclose(exact.balanced[0], 0.1)
    assert exact.share[0, 0] == pytest.approx(0.9)


def test_expected_targets_edge_cases_and_errors() -> None:
    # A batch as large as the class holds every group; a group the class lacks gets nothing.
    e = expected_targets(np.array([[3, 2, 0], [1, 1, 1]]), 5)
    np.testing.assert_allclose(e.presence, [[1, 1, 0], [1, 1, 1]])
    np.testing.assert_allclose(e.weights, [[0.5, 0.5, 0], [1 / 3, 1 / 3, 1 / 3]])
    np.testing.assert_allclose(e.step, [2, 3])
    np.testing.assert_allclose(e.balanced, [[0.5, 0.5, 0], [1 / 3, 1 / 3, 1 / 3]])
    # One draw: each group present with its share.
    np.testing.assert_allclose(expected_targets(np.array([[3, 1]]), 1).presence, [[0.75, 0.25]])
    with pytest.raises(ValueError, match="non-negative integers"):
        expected_targets(np.array([[1.5, 2]]), 2)
    with pytest.raises(ValueError, match=r"classes \[1\] have no images"):
        expected_targets(np.array([[1, 2], [0, 0]]), 2)
    with pytest.raises(ValueError, match="batch=0"):
        expected_targets(np.array([[1, 2]]), 0)
