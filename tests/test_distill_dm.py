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


def _dm_as_before(train, cfg: DMConfig, ipc: int, seed: int) -> tuple[torch.Tensor, list[float]]:
    """DM written out as it was computed before the losses stayed on the device: the loss read
    back every iteration as ``loss.item() / K`` (plain CPU, class matching, uniform sampling)."""
    import copy

    from fairdd.augment import siamese_dsa
    from fairdd.distill._common import initial_images, make_sampler, seeded_model
    from fairdd.seeding import generator as seeded_generator

    k = train.num_classes
    g = seeded_generator(seed)
    sampler = make_sampler(train, cfg, None)
    syn = initial_images(train, sampler, cfg.init, ipc, g).requires_grad_(True)
    opt = torch.optim.SGD([syn], lr=cfg.lr_img, momentum=cfg.momentum_img)
    losses = []
    for _ in range(cfg.iterations):
        net = seeded_model(cfg, train, g, torch.device("cpu"))
        net.train()
        net.requires_grad_(False)
        reals, syns = [], []
        for c in range(k):
            real, syn_c = train.inputs[sampler.sample(c, cfg.batch_real, g)], syn[c * ipc : (c + 1) * ipc]
            if cfg.augment:
                real, syn_c = siamese_dsa(real, syn_c, strategy=cfg.dsa_strategy, generator=g, params=cfg.dsa_params)
            reals.append(real)
            syns.append(syn_c)
        with torch.no_grad():
            real_net, fmt = net, torch.contiguous_format
            if cfg.channels_last:
                real_net, fmt = copy.deepcopy(net).to(memory_format=torch.channels_last), torch.channels_last
            mean_real = torch.stack([real_net.embed(r.contiguous(memory_format=fmt)).mean(0) for r in reals])
        mean_syn = net.embed(torch.cat(syns)).view(k, ipc, -1).mean(1)
        loss = ((mean_real - mean_syn) ** 2).sum()
        (syn.grad,) = torch.autograd.grad(loss, [syn])
        opt.step()
        losses.append(loss.item() / k)
    return syn.detach(), losses


@pytest.mark.parametrize(("augment", "channels_last", "init"), [(False, False, "noise"), (True, True, "real")])
@pytest.mark.parametrize("checkpoint_every", [1, 3, 100])
def test_losses_read_back_late_are_the_floats_read_every_iteration(
    augment: bool, channels_last: bool, init: str, checkpoint_every: int
) -> None:
    # The loss stays a tensor until a checkpoint boundary; the log must still hold exactly
    # loss.item() / K of every iteration (not (loss / K).item()), and the images must not move.
    train = toy_dataset()
    cfg = DMConfig(iterations=5, batch_real=8, augment=augment, channels_last=channels_last, init=init,
                   checkpoint_every=checkpoint_every, **SMALL)
    images, losses = _dm_as_before(train, cfg, 2, seed=4)
    out = distill(train, cfg, images_per_class=2, seed=4, progress=False)
    assert out.losses == tuple(losses)
    assert torch.equal(out.images, images)
