"""fairdd.distill.dm: distribution matching on hand-checkable cases."""

from __future__ import annotations

import pytest
import torch

from fairdd.distill import DMConfig, distill
from fairdd.models import NetworkSpec, build_model
from tests.test_distill_common import SMALL, toy_dataset


def test_synthetic_set_equal_to_the_real_class_has_zero_loss_and_stays() -> None:
    # IPC = class size, real init, batch_real ≥ class size, no augmentation: the class means of
    # the embeddings coincide, the loss is 0 and so is the images' gradient.
    train = toy_dataset(per_class=3)
    cfg = DMConfig(iterations=2, init="real", batch_real=8, augment=False, **SMALL)
    out = distill(train, cfg, images_per_class=3, seed=0, progress=False)
    assert max(out.losses) == pytest.approx(0.0, abs=1e-8)
    # Every synthetic image is still one of its class's real images.
    for img, label in zip(out.images, out.labels):
        d = (train.inputs[train.labels == label] - img).flatten(1).abs().amax(1)
        assert d.min() < 1e-5


def test_first_loss_is_the_squared_distance_of_class_mean_embeddings() -> None:
    # With batch_real ≥ class size the real batch is the whole class, so the first loss can be
    # recomputed independently: the first network is built from the first seed drawn after
    # the initial images (noise init draws one randn of the synthetic shape).
    train = toy_dataset(per_class=4)
    cfg = DMConfig(iterations=1, init="noise", batch_real=8, augment=False, **SMALL)
    out = distill(train, cfg, images_per_class=2, seed=11, progress=False)
    g = torch.Generator().manual_seed(11)
    syn0 = torch.randn((8, 1, 8, 8), generator=g)
    net_seed = int(torch.randint(0, 2**62, (1,), generator=g))
    net = build_model("convnet", channels=1, num_classes=4, image_size=8, seed=net_seed, width=8, depth=2)
    with torch.no_grad():
        expected = sum(
            float(((net.embed(train.inputs[train.labels == c]).mean(0) - net.embed(syn0[2 * c : 2 * c + 2]).mean(0)) ** 2).sum())
            for c in range(4)
        ) / 4
    assert out.losses[0] == pytest.approx(expected, rel=1e-5)


def test_batchnorm_embeds_all_classes_together() -> None:
    cfg = DMConfig(iterations=2, batch_real=8, network=NetworkSpec(width=8, depth=2, norm="batchnorm"))
    out = distill(toy_dataset(), cfg, images_per_class=1, seed=0, progress=False)
    assert torch.isfinite(out.images).all()
