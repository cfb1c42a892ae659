"""Distribution Matching (DM; Zhao & Bilen, WACV 2023).

The synthetic images are learned so that, under a randomly initialised network, each class's
mean embedding of synthetic images matches the mean embedding of a real batch of that class.

One iteration (reference VICO-UoE/DatasetCondensation@53f63a6, ``main_DM.py``):

1. a freshly initialised network (seeded), its parameters frozen, in training mode;
2. per class c: a real batch of ``batch_real`` images and the class's synthetic images, both
   transformed with the *same* drawn DSA parameters (``augment=True``, the reference default);
3. ``loss = Σ_c ‖mean_i embed(real_c,i) − mean_j embed(syn_c,j)‖²`` (embed: the features
   before the linear head), one SGD step of the images; the logged loss is ``loss / K``.

All classes' synthetic images are embedded in one forward pass (identical to per class: the
ConvNet's norms are per sample). Real images are embedded without autograd, per class on CPU
(the smallest memory peak) and in one pass on CUDA or when the net has BatchNorm (the
reference's ConvNetBN branch also embeds all classes together, so that is faithful too).

Departure from the reference: it loops ``Iteration + 1`` times; we do ``iterations`` updates.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch

from fairdd.augment import siamese_dsa
from fairdd.config import check_int, check_profile
from fairdd.data import Dataset
from fairdd.distill._common import (
    Callback,
    DistillConfig,
    Init,
    SyntheticSet,
    fingerprint,
    has_batchnorm,
    initial_images,
    make_sampler,
    new_generator,
    optimise,
    seeded_model,
    synthetic_labels,
)
from fairdd.distill.synchronized import check_matching, check_matching_data, synchronized_mean_loss
from fairdd.models import NetworkSpec

__all__ = ["DMConfig", "run"]


@dataclass(frozen=True, kw_only=True)
class DMConfig(DistillConfig):
    """Settings of DM; defaults are the reference's (``main_DM.py`` and its README command).

    The shared fields are :class:`~fairdd.distill._common.DistillConfig`'s; here with DM's
    reference values.

    Attributes
    ----------
    augment : siamese DSA on the real and synthetic batch of each class (reference: on,
        ``--dsa_strategy color_crop_cutout_flip_scale_rotate``).
    dsa_strategy, dsa_params : the DSA families and constants (see :mod:`fairdd.augment`).
    iterations : image updates, each under a fresh random network (reference 20000).
    lr_img : SGD learning rate of the synthetic images (reference 1.0).
    momentum_img : its momentum (reference 0.5, hard-coded).
    batch_real : real images per class per iteration (reference 256).
    init : ``"real"`` (reference) or ``"noise"``.
    network : the embedding network (reference ConvNet 128/3/instancenorm), a
        :class:`~fairdd.models.NetworkSpec`.
    real_sampling : ``"uniform"`` (reference) or ``"group_balanced"``, see :class:`RealSampler`.
    matching : ``"class"`` (reference: one mean embedding per class) or ``"synchronized"``
        (FairDD: the mean embedding of every attribute group in the class's real batch, summed;
        needs a training set with attributes), see :mod:`fairdd.distill.synchronized`.
    channels_last : embed the real batches with a channels-last copy of the network (same
        weights; float rounding differs from contiguous). Only the no-grad real forward uses it;
        the synthetic forward/backward stays contiguous. To measure it on a machine:
        ``python benchmarks/bench_distill.py --methods dm`` with and without
        ``--no-channels-last`` (results in ``benchmarks/results/bench_distill.json``).
    checkpoint_every : iterations between checkpoints.
    """

    augment: bool = True
    iterations: int = 20000
    lr_img: float = 1.0
    batch_real: int = 256
    init: Init = "real"
    channels_last: bool = True
    checkpoint_every: int = 100
    matching: str = "class"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("batch_real", self.batch_real, minimum=1)
        check_matching(self.matching)
        if not isinstance(self.channels_last, bool):
            raise ValueError(f"channels_last={self.channels_last!r} must be a bool")

    @property
    def method(self) -> str:
        return "dm"

    @classmethod
    def for_profile(cls, profile: str) -> "DMConfig":
        """The config for a run profile.

        - ``"paper"``: the reference settings.
        - ``"cpu"``: ConvNet width 32 (about 16× fewer conv FLOPs than 128; seconds per
          iteration in ``benchmarks/bench_distill.py``), ``batch_real`` 64 instead of 256,
          300 iterations instead of 20000.
        - ``"smoke"``: width 8, depth 2, ``batch_real`` 16, 3 iterations.
        """
        check_profile(profile)
        if profile == "paper":
            return cls()
        if profile == "cpu":
            return cls(network=NetworkSpec(width=32), batch_real=64, iterations=300)
        return cls(network=NetworkSpec(width=8, depth=2), batch_real=16, iterations=3, checkpoint_every=1)


def run(
    train: Dataset,
    cfg: DMConfig,
    *,
    images_per_class: int,
    seed: int,
    checkpoint_dir: str | Path | None,
    progress: bool,
    device: torch.device,
    sample_weights: torch.Tensor | None,
    callback: Callback | None,
) -> SyntheticSet:
    """DM behind :func:`fairdd.distill.distill` (which validates the arguments)."""
    check_matching_data(cfg.matching, train)
    ipc = images_per_class
    k = train.num_classes
    generator = new_generator(seed)
    sampler = make_sampler(train, cfg, sample_weights)
    inputs = train.inputs.to(device)
    synchronized = cfg.matching == "synchronized"
    attributes = train.attributes.to(device) if synchronized else None
    syn = initial_images(train, sampler, cfg.init, ipc, generator).to(device).requires_grad_(True)
    labels = synthetic_labels(k, ipc).to(device)
    opt_img = torch.optim.SGD([syn], lr=cfg.lr_img, momentum=cfg.momentum_img)

    def step(_: int) -> float:
        net = seeded_model(cfg, train, generator, device)
        net.train()
        net.requires_grad_(False)
        reals, syns, groups = [], [], []
        for c in range(k):
            index = sampler.sample(c, cfg.batch_real, generator).to(device)
            real = inputs[index]
            if synchronized:
                groups.append(attributes[index])
            syn_c = syn[c * ipc : (c + 1) * ipc]
            if cfg.augment:
                real, syn_c = siamese_dsa(real, syn_c, strategy=cfg.dsa_strategy, generator=generator, params=cfg.dsa_params)
            reals.append(real)
            syns.append(syn_c)
        with torch.no_grad():
            real_net, fmt = net, torch.contiguous_format
            if cfg.channels_last:
                real_net, fmt = copy.deepcopy(net).to(memory_format=torch.channels_last), torch.channels_last
            if synchronized:
                # Every image's embedding is needed (per-group means), not only the class mean.
                sizes = [r.shape[0] for r in reals]
                if device.type == "cuda" or has_batchnorm(net):
                    embedded = real_net.embed(torch.cat(reals).contiguous(memory_format=fmt)).split(sizes)
                else:
                    embedded = [real_net.embed(r.contiguous(memory_format=fmt)) for r in reals]
            elif device.type == "cuda" or has_batchnorm(net):
                sizes = [r.shape[0] for r in reals]
                embedded = real_net.embed(torch.cat(reals).contiguous(memory_format=fmt))
                mean_real = torch.stack([e.mean(0) for e in embedded.split(sizes)])
            else:
                mean_real = torch.stack([real_net.embed(r.contiguous(memory_format=fmt)).mean(0) for r in reals])  # (K, D)
        mean_syn = net.embed(torch.cat(syns)).view(k, ipc, -1).mean(1)  # (K, D)
        if synchronized:
            loss = sum(synchronized_mean_loss(embedded[c], groups[c], mean_syn[c]) for c in range(k))
        else:
            loss = ((mean_real - mean_syn) ** 2).sum()
        (syn.grad,) = torch.autograd.grad(loss, [syn])
        opt_img.step()
        return loss.item() / k

    losses = optimise(
        step,
        tensors={"images": syn},
        optimizers={"images": opt_img},
        generator=generator,
        iterations=cfg.iterations,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=cfg.checkpoint_every,
        run_id=fingerprint(cfg, train, ipc, seed),
        progress=progress,
        callback=callback,
        desc="DM",
    )
    return SyntheticSet(
        images=syn.detach().cpu().clone(),
        labels=labels.cpu(),
        learning_rate=None,
        losses=tuple(losses),
        method="dm",
        images_per_class=ipc,
        seed=seed,
        config=cfg,
    )
