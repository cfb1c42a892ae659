"""Dataset Condensation (DC; Zhao, Mopuri & Bilen, ICLR 2021) and DSA (Zhao & Bilen, ICML 2021).

Gradient matching: the synthetic images are learned so that, class by class, the gradient of
the loss on them matches the gradient on a real batch, along the training trajectory of a
network that is itself trained on the synthetic set.

One iteration (reference VICO-UoE/DatasetCondensation@53f63a6, ``main.py``):

1. a freshly initialised network (seeded) and an SGD optimiser for it (``lr_net``);
2. ``outer_loop`` times: [freeze BatchNorm statistics on a real batch, if the net has
   BatchNorm] → per class c, ``g_real = ∇θ CE(net(real_c))`` (a batch of ``batch_real``) and
   ``g_syn = ∇θ CE(net(syn_c))`` (kept differentiable in the images) → one SGD step of the
   images on ``Σ_c D(g_syn, g_real)`` → except after the last outer step, ``inner_loop``
   epochs of training the net on the (detached) synthetic set, minibatches of ``batch_train``;
3. the logged loss is ``Σ D / (num_classes · outer_loop)``.

DSA is DC with ``augment=True``: within each class the real and the synthetic batch are
transformed with the *same* drawn DSA parameters before the forward passes, and the inner
loop trains on per-image DSA-augmented synthetic images (reference ``epoch(..., aug=True)``).

The distance ``D`` (``distance="layerwise_cosine"``, reference ``distance_wb``): per parameter
tensor, reshape the gradient to rows — conv ``(out, in·kh·kw)``, linear ``(out, in)``, a 3-D
(LayerNorm) ``(C, H·W)`` — and sum ``1 − cos`` over the rows,
``Σ_rows (1 − ⟨a, b⟩ / (‖a‖‖b‖ + eps))``. The reference returns 0 for 1-D parameters (biases,
norm scales): ``match_1d=False`` keeps that; ``match_1d=True`` includes each 1-D gradient as
one row.

Departures from the reference, all deliberate and small: the reference loops
``Iteration + 1`` times (0..1000), we do ``iterations`` updates; its BatchNorm freeze draws 16
real images per class even without BatchNorm in the net — we draw them only when needed; only
the images' gradient is computed in the matching backward (the reference also accumulates
unused ``.grad`` into the network, zeroed before use).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.nn import functional as F

from fairdd.augment import dsa, siamese_dsa
from fairdd.config import check_choice, check_int, check_number, check_profile
from fairdd.data import Dataset
from fairdd.distill._common import (
    Callback,
    DistillConfig,
    Init,
    LoopTable,
    SyntheticSet,
    fingerprint,
    has_batchnorm,
    initial_images,
    loop_table,
    make_sampler,
    optimise,
    seeded_model,
    study_profile,
    synthetic_labels,
)
from fairdd.distill.synchronized import check_matching, check_matching_data, synchronized_gradient_loss
from fairdd.models import NetworkSpec
from fairdd.seeding import generator as seeded_generator

__all__ = ["DCConfig", "Distance", "REFERENCE_LOOPS", "dsa_config", "match_distance", "run"]

Distance = Literal["layerwise_cosine", "mse", "cosine"]
DISTANCES: tuple[str, ...] = ("layerwise_cosine", "mse", "cosine")

# Reference ``get_loops``: IPC → (outer_loop, inner_loop), "empirically good" per the authors.
REFERENCE_LOOPS: Mapping[int, tuple[int, int]] = {
    1: (1, 1),
    10: (10, 50),
    20: (20, 25),
    30: (30, 20),
    40: (40, 15),
    50: (50, 10),
}


@dataclass(frozen=True, kw_only=True)
class DCConfig(DistillConfig):
    """Settings of DC (``augment=False``) and DSA (``augment=True``); defaults are the reference's.

    The shared fields are :class:`~fairdd.distill._common.DistillConfig`'s; here with DC's
    reference values.

    Attributes
    ----------
    augment : DSA on (``True``) or plain DC (``False``, reference ``--method DC``).
    dsa_strategy, dsa_params : DSA families (reference ``color_crop_cutout_flip_scale_rotate``)
        and constants (reference ``ParamDiffAug``); used only with ``augment``.
    iterations : distillation iterations, each with a fresh network and ``outer_loop`` image
        updates (reference ``--Iteration 1000``).
    lr_img : SGD learning rate of the synthetic images (reference 0.1).
    momentum_img : momentum of that SGD (reference 0.5, hard-coded in ``main.py``).
    lr_net : SGD learning rate of the network in the inner loop (reference 0.01).
    momentum_net : its momentum (reference: none, i.e. 0).
    batch_real : real images per class per matching step (reference 256).
    batch_train : minibatch of the inner-loop training on the synthetic set (reference 256).
    loops : outer/inner loop counts per IPC (reference ``get_loops``: 1 → 1/1, 10 → 10/50,
        20 → 20/25, 30 → 30/20, 40 → 40/15, 50 → 50/10). Give a mapping
        ``{ipc: (outer_loop, inner_loop)}``; it is stored as sorted ``(ipc, outer, inner)``
        triples (hashable, and JSON without integer keys for the run store). An IPC missing
        from it raises ``ValueError`` before any work starts (:meth:`loops_for`).
    distance : ``"layerwise_cosine"`` (reference ``dis_metric 'ours'``), ``"mse"`` or
        ``"cosine"`` (one cosine over all gradients concatenated).
    match_1d : whether ``layerwise_cosine`` also matches 1-D parameter gradients (biases, norm
        affine); the reference ignores them (``False``).
    eps : added to the norm product of the cosine (reference 1e-6).
    bn_images_per_class : real images per class used to set BatchNorm statistics before each
        matching step, after which BatchNorm is frozen (reference ``BNSizePC = 16``); only for
        networks with BatchNorm.
    init : initial synthetic images, ``"noise"`` (reference default, N(0, 1)) or ``"real"``
        (random real images of the class; the reference's DSA commands use it).
    network : the network (reference ConvNet 128/3/instancenorm), a
        :class:`~fairdd.models.NetworkSpec`.
    real_sampling : how real images are drawn per class, see :class:`fairdd.data.RealSampler`
        (``"uniform"`` as the reference, or ``"group_balanced"``).
    compile : run the real-gradient and inner-loop passes through ``torch.compile`` (the
        synthetic gradient needs double backward and stays eager). Costs a one-off compile
        (cached on disk by inductor), then faster passes; ``python benchmarks/bench_distill.py
        --methods dc --compile`` against the same without ``--compile`` measures both (the
        first iteration's wall time includes the compile). Float rounding differs from eager.
    checkpoint_every : iterations between checkpoints (when a ``checkpoint_dir`` is given).
    matching : ``"class"`` (reference: one real gradient per class) or ``"synchronized"``
        (FairDD: the real gradient of every attribute group in the class's batch, each matched,
        summed; needs a training set with attributes), see :mod:`fairdd.distill.synchronized`.
    """

    augment: bool = False
    iterations: int = 1000
    lr_img: float = 0.1
    lr_net: float = 0.01
    momentum_net: float = 0.0
    batch_real: int = 256
    batch_train: int = 256
    loops: LoopTable = loop_table(REFERENCE_LOOPS)
    distance: Distance = "layerwise_cosine"
    match_1d: bool = False
    eps: float = 1e-6
    bn_images_per_class: int = 16
    init: Init = "noise"
    compile: bool = False
    checkpoint_every: int = 10
    matching: str = "class"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("batch_real", self.batch_real, minimum=1)
        check_matching(self.matching)
        check_number("lr_net", self.lr_net, minimum=0.0, strict_minimum=True)
        check_number("momentum_net", self.momentum_net, minimum=0.0, maximum=1.0)
        check_int("batch_train", self.batch_train, minimum=1)
        object.__setattr__(self, "loops", loop_table(self.loops))
        check_choice("distance", self.distance, DISTANCES)
        for name in ("match_1d", "compile"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} must be a bool")
        check_number("eps", self.eps, minimum=0.0)
        check_int("bn_images_per_class", self.bn_images_per_class, minimum=1)

    @property
    def method(self) -> str:
        return "dsa" if self.augment else "dc"

    def loops_for(self, images_per_class: int) -> tuple[int, int]:
        """``(outer_loop, inner_loop)`` for an IPC; ``ValueError`` if ``loops`` lacks it."""
        table = {ipc: (outer, inner) for ipc, outer, inner in self.loops}
        if images_per_class not in table:
            raise ValueError(
                f"images_per_class={images_per_class!r} has no entry in loops; "
                f"allowed: {sorted(table)} (or add {images_per_class}: (outer_loop, inner_loop) to loops)"
            )
        return table[images_per_class]

    @classmethod
    def for_profile(cls, profile: str, *, augment: bool = False) -> "DCConfig":
        """The config for a run profile (``augment=True``: DSA).

        - ``"paper"``: the reference settings (DSA: ``init="real"`` as the reference's DSA commands).
        - ``"smoke"``: width 8, depth 2, 3 iterations, ``batch_real`` 16, loops 2/2 at every IPC
          (for the unit tests).

        A ``"cpu"`` protocol is a study's: each study states its own reduced configs
        (:meth:`fairdd.studies.methods.MethodsStudyConfig.for_profile`); ``"cpu"`` raises here.
        """
        check_profile(profile)
        if profile == "paper":
            return cls(augment=augment, init="real" if augment else "noise")
        if profile == "cpu":
            raise study_profile(profile, "dsa" if augment else "dc")
        loops = {ipc: (min(outer, 2), min(inner, 2)) for ipc, (outer, inner) in REFERENCE_LOOPS.items()}
        loops.update({ipc: (2, 2) for ipc in (2, 3, 4, 5)})
        return cls(
            augment=augment,
            init="real",
            network=NetworkSpec(width=8, depth=2),
            iterations=3,
            batch_real=16,
            loops=loops,
            checkpoint_every=1,
        )


def dsa_config(**overrides: Any) -> DCConfig:
    """DSA with the reference's DSA settings: ``DCConfig(augment=True, init="real", ...)``."""
    return DCConfig(**{"augment": True, "init": "real", **overrides})


def match_distance(
    grads_syn: Sequence[torch.Tensor],
    grads_real: Sequence[torch.Tensor],
    *,
    distance: Distance = "layerwise_cosine",
    match_1d: bool = False,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Gradient-matching distance between two lists of per-parameter gradients.

    ``"layerwise_cosine"`` (reference ``match_loss`` with ``distance_wb``): for each parameter
    tensor, rows as in the module docstring, ``Σ_rows (1 − ⟨a_r, b_r⟩ / (‖a_r‖ ‖b_r‖ + eps))``,
    summed over tensors; 1-D tensors contribute 0 unless ``match_1d`` (then one row).
    ``"mse"``: ``‖a − b‖²`` over all gradients concatenated. ``"cosine"``: ``1 − cos`` of all
    gradients concatenated (``eps`` in the denominator as above).

    Returns a 0-d tensor, differentiable in both arguments.
    """
    if len(grads_syn) != len(grads_real):
        raise ValueError(f"{len(grads_syn)} synthetic and {len(grads_real)} real gradients; expected the same")
    check_choice("distance", distance, DISTANCES)
    if distance == "mse":
        return sum(((s - r) ** 2).sum() for s, r in zip(grads_syn, grads_real))  # type: ignore[return-value]
    if distance == "cosine":
        s = torch.cat([g.reshape(-1) for g in grads_syn])
        r = torch.cat([g.reshape(-1) for g in grads_real])
        return 1 - (s * r).sum() / (s.norm() * r.norm() + eps)
    total = grads_syn[0].new_zeros(())
    for s, r in zip(grads_syn, grads_real):
        if s.dim() == 1:
            if not match_1d:
                continue
            s, r = s.view(1, -1), r.view(1, -1)
        elif s.dim() > 2:
            s, r = s.flatten(1), r.flatten(1)  # (out, in·kh·kw) conv, (C, H·W) LayerNorm
        cos = (s * r).sum(-1) / (s.norm(dim=-1) * r.norm(dim=-1) + eps)
        total = total + (1 - cos).sum()
    return total


def _freeze_batchnorm(net: nn.Module, real: torch.Tensor) -> None:
    """Set BatchNorm running statistics from one real batch, then fix them (reference)."""
    net.train()
    with torch.no_grad():
        net(real)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def run(
    train: Dataset,
    cfg: DCConfig,
    *,
    images_per_class: int,
    seed: int,
    checkpoint_dir: str | Path | None,
    progress: bool,
    device: torch.device,
    sample_weights: torch.Tensor | None,
    callback: Callback | None,
) -> SyntheticSet:
    """DC/DSA behind :func:`fairdd.distill.distill` (which validates the arguments)."""
    ipc = images_per_class
    outer_loop, inner_loop = cfg.loops_for(ipc)  # before any work: a missing IPC is a ValueError
    check_matching_data(cfg.matching, train)
    synchronized = cfg.matching == "synchronized"
    attributes = train.attributes.to(device) if synchronized else None
    k = train.num_classes
    generator = seeded_generator(seed)
    sampler = make_sampler(train, cfg, sample_weights)
    inputs = train.inputs.to(device)
    syn = initial_images(train, sampler, cfg.init, ipc, generator).to(device).requires_grad_(True)
    labels = synthetic_labels(k, ipc).to(device)
    opt_img = torch.optim.SGD([syn], lr=cfg.lr_img, momentum=cfg.momentum_img)

    def real_batch(c: int, n: int) -> torch.Tensor:
        return inputs[sampler.sample(c, n, generator).to(device)]

    def step(_: int) -> float:
        net = seeded_model(cfg, train, generator, device)
        net.train()
        params = list(net.parameters())
        # The first-order passes (real gradients, inner loop) may run compiled; the synthetic
        # gradient needs double backward, which torch.compile does not support, so it is eager.
        fast_net = torch.compile(net) if cfg.compile else net
        opt_net = torch.optim.SGD(params, lr=cfg.lr_net, momentum=cfg.momentum_net)
        bn = has_batchnorm(net)
        total = 0.0
        for ol in range(outer_loop):
            if bn:
                _freeze_batchnorm(net, torch.cat([real_batch(c, cfg.bn_images_per_class) for c in range(k)]))
            loss = syn.new_zeros(())
            for c in range(k):
                if synchronized:
                    index = sampler.sample(c, cfg.batch_real, generator).to(device)
                    real, groups = inputs[index], attributes[index]
                else:
                    real = real_batch(c, cfg.batch_real)
                syn_c = syn[c * ipc : (c + 1) * ipc]
                if cfg.augment:
                    real, syn_c = siamese_dsa(
                        real, syn_c, strategy=cfg.dsa_strategy, generator=generator, params=cfg.dsa_params
                    )
                y_real = torch.full((real.shape[0],), c, dtype=torch.long, device=device)
                y_syn = labels[c * ipc : (c + 1) * ipc]
                if synchronized:
                    out_real = fast_net(real)
                    g_syn = torch.autograd.grad(F.cross_entropy(net(syn_c), y_syn), params, create_graph=True)

                    def group_gradient(mask: torch.Tensor) -> list[torch.Tensor]:
                        ce = F.cross_entropy(out_real[mask], y_real[mask])
                        return [g.detach() for g in torch.autograd.grad(ce, params, retain_graph=True)]

                    loss = loss + synchronized_gradient_loss(
                        group_gradient, groups, g_syn,
                        lambda a, b: match_distance(a, b, distance=cfg.distance, match_1d=cfg.match_1d, eps=cfg.eps),
                    )
                    continue
                g_real = torch.autograd.grad(F.cross_entropy(fast_net(real), y_real), params)
                g_syn = torch.autograd.grad(F.cross_entropy(net(syn_c), y_syn), params, create_graph=True)
                loss = loss + match_distance(
                    g_syn, [g.detach() for g in g_real], distance=cfg.distance, match_1d=cfg.match_1d, eps=cfg.eps
                )
            # Only the images' gradient is needed; the net's is not computed.
            (syn.grad,) = torch.autograd.grad(loss, [syn])
            opt_img.step()
            total += loss.item()
            if ol == outer_loop - 1:
                break
            _train_on_synthetic(fast_net, opt_net, syn.detach().clone(), labels, inner_loop, cfg, generator)
        return total / (k * outer_loop)

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
        desc=cfg.method.upper(),
    )
    return SyntheticSet(
        images=syn.detach().cpu().clone(),
        labels=labels.cpu(),
        learning_rate=None,
        losses=tuple(losses),
        method=cfg.method,
        images_per_class=ipc,
        seed=seed,
        config=cfg,
    )


def _train_on_synthetic(
    net: nn.Module,
    opt: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    epochs: int,
    cfg: DCConfig,
    generator: torch.Generator,
) -> None:
    """Reference inner loop: ``epochs`` shuffled passes over the synthetic set (DSA if on)."""
    net.train()
    n = images.shape[0]
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator).to(images.device)
        for start in range(0, n, cfg.batch_train):
            idx = order[start : start + cfg.batch_train]
            x, y = images[idx], labels[idx]
            if cfg.augment:
                x = dsa(x, cfg.dsa_strategy, generator=generator, params=cfg.dsa_params, shared=False)
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
