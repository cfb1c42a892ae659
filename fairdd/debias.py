"""Debiasing used by Han et al. 2022 (BTEO, an adversarial discriminator) and its full-data baselines.

Their paper is "Towards Fair Supervised Dataset Distillation for Text Classification". Both come
from HanXudong/fairlib@909f952 as used by HanXudong/Fair_Dataset_Distillation@8332c08:

- **BTEO** ("balanced training for equal opportunity", fairlib ``BT="Resampling"``,
  ``BTObj="stratified_y"``): downsample the training split so that, within every class, each
  protected group has the same number of rows. fairlib keeps the class shares p(y) as they were:
  with ``r = min_(y,g) n_(y,g) / n_y`` every (y, g) cell keeps ``floor(r · n_y)`` rows.
  ``preserve_class_share=False`` is the plainer reading (each class downsampled to its own
  smallest group), which changes p(y) whenever the groups are unevenly skewed.
- **ADV**: a discriminator ``hidden → 256 → LeakyReLU → 256 → groups`` (the reference has no
  activation between its second and third layers; we keep that) reads the classifier's last
  hidden state and is trained to predict the protected group; the classifier (or, in DD, the
  distilled data) is pushed the other way by ``−λ · CE(D(h), g)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import nn
from torch.nn import functional as F

from fairdd.config import check_choice, check_int, check_number
from fairdd.data import Dataset
from fairdd.models import MLP, init_theta0
from fairdd.seeding import ADVERSARY, BALANCE, BATCHES, THETA0, VALIDATION, stream_generator

__all__ = [
    "DEBIAS",
    "Debias",
    "DebiasedMLPConfig",
    "Discriminator",
    "StandardConfig",
    "StandardResult",
    "balanced_indices",
    "group_counts",
    "train_standard",
]


def group_counts(labels: torch.Tensor, groups: torch.Tensor) -> dict[tuple[int, int], int]:
    """Rows per (class, group) cell, as ``{(y, g): n}`` over the cells that occur."""
    cells, counts = torch.unique(torch.stack([labels, groups], 1), dim=0, return_counts=True)
    return {(int(y), int(g)): int(n) for (y, g), n in zip(cells.tolist(), counts.tolist())}


def balanced_indices(
    labels: torch.Tensor,
    groups: torch.Tensor,
    *,
    generator: torch.Generator,
    preserve_class_share: bool = True,
) -> torch.Tensor:
    """BTEO downsampling: indices of a subset where each group has equal rows within each class.

    Parameters
    ----------
    labels, groups : ``(N,)`` int64 class labels and protected groups (training split only).
    generator : which rows of a cell are kept (a random subset, drawn from this generator).
    preserve_class_share : fairlib's ``stratified_y`` (True): cell size ``floor(r · n_y)`` with
        ``r = min_(y,g) n_(y,g) / n_y``, so p(y) is unchanged. False: ``min_g n_(y,g)`` per class.

    Returns
    -------
    ``(M,)`` int64 indices into the inputs, sorted (so the subset keeps the original order).

    Notes
    -----
    A class in which some group of ``groups`` has no rows would keep nothing; such a class is
    reported as a ``ValueError`` rather than silently dropped.
    """
    if labels.shape != groups.shape or labels.dim() != 1:
        raise ValueError(f"labels {tuple(labels.shape)} and groups {tuple(groups.shape)} must be equal 1-D shapes")
    labels, groups = labels.cpu(), groups.cpu()
    all_groups = torch.unique(groups).tolist()
    counts = group_counts(labels, groups)
    classes = torch.unique(labels).tolist()
    n_y = {y: int((labels == y).sum()) for y in classes}
    for y in classes:
        missing = [g for g in all_groups if (y, g) not in counts]
        if missing:
            raise ValueError(f"class {y} has no rows of group(s) {missing}; BTEO cannot balance it")
    ratio = min(counts[(y, g)] / n_y[y] for y in classes for g in all_groups)
    keep: list[torch.Tensor] = []
    for y in classes:
        per_cell = int(ratio * n_y[y]) if preserve_class_share else min(counts[(y, g)] for g in all_groups)
        for g in all_groups:
            cell = torch.nonzero((labels == y) & (groups == g)).squeeze(1)
            keep.append(cell[torch.randperm(cell.numel(), generator=generator)[:per_cell]])
    return torch.sort(torch.cat(keep)).values


class Discriminator(nn.Module):
    """The reference adversary: ``in → units → LeakyReLU → units → groups`` (logits).

    Parameters
    ----------
    in_features : width of the classifier's hidden state (300 for Han et al.'s MLP).
    num_groups : protected groups to predict.
    units : hidden width (reference ``--adv_units 256``).
    generator : seeds the weights (PyTorch's default Linear initialisation, drawn from it).
    """

    def __init__(self, in_features: int, num_groups: int, *, units: int = 256, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_features, units),
            nn.LeakyReLU(),
            nn.Linear(units, units),
            nn.Linear(units, num_groups),
        )
        if generator is not None:
            # Same distribution as nn.Linear.reset_parameters (kaiming_uniform a=√5, bias
            # U(±1/√fan_in)), drawn from an explicit generator so the run is reproducible.
            with torch.no_grad():
                for m in self.net:
                    if isinstance(m, nn.Linear):
                        bound = 1.0 / m.in_features**0.5
                        m.weight.uniform_(-bound, bound, generator=generator)
                        m.bias.uniform_(-bound, bound, generator=generator)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """(B, in_features) → (B, num_groups) logits."""
        return self.net(h)


Debias = Literal["none", "bteo", "adv"]
DEBIAS: tuple[str, ...] = get_args(Debias)


@dataclass(frozen=True)
class DebiasedMLPConfig:
    """What every config of Han et al.'s MLP holds: the network, the debiasing and the seed.

    :class:`StandardConfig` (full-data training) and
    :class:`~fairdd.distill.embedding.EmbeddingDDConfig` (distillation) inherit these fields and
    their checks. Each lists its own fields in a private base named after this one
    (``class StandardConfig(DebiasedMLPConfig, _StandardTraining)``): a dataclass collects fields
    from the last base to the first, so a config's own fields come first and these last, the
    order the configs had before the fields were shared. That order is the order of the config
    columns in a run's ``rows.csv`` (``records/cpu/embedding_dd``); run ids hash sorted JSON and
    do not depend on it.

    Attributes
    ----------
    hidden : widths of the MLP's tanh layers (reference (300, 300)).
    debias : ``"none"``, ``"bteo"`` (balanced real data) or ``"adv"`` (discriminator).
    adv_lambda, adv_units, adv_lr : ADV strength λ, discriminator width, its Adam lr
        (reference 0.8, 256, 1e-4: HanXudong/Fair_Dataset_Distillation@8332c08's MOJI scripts).
    preserve_class_share : BTEO as fairlib's ``stratified_y`` (True) or per-class minimum
        (False), see :func:`balanced_indices`.
    seed : seeds θ0, the batches, the BTEO subset and the discriminator (and what the config
        adds: DD's synthetic init, the baselines' validation split).
    """

    hidden: tuple[int, ...] = (300, 300)
    debias: Debias = "none"
    adv_lambda: float = 0.8
    adv_units: int = 256
    adv_lr: float = 1e-4
    preserve_class_share: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        own = getattr(super(), "__post_init__", None)
        if own is not None:  # the private base's checks of the config's own fields
            own()
        check_int("adv_units", self.adv_units, minimum=1)
        check_int("seed", self.seed, minimum=0)
        check_number("adv_lr", self.adv_lr, minimum=0.0, strict_minimum=True)
        check_number("adv_lambda", self.adv_lambda, minimum=0.0)
        if not self.hidden or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in self.hidden):
            raise ValueError(f"hidden={self.hidden!r} must be a non-empty tuple of integers >= 1")
        check_choice("debias", self.debias, DEBIAS)
        if not isinstance(self.preserve_class_share, bool):
            raise ValueError(f"preserve_class_share={self.preserve_class_share!r} must be a bool")


@dataclass(frozen=True)
class _StandardTraining:
    """:class:`StandardConfig`'s own fields (before the shared ones, see :class:`DebiasedMLPConfig`)."""

    epochs: int = 100
    patience: int | None = 5
    validation_fraction: float = 0.1
    batch_size: int = 1024
    lr: float = 3e-3

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            check_int(name, getattr(self, name), minimum=1)
        if self.patience is not None:
            check_int("patience", self.patience, minimum=1)
        check_number("validation_fraction", self.validation_fraction, minimum=0.0, maximum=1.0, strict_minimum=True)
        check_number("lr", self.lr, minimum=0.0, strict_minimum=True)


@dataclass(frozen=True)
class StandardConfig(DebiasedMLPConfig, _StandardTraining):
    """Full-data training of Han et al.'s MLP: STANDARD, STANDARD + BTEO, STANDARD + ADV.

    Defaults are fairlib's (HanXudong/fairlib@909f952 ``base_options.py``) for the classifier and
    the DD reference's for the adversary, as the paper uses one setting for both.

    Attributes
    ----------
    epochs : at most this many passes (fairlib 100).
    patience : stop after this many passes without a lower validation loss and keep the best
        parameters (fairlib ``epochs_since_improvement`` 5); None trains all ``epochs``.
    validation_fraction : share of the training split held out for early stopping (our data
        sets have no dev split); unused when ``patience`` is None.
    batch_size, lr : Adam minibatch and learning rate (fairlib 1024, 3e-3).
    hidden, debias, adv_lambda, adv_units, adv_lr, preserve_class_share, seed : the shared
        fields of :class:`DebiasedMLPConfig`; ``seed`` also draws the validation split (θ0 is
        the same θ0 as a DD run with this seed).
    """


@dataclass
class StandardResult:
    """A trained baseline: the model, its parameters, θ0, wall time and passes run."""

    model: nn.Module
    params: dict[str, torch.Tensor]
    theta0: dict[str, torch.Tensor]
    seconds: float
    epochs: int
    train_rows: int


def train_standard(
    train: Dataset, config: StandardConfig, *, device: torch.device | str = "cpu", num_groups: int | None = None
) -> StandardResult:
    """Train Han et al.'s MLP on the full training split (a STANDARD baseline), from θ0.

    BTEO trains on the balanced subset; ADV adds ``−λ · CE(D(h), g)`` to the loss with one
    discriminator step per minibatch (on the detached hidden state, before the classifier step),
    the same two-step update the DD variant uses.
    """
    if config.debias != "none" and train.attributes is None:
        raise ValueError(f"debias={config.debias!r} needs train.attributes; {train.name} has none")
    start = time.perf_counter()
    model = MLP(train.inputs.shape[1], train.num_classes, hidden=config.hidden).to(device)
    theta0 = init_theta0(model, stream_generator(config.seed, THETA0))
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(theta0[name])

    val = None
    if config.patience is not None:
        order = torch.randperm(len(train), generator=stream_generator(config.seed, VALIDATION))
        n_val = max(1, int(round(config.validation_fraction * len(train))))
        val, train = train.subset(order[:n_val].sort().values).to(device), train.subset(order[n_val:].sort().values)
    if config.debias == "bteo":
        train = train.subset(balanced_indices(
            train.labels, train.attributes, generator=stream_generator(config.seed, BALANCE),
            preserve_class_share=config.preserve_class_share,
        ))
    train = train.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    disc = disc_opt = None
    if config.debias == "adv":
        groups = num_groups if num_groups is not None else int(train.attributes.max()) + 1
        disc = Discriminator(config.hidden[-1], groups, units=config.adv_units, generator=stream_generator(config.seed, ADVERSARY)).to(device)
        disc_opt = torch.optim.Adam(disc.parameters(), lr=config.adv_lr)

    batches = stream_generator(config.seed, BATCHES)
    best, best_loss, since, epochs = None, float("inf"), 0, 0
    for epochs in range(1, config.epochs + 1):
        model.train()
        for idx in torch.randperm(len(train), generator=batches).to(device).split(config.batch_size):
            h = model.hidden(train.inputs[idx])
            loss = F.cross_entropy(model.classifier(h), train.labels[idx])
            if disc is not None:
                disc_opt.zero_grad(set_to_none=True)
                F.cross_entropy(disc(h.detach()), train.attributes[idx]).backward()
                disc_opt.step()
                loss = loss - config.adv_lambda * F.cross_entropy(disc(h), train.attributes[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward(inputs=list(model.parameters()))
            optimizer.step()
        if val is None:
            continue
        with torch.no_grad():
            val_loss = float(F.cross_entropy(model(val.inputs), val.labels))
        if val_loss < best_loss:
            best_loss, since = val_loss, 0
            best = {k: v.detach().clone() for k, v in model.named_parameters()}
        else:
            since += 1
            if since >= config.patience:
                break
    params = best if best is not None else {k: v.detach().clone() for k, v in model.named_parameters()}
    return StandardResult(model.eval(), params, theta0, time.perf_counter() - start, epochs, len(train))
