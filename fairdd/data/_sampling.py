"""How rows are drawn from a data set: the one class-stratified draw, and the real-image sampler
of distillation and KD.

:func:`stratified_index` is the package's one class-stratified random draw (a study's training
and test subsets, :func:`fairdd.data.stratified_subset`, and the random baseline
:func:`fairdd.evaluate.random_subset`).
:class:`RealSampler` draws real training rows per class, uniformly (the reference
``get_images`` of Zhao et al.'s DC/DSA/DM code), balanced over the protected-attribute groups
of each class, or by caller-given per-sample weights. It sits in ``fairdd.data`` so that
dataset distillation (:mod:`fairdd.distill`) and knowledge distillation (:mod:`fairdd.kd`) both
use it without one importing the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from fairdd.config import check_choice, check_int
from fairdd.data._container import Dataset
from fairdd.seeding import generator as seeded_generator

__all__ = ["REAL_SAMPLINGS", "RealSampler", "RealSampling", "stratified_index", "stratified_subset"]

RealSampling = Literal["uniform", "group_balanced"]
REAL_SAMPLINGS: tuple[str, ...] = ("uniform", "group_balanced")


def stratified_index(
    labels: torch.Tensor, per_class: int, seed: int, *, keep_order: bool, classes: Sequence[int] | None = None
) -> torch.Tensor:
    """Row indices of a class-stratified random draw of ``per_class`` rows per class.

    One generator, :func:`fairdd.seeding.generator` of ``seed``; per class, in class order, the
    first ``per_class`` entries of a ``torch.randperm`` of the class's rows (taken in row order)
    — all of the class's rows when it has fewer (a caller that needs ``per_class`` of every
    class checks the class sizes first, as :func:`fairdd.evaluate.random_subset` does).

    Parameters
    ----------
    labels : ``(N,)`` int64 class labels (any device).
    per_class : rows drawn per class, ``>= 1``.
    seed : the draw's seed, an int in ``[0, 2**63 - 1]``.
    keep_order : ``True``: the drawn rows sorted, i.e. in the data set's row order
        (:func:`fairdd.data.stratified_subset`); ``False``: class by class, each class's rows
        in draw order (:func:`fairdd.evaluate.random_subset`, :func:`fairdd.plots.sample_grid`).
    classes : the classes drawn, in this order (distinct); default every class ``0 .. max label``.

    Returns
    -------
    ``(M,)`` int64 row indices on the CPU.
    """
    check_int("per_class", per_class, minimum=1)
    labels = labels.detach().cpu()
    if classes is None:
        classes = range(int(labels.max()) + 1 if labels.numel() else 0)
    elif len(set(classes)) != len(classes):
        raise ValueError(f"classes={list(classes)!r} must be distinct")
    generator = seeded_generator(seed)
    picks = [torch.empty(0, dtype=torch.long)]
    for c in classes:
        rows = (labels == c).nonzero().flatten()
        picks.append(rows[torch.randperm(rows.numel(), generator=generator)[:per_class]])
    index = torch.cat(picks)
    return index.sort().values if keep_order else index


def stratified_subset(dataset: Dataset, per_class: int | None, seed: int) -> Dataset:
    """A class-stratified random subset that keeps the data set's row order.

    The rows of :func:`fairdd.data.stratified_index` (``keep_order=True``): per class, the first
    ``per_class`` rows of a ``torch.randperm`` of the class's rows from the generator of
    ``seed`` — all of a class's rows when it has fewer — in their original order.
    ``per_class=None`` returns ``dataset`` itself.

    :func:`fairdd.evaluate.random_subset` draws the same rows but returns them class by class
    in draw order (and raises for a short class); the order matters here, since
    :func:`fairdd.data.make_biased` assigns attributes by a permutation of each class's rows
    in row order.
    """
    if per_class is None:
        return dataset
    return dataset.subset(stratified_index(dataset.labels, per_class, seed, keep_order=True).to(dataset.labels.device))


class RealSampler:
    """Draws real training images per class with an explicit generator.

    The class index lists are computed once; every draw is a handful of tensor ops per class
    (no per-sample Python).

    Parameters
    ----------
    labels : ``(N,)`` int64 class labels.
    num_classes : number of classes; every class must have at least one image.
    mode : ``"uniform"`` — per class, ``n`` images without replacement (all of them if the
        class has fewer), as the reference ``get_images``.
        ``"group_balanced"`` — per class, each protected-attribute group present in that class
        gets an equal share of the ``n`` draws (the remainder ``n mod G`` goes to randomly
        chosen groups); a group's share is drawn without replacement, and where the group has
        fewer images than its share the deficit is drawn with replacement (duplicates act as
        up-weighting). The image-data analogue of BTEO (balanced training by equal
        opportunity: per class, the same count from every group). Needs ``attributes``.
    attributes : ``(N,)`` int64 protected attribute; required by ``"group_balanced"``.
    weights : ``(N,)`` non-negative per-sample weights; overrides ``mode``. Per class, ``n``
        images are drawn without replacement with probability proportional to the weight
        (``torch.multinomial``); zero weight excludes an image (restriction), and a class draws
        at most as many images as it has positive weights. Every class needs one positive
        weight.
    """

    def __init__(
        self,
        labels: torch.Tensor,
        num_classes: int,
        *,
        mode: RealSampling = "uniform",
        attributes: torch.Tensor | None = None,
        weights: torch.Tensor | None = None,
    ) -> None:
        check_choice("real_sampling", mode, REAL_SAMPLINGS)
        labels = labels.detach().cpu().long()
        counts = torch.bincount(labels, minlength=num_classes)
        if counts.numel() > num_classes:
            raise ValueError(f"labels hold class {int(labels.max())}, but num_classes={num_classes}")
        empty = (counts == 0).nonzero().flatten().tolist()
        if empty:
            raise ValueError(f"classes {empty} have no training images; every class needs at least one")
        order = torch.argsort(labels, stable=True)
        self.num_classes = num_classes
        self.mode = mode if weights is None else "weighted"
        self.by_class: list[torch.Tensor] = list(torch.split(order, counts.tolist()))
        self._weights: list[torch.Tensor] | None = None
        self._groups: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] | None = None
        if weights is not None:
            weights = weights.detach().cpu().double()
            if weights.shape != labels.shape:
                raise ValueError(f"sample_weights has shape {tuple(weights.shape)}; expected {tuple(labels.shape)}")
            if not torch.isfinite(weights).all() or (weights < 0).any():
                raise ValueError("sample_weights must be finite and >= 0")
            self._weights = [weights[idx] for idx in self.by_class]
            zero = [c for c, w in enumerate(self._weights) if not (w > 0).any()]
            if zero:
                raise ValueError(f"sample_weights gives classes {zero} no positive weight")
        elif mode == "group_balanced":
            if attributes is None:
                raise ValueError("real_sampling='group_balanced' needs a data set with attributes; this one has none")
            attributes = attributes.detach().cpu().long()
            self._groups = []
            for idx in self.by_class:
                # Sort the class's indices by group so each group is a contiguous run.
                a = attributes[idx]
                g_order = torch.argsort(a, stable=True)
                _, gid, gcount = torch.unique(a[g_order], return_inverse=True, return_counts=True)
                starts = torch.cumsum(gcount, 0) - gcount
                self._groups.append((idx[g_order], gid, starts, gcount))

    def class_size(self, c: int) -> int:
        """How many images of class ``c`` can be drawn without replacement."""
        if self._weights is not None:
            return int((self._weights[c] > 0).sum())
        return int(self.by_class[c].numel())

    def sample(self, c: int, n: int, generator: torch.Generator) -> torch.Tensor:
        """Indices (into the data set) of ``n`` real images of class ``c``, shape ``(m,)``."""
        idx = self.by_class[c]
        if self._weights is not None:
            w = self._weights[c]
            m = min(n, int((w > 0).sum()))
            return idx[torch.multinomial(w, m, replacement=False, generator=generator)]
        if self._groups is not None:
            return self._sample_balanced(c, n, generator)
        return idx[torch.randperm(idx.numel(), generator=generator)[:n]]

    def _sample_balanced(self, c: int, n: int, generator: torch.Generator) -> torch.Tensor:
        idx, gid, starts, gcount = self._groups[c]  # type: ignore[index]
        n_groups = gcount.numel()
        share = torch.full((n_groups,), n // n_groups, dtype=torch.long)
        share[torch.randperm(n_groups, generator=generator)[: n % n_groups]] += 1
        take = torch.minimum(share, gcount)
        # Random order inside each group: sort by (group, uniform key); the position of an
        # element within its group's run is then its random rank.
        keys = gid.double() + torch.rand(idx.numel(), generator=generator, dtype=torch.float64)
        perm = torch.argsort(keys)
        rank = torch.arange(idx.numel()) - starts[gid]
        chosen = perm[rank < take[gid]]
        deficit = share - take
        if deficit.any():
            g = torch.repeat_interleave(torch.arange(n_groups), deficit)
            extra = starts[g] + (torch.rand(g.numel(), generator=generator, dtype=torch.float64) * gcount[g]).long()
            chosen = torch.cat([chosen, extra])
        return idx[chosen]
