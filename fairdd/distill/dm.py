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

The loss is returned to :func:`~fairdd.distill._common.optimise` as a device tensor and read
back at checkpoint boundaries only; the real-batch indices, drawn on the CPU generator, reach a
GPU through pinned memory (:func:`fairdd.training.to_device`): no host sync of ours per
iteration, identical values.

**Several seeds side by side** (:func:`run_side_by_side`, behind
:func:`fairdd.distill.distill_side_by_side`). DM's iterations repeat independent work: every
seed of a sweep embeds its own real batches and synthetic sets under its own fresh network.
``S`` seeds are distilled in one loop whose iteration i first makes, seed by seed in order, the
draws the sequential :func:`run` of that seed makes at iteration i from its own generator (the
network seed, then per class the real batch and the siamese DSA parameters), so each seed's
randomness is exactly its sequential randomness. Then one vmapped pass does the work of all
seeds: the ``S`` networks' parameters are stacked (``torch.func.stack_module_state``), the real
batches (without autograd) and the synthetic sets (with it) are embedded by
``vmap(functional_call(embed))``, the per-seed losses are summed (seed s's images get only
seed s's gradient) and one ``torch.optim.SGD`` steps the stacked ``(S, N, C, H, W)`` images
(SGD with momentum is elementwise, so it is S separate optimisers). The DSA transformations of
all seeds and classes are applied in one call per drawn family (each chunk's parameters
repeated over its images). The result equals S sequential :func:`fairdd.distill.distill` runs
within float tolerance, not bit for bit (the batched convolutions and reductions sum in another
order; ``tests/test_distill_dm_side_by_side.py``: images and losses at rtol 1e-4 / atol 1e-5
after a few iterations, fp32 CPU). ``channels_last`` is ignored there (it only changes the
rounding of the real forward). Rejected before any work (:func:`check_side_by_side`):
``matching="synchronized"`` (its per-group real embeddings are not batched) and networks with
BatchNorm, other buffers or dropout (batch statistics, in-place running statistics and random
masks would not be the sequential ones under ``vmap``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from fairdd.augment import DSASample, dsa_apply, dsa_sample, siamese_dsa
from fairdd.config import check_int, check_profile
from fairdd.data import Dataset
from fairdd.distill._common import (
    Callback,
    DistillConfig,
    Init,
    RunsCallback,
    SyntheticSet,
    fingerprint,
    has_batchnorm,
    initial_images,
    make_sampler,
    optimise,
    optimise_runs,
    runs_fingerprint,
    seeded_model,
    study_profile,
    synthetic_labels,
)
from fairdd.distill.synchronized import check_matching, check_matching_data, synchronized_mean_loss
from fairdd.models import NetworkSpec
from fairdd.seeding import generator as seeded_generator
from fairdd.training import to_device

__all__ = ["DMConfig", "check_side_by_side", "run", "run_side_by_side"]


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
    real_sampling : ``"uniform"`` (reference) or ``"group_balanced"``, see :class:`fairdd.data.RealSampler`.
    matching : ``"class"`` (reference: one mean embedding per class) or ``"synchronized"``
        (FairDD: the mean embedding of every attribute group in the class's real batch, summed;
        needs a training set with attributes), see :mod:`fairdd.distill.synchronized`.
    channels_last : embed the real batches with a channels-last copy of the network (same
        weights; float rounding differs from contiguous). Only the no-grad real forward uses it;
        the synthetic forward/backward stays contiguous. To measure it on a machine:
        ``python benchmarks/bench_distill.py --methods dm`` with and without
        ``--no-channels-last`` (results in ``benchmarks/results/bench_distill.json``). Ignored
        when ``network.fast_kernels`` is on: with those kernels the channels-first real forward
        is the faster one on the CPU (``benchmarks/bench_flops.py`` times DM with the switch off and on).
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
        - ``"smoke"``: width 8, depth 2, ``batch_real`` 16, 3 iterations (for the unit tests).

        A ``"cpu"`` protocol is a study's: each study states its own reduced configs
        (:meth:`fairdd.studies.methods.MethodsStudyConfig.for_profile`); ``"cpu"`` raises here.
        """
        check_profile(profile)
        if profile == "paper":
            return cls()
        if profile == "cpu":
            raise study_profile(profile, "dm")
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
    generator = seeded_generator(seed)
    sampler = make_sampler(train, cfg, sample_weights)
    inputs = train.inputs.to(device)
    synchronized = cfg.matching == "synchronized"
    attributes = train.attributes.to(device) if synchronized else None
    syn = initial_images(train, sampler, cfg.init, ipc, generator).to(device).requires_grad_(True)
    labels = synthetic_labels(k, ipc).to(device)
    opt_img = torch.optim.SGD([syn], lr=cfg.lr_img, momentum=cfg.momentum_img)

    def step(_: int) -> torch.Tensor:
        net = seeded_model(cfg, train, generator, device)
        net.train()
        net.requires_grad_(False)
        reals, syns, groups = [], [], []
        for c in range(k):
            index = to_device(sampler.sample(c, cfg.batch_real, generator), device)
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
            if cfg.channels_last and not cfg.network.fast_kernels:  # fast_kernels: channels-first is faster
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
        return loss.detach()  # logged as loss.item() / k by optimise, at checkpoint boundaries

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
        loss_divisor=k,
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


# --------------------------------------------------------------------------- seeds side by side


class _Embedding(nn.Module):
    """A network whose ``forward`` is its ``embed`` (``functional_call`` calls ``forward``; DM
    matches the features before the head). Its parameter names are the network's, ``net.``-prefixed."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.embed(x)


def check_side_by_side(train: Dataset, cfg: DistillConfig) -> None:
    """Raise ``ValueError`` unless :func:`run_side_by_side` can distil ``cfg`` on ``train``.

    Refused: a config other than :class:`DMConfig`, ``matching="synchronized"``, and networks
    with BatchNorm, other buffers or dropout (checked on ``cfg.network`` built for ``train``).
    """
    if not isinstance(cfg, DMConfig):
        raise ValueError(
            f"config={type(cfg).__name__} (method {getattr(cfg, 'method', None)!r}) cannot be distilled side by side; "
            "only DMConfig (method 'dm') can. Distil each seed with fairdd.distill.distill"
        )
    if cfg.matching != "class":
        raise ValueError(
            f"matching={cfg.matching!r} cannot be distilled side by side; only matching='class' can. "
            "Distil each seed with fairdd.distill.distill"
        )
    net = cfg.network.build(train.inputs.shape[1], train.num_classes, train.inputs.shape[-1], seed=0)
    if has_batchnorm(net):
        raise ValueError(
            f"network={cfg.network!r} has BatchNorm, which cannot be distilled side by side (its batch statistics "
            "and in-place running statistics are not the sequential ones under vmap); use norm='instancenorm', "
            "'groupnorm', 'layernorm' or 'none', or distil each seed with fairdd.distill.distill"
        )
    buffers = [name for name, _ in net.named_buffers()]
    if buffers:
        raise ValueError(
            f"network={cfg.network!r} has buffers {buffers[:3]}, which cannot be distilled side by side; "
            "distil each seed with fairdd.distill.distill"
        )
    dropout = [type(m).__name__ for m in net.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]
    if dropout:
        raise ValueError(
            f"network={cfg.network!r} has dropout ({dropout[0]}), which cannot be distilled side by side (its "
            "masks would not be the sequential draws); distil each seed with fairdd.distill.distill"
        )


def _siamese_chunks(x: torch.Tensor, sizes: Sequence[int], samples: Sequence[DSASample]) -> torch.Tensor:
    """``x`` cut into consecutive chunks of ``sizes`` images, chunk i transformed by the 1-row
    ``samples[i]`` (as :func:`~fairdd.augment.siamese_dsa` applies it), in one
    :func:`~fairdd.augment.dsa_apply` per distinct family tuple: each chunk's parameters are
    repeated over its images, and the images are put back in their order. Differentiable in ``x``."""
    device = x.device
    starts = torch.cumsum(torch.tensor([0, *sizes[:-1]]), 0).tolist()
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, sample in enumerate(samples):
        groups.setdefault(sample.families, []).append(i)
    parts, rows = [], []
    for families, members in groups.items():
        first = samples[members[0]]
        counts = torch.tensor([sizes[i] for i in members])
        idx = torch.cat([torch.arange(starts[i], starts[i] + sizes[i]) for i in members])
        values = {
            key: to_device(torch.cat([samples[i].values[key] for i in members]).repeat_interleave(counts), device)
            for key in first.values
        }
        sample = DSASample(
            families=families,
            values=values,
            image_size=first.image_size,
            batch_size=idx.numel(),
            cutout_size=first.cutout_size,
        )
        parts.append(dsa_apply(x[to_device(idx, device)], sample))
        rows.append(idx)
    order = torch.cat(rows)
    if order.equal(torch.arange(x.shape[0])):  # one group: the images are in place already
        return torch.cat(parts)
    return torch.cat(parts)[to_device(torch.argsort(order), device)]


def run_side_by_side(
    train: Dataset,
    cfg: DMConfig,
    *,
    images_per_class: int,
    seeds: Sequence[int],
    checkpoint_dir: str | Path | None,
    progress: bool,
    device: torch.device,
    sample_weights: torch.Tensor | None,
    callback: RunsCallback | None,
) -> list[SyntheticSet]:
    """DM of several seeds side by side (see the module notes), behind
    :func:`fairdd.distill.distill_side_by_side` (which validates the arguments).

    Seed s's draws are those of ``run(..., seed=s)``, iteration by iteration (reference
    VICO-UoE/DatasetCondensation@53f63a6 ``main_DM.py``, one loop per seed there); the work of
    all seeds is one vmapped forward and backward. Returns one :class:`SyntheticSet` per seed,
    in the order of ``seeds``, each as :func:`run` returns it; equal to the sequential runs
    within float tolerance (rtol 1e-4 / atol 1e-5 after a few iterations, fp32 CPU).
    """
    ipc = images_per_class
    k = train.num_classes
    seeds = list(seeds)
    n_seeds = len(seeds)
    shape = tuple(train.inputs.shape[1:])
    image_size = tuple(shape[-2:])
    cpu = torch.device("cpu")
    generators = [seeded_generator(seed) for seed in seeds]
    sampler = make_sampler(train, cfg, sample_weights)
    inputs = train.inputs.to(device)
    syn = torch.stack([initial_images(train, sampler, cfg.init, ipc, g) for g in generators])
    syn = syn.to(device).requires_grad_(True)  # (S, K*ipc, C, H, W)
    labels = synthetic_labels(k, ipc)
    opt_img = torch.optim.SGD([syn], lr=cfg.lr_img, momentum=cfg.momentum_img)
    # The stateless copy of the architecture that functional_call runs with the stacked weights.
    base = _Embedding(cfg.network.build(shape[0], k, shape[-1], seed=0)).to("meta")
    embed = vmap(lambda params, x: functional_call(base, params, (x,)))  # over (params, x), dim 0
    per_class = device.type != "cuda"  # real embeddings class by class on the CPU (memory peak), as run

    def step(_: int) -> torch.Tensor:
        nets, indices, samples = [], [], []
        for g in generators:  # each seed's draws, in the order run() makes them
            nets.append(seeded_model(cfg, train, g, cpu))
            for c in range(k):
                indices.append(sampler.sample(c, cfg.batch_real, g))
                if cfg.augment:
                    samples.append(
                        dsa_sample(cfg.dsa_strategy, 1, image_size=image_size, generator=g, params=cfg.dsa_params)
                    )
        sizes = [int(i.numel()) for i in indices]
        if sizes != sizes[:k] * n_seeds:  # a class's batch size depends on the sampler only
            raise RuntimeError(f"real batch sizes differ between seeds: {sizes}")
        stacked, _ = stack_module_state(nets)
        params = {f"net.{name}": to_device(p.detach(), device) for name, p in stacked.items()}
        real = inputs[to_device(torch.cat(indices), device)]  # (S*R, C, H, W), chunks (seed, class)
        syn_flat = syn.flatten(0, 1)  # (S*K*ipc, C, H, W), chunks (seed, class)
        if cfg.augment:
            real = _siamese_chunks(real, sizes, samples)
            syn_flat = _siamese_chunks(syn_flat, [ipc] * (n_seeds * k), samples)
        real = real.view(n_seeds, -1, *shape)  # (S, R, C, H, W)
        with torch.no_grad():
            if per_class:
                mean_real = torch.stack([embed(params, r).mean(1) for r in real.split(sizes[:k], dim=1)], dim=1)
            else:
                mean_real = torch.stack([e.mean(1) for e in embed(params, real).split(sizes[:k], dim=1)], dim=1)
        mean_syn = embed(params, syn_flat.view(n_seeds, k * ipc, *shape)).view(n_seeds, k, ipc, -1).mean(2)
        loss = ((mean_real - mean_syn) ** 2).flatten(1).sum(1)  # (S,): seed s's loss
        (syn.grad,) = torch.autograd.grad(loss.sum(), [syn])
        opt_img.step()
        return loss.detach()  # logged as loss[s].item() / k, at checkpoint boundaries

    losses = optimise_runs(
        step,
        tensors={"images": syn},
        optimizers={"images": opt_img},
        generators=generators,
        iterations=cfg.iterations,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=cfg.checkpoint_every,
        run_id=runs_fingerprint(cfg, train, ipc, seeds),
        progress=progress,
        callback=callback,
        desc=f"DM ×{n_seeds}",
        loss_divisor=k,
    )
    images = syn.detach().cpu()
    return [
        SyntheticSet(
            images=images[i].clone(),
            labels=labels.clone(),
            learning_rate=None,
            losses=tuple(losses[i]),
            method="dm",
            images_per_class=ipc,
            seed=seed,
            config=cfg,
        )
        for i, seed in enumerate(seeds)
    ]
