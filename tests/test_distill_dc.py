"""fairdd.distill.dc: the gradient-matching distance on hand-computed cases, and DC specifics."""

from __future__ import annotations

import math

import pytest
import torch

from fairdd.distill import DCConfig, distill, match_distance
from fairdd.models import NetworkSpec
from tests.test_distill_common import SMALL, toy_dataset

# Hand-made gradients of a "conv" (2, 1, 1, 2), a "linear" (2, 2) and a "bias" (2,).
SYN = [torch.tensor([[[[1.0, 0.0]]], [[[0.0, 1.0]]]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([1.0, 0.0])]
REAL = [torch.tensor([[[[1.0, 1.0]]], [[[0.0, 2.0]]]]), torch.tensor([[-1.0, 0.0], [0.0, 3.0]]), torch.tensor([0.0, 1.0])]


def test_layerwise_cosine_by_hand() -> None:
    # conv rows: cos((1,0),(1,1)) = 1/√2 and cos((0,1),(0,2)) = 1 → 1 − 1/√2;
    # linear rows: cos = −1 and 1 → 2; the bias is ignored (reference distance_wb).
    expected = (1 - 1 / math.sqrt(2)) + 2.0
    got = match_distance(SYN, REAL, eps=0.0)
    assert got.item() == pytest.approx(expected, abs=1e-6)
    # With match_1d the bias is one row: cos((1,0),(0,1)) = 0 → + 1.
    assert match_distance(SYN, REAL, match_1d=True, eps=0.0).item() == pytest.approx(expected + 1, abs=1e-6)
    # eps enters the denominator: row (1,0)·(1,1) = 1 over ‖·‖‖·‖ = √2 + eps.
    eps = 0.5
    with_eps = (1 - 1 / (math.sqrt(2) + eps)) + (1 - 2 / (2 + eps)) + (1 + 1 / (1 + eps)) + (1 - 3 / (3 + eps))
    assert match_distance(SYN, REAL, eps=eps).item() == pytest.approx(with_eps, abs=1e-6)


def test_mse_and_global_cosine_by_hand() -> None:
    # Differences: conv (0,−1),(0,−1) → 2; linear (2,0),(0,−2) → 8; bias (1,−1) → 2.
    assert match_distance(SYN, REAL, distance="mse").item() == pytest.approx(12.0)
    s = torch.tensor([1.0, 0, 0, 1, 1, 0, 0, 1, 1, 0])
    r = torch.tensor([1.0, 1, 0, 2, -1, 0, 0, 3, 0, 1])
    cos = float(s @ r / (s.norm() * r.norm()))
    assert match_distance(SYN, REAL, distance="cosine", eps=0.0).item() == pytest.approx(1 - cos, abs=1e-6)


def test_distance_is_differentiable_in_the_synthetic_gradient() -> None:
    syn = [g.clone().requires_grad_(True) for g in SYN]
    match_distance(syn, REAL, match_1d=True).backward()
    assert all(g.grad is not None and g.grad.abs().sum() > 0 for g in syn[:2])


def test_a_layernorm_gradient_is_matched_per_channel() -> None:
    # (C, H, W) = (2, 1, 2): rows per channel, as the reference's 3-D branch.
    s = torch.tensor([[[1.0, 0.0]], [[1.0, 1.0]]])
    r = torch.tensor([[[0.0, 1.0]], [[2.0, 2.0]]])
    assert match_distance([s], [r], eps=0.0).item() == pytest.approx(1.0, abs=1e-6)


def test_synthetic_set_equal_to_the_real_class_has_zero_loss() -> None:
    # IPC = class size, real init, batch_real ≥ class size, no augmentation: each class's
    # synthetic images are its real images (in another order), so the gradients are equal and,
    # with eps = 0, every row's 1 − cos is 0 up to float rounding.
    train = toy_dataset(per_class=3)
    cfg = DCConfig(iterations=1, init="real", batch_real=8, loops={3: (1, 1)}, eps=0.0, **SMALL)
    out = distill(train, cfg, images_per_class=3, seed=0, progress=False)
    assert out.losses[0] == pytest.approx(0.0, abs=1e-5)


def test_batchnorm_network_and_larger_inner_loop_run() -> None:
    train = toy_dataset()
    cfg = DCConfig(
        iterations=2,
        batch_real=8,
        network=NetworkSpec(width=8, depth=2, norm="batchnorm"),
        bn_images_per_class=4,
        loops={2: (2, 3)},
    )
    out = distill(train, cfg, images_per_class=2, seed=0, progress=False)
    assert torch.isfinite(out.images).all() and len(out.losses) == 2


def test_dsa_is_dc_with_augmentation() -> None:
    from fairdd.distill import config_for, dsa_config

    assert dsa_config().augment and dsa_config().init == "real"
    assert config_for("dsa", "paper") == dsa_config()
    assert config_for("dc", "paper") == DCConfig()
