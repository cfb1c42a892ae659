r"""Synchronized matching (FairDD; Zhou et al., "FairDD: Fair Dataset Distillation via
Synchronized Matching", reference zqhang/FairDD@37eef67 ``main_DM.py``, ``main_DC.py``).

Plain DM and DC match each class's synthetic images to *one* target computed from a real batch
of that class: its mean embedding (DM) or its loss gradient (DC). When a protected (or bias)
attribute is unevenly spread within a class, that target is dominated by the majority group.
FairDD splits the real batch of class c by attribute group and matches the synthetic images to
*every* group's target at once, with equal weight:

.. math:: \mathcal L_c^{\text{DM}} = \sum_{g \in G_c} \bigl\lVert \mu_{c,g} - s_c \bigr\rVert^2,
          \qquad
          \mathcal L_c^{\text{DC}} = \sum_{g \in G_c} D\bigl(\nabla_\theta \ell(S_c),\,
          \nabla_\theta \ell(T_{c,g})\bigr),

with :math:`G_c` the groups present in the class's real batch, :math:`\mu_{c,g}` the mean
embedding of the batch's images of group g, :math:`s_c` the mean embedding of the synthetic
images of class c, and D the layer-wise cosine distance of DC. The reference sums over groups
(no :math:`1/|G_c|`), and so do we.

**When synchronized matching and group-balanced sampling coincide (DM).** Write
:math:`\bar\mu_c = \frac{1}{|G_c|}\sum_g \mu_{c,g}`, the unweighted mean of the group means.
Expanding the square around it (the cross terms sum to zero),

.. math:: \sum_{g} \lVert \mu_{c,g} - s_c \rVert^2
          = |G_c|\,\lVert \bar\mu_c - s_c \rVert^2 + \sum_g \lVert \mu_{c,g} - \bar\mu_c \rVert^2 ,

and the second term does not depend on the synthetic images. So DM's synchronized loss has
the gradient of :math:`|G_c|` times plain DM's loss against :math:`\bar\mu_c`. Group-balanced
sampling (:class:`fairdd.data.RealSampler`, ``"group_balanced"``) draws the same number of
images from every group, so its batch mean *is* :math:`\bar\mu_c`. Hence on the same
group-balanced batch, synchronized DM's gradient is exactly :math:`|G_c|` times plain DM's:
with every class holding the same :math:`|G|` groups and ``lr_img`` divided by :math:`|G|`,
the two give the same synthetic images (SGD with momentum is linear in the gradients).

**With uniform batches (FairDD's own setting) they do not agree even in expectation** once a
group can be absent from a batch. The gradient of the class's loss in :math:`s_c` is
:math:`2\sum_{g \in G_c} (s_c - \mu_{c,g})`: a group absent from the batch drops out of the sum.
Drawing b of the class's N images uniformly without replacement, group g (of :math:`n_g`
images) is present with probability :math:`p_g = 1 - \binom{N - n_g}{b} / \binom{N}{b}`
(hypergeometric), and given that it is present its batch mean :math:`\mu_{c,g}` is an unbiased
estimate of its mean :math:`m_g` over the class (exchangeability). Hence

.. math:: \mathbb E\bigl[\nabla_{s_c} \mathcal L_c\bigr] = 2 \sum_g p_g (s_c - m_g)
          = 2 P \Bigl(s_c - \sum_g \tfrac{p_g}{P} m_g\Bigr), \qquad P = \sum_g p_g
          = \mathbb E\,|G_c| :

in expectation FairDD pulls towards the group means weighted by :math:`p_g / P` (not
:math:`1/|G|`: a group present in every batch outweighs one present in a third of them) with
an effective step P times plain DM's (not :math:`|G|`). Plain DM's expected target weights
the groups by their share :math:`n_g / N`; group-balanced sampling by :math:`1/|G|`.
:func:`expected_targets` computes :math:`p_g`, the weights and P exactly (tested against a
Monte Carlo simulation of :class:`fairdd.data.RealSampler`'s draws and of the loss's gradient).

**When they differ (DC).** D is not linear in the real gradient (a cosine per row), so
:math:`\sum_g D(\nabla_S, \nabla_g) \ne |G|\, D(\nabla_S, \frac{1}{|G|}\sum_g \nabla_g)` in
general, even on a balanced batch: synchronized DC pulls the synthetic gradient towards every
group's direction, group-balanced DC towards the direction of their average.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from fairdd.config import check_choice
from fairdd.data import Dataset

__all__ = [
    "MATCHINGS",
    "SynchronizedExpectation",
    "expected_targets",
    "check_matching",
    "check_matching_data",
    "group_index",
    "synchronized_gradient_loss",
    "synchronized_mean_loss",
]

#: ``"class"``: one target per class (DM, DC as published); ``"synchronized"``: one per
#: attribute group within the class, summed (FairDD).
MATCHINGS: tuple[str, ...] = ("class", "synchronized")


def check_matching(matching: str) -> None:
    check_choice("matching", matching, MATCHINGS)


def check_matching_data(matching: str, train: Dataset) -> None:
    """``"synchronized"`` needs the training set's protected attribute; raise before any work."""
    if matching == "synchronized" and train.attributes is None:
        raise ValueError(
            f"matching='synchronized' needs a training set with attributes (groups to match); "
            f"{train.name!r} has none. Use matching='class', or a data set with a protected or bias attribute"
        )


def group_index(groups: torch.Tensor) -> tuple[torch.Tensor, int]:
    """``(inverse, G)``: each sample's group as 0..G−1 over the groups present, and G."""
    present, inverse = torch.unique(groups, return_inverse=True)
    return inverse, int(present.numel())


def synchronized_mean_loss(real_embedded: torch.Tensor, groups: torch.Tensor, syn_mean: torch.Tensor) -> torch.Tensor:
    r"""FairDD's DM loss of one class: :math:`\sum_g \lVert \mu_g - s \rVert^2` over the groups present.

    Parameters
    ----------
    real_embedded : ``(n, D)`` embeddings of the class's real batch.
    groups : ``(n,)`` their attribute values.
    syn_mean : ``(D,)`` mean embedding of the class's synthetic images.
    """
    if real_embedded.shape[0] != groups.shape[0]:
        raise ValueError(f"{real_embedded.shape[0]} embeddings but {groups.shape[0]} group values")
    inverse, g = group_index(groups.to(real_embedded.device))
    sums = real_embedded.new_zeros(g, real_embedded.shape[1]).index_add_(0, inverse, real_embedded)
    counts = torch.bincount(inverse, minlength=g).to(real_embedded.dtype)
    means = sums / counts[:, None]
    return ((means - syn_mean) ** 2).sum()


def synchronized_gradient_loss(
    per_group_gradients: Callable[[torch.Tensor], Sequence[torch.Tensor]],
    groups: torch.Tensor,
    syn_gradients: Sequence[torch.Tensor],
    distance: Callable[[Sequence[torch.Tensor], Sequence[torch.Tensor]], torch.Tensor],
) -> torch.Tensor:
    r"""FairDD's DC loss of one class: :math:`\sum_g D(\nabla_S, \nabla_g)` over the groups present.

    ``per_group_gradients(mask)`` returns the (detached) real gradient of the batch's images
    selected by the boolean ``mask``; ``distance(syn, real)`` is DC's matching distance.
    """
    inverse, g = group_index(groups)
    total = syn_gradients[0].new_zeros(())
    for k in range(g):
        total = total + distance(syn_gradients, per_group_gradients(inverse == k))
    return total


@dataclass(frozen=True)
class SynchronizedExpectation:
    """What synchronized matching pulls towards in expectation, per class (rows) and group (columns).

    ``presence[c, g]``: probability that group g appears in a uniform batch of class c;
    ``weights[c, g]``: the weight of group g's mean in FairDD's expected target
    (``presence / presence.sum(1)``); ``step[c]``: FairDD's expected gradient as a multiple of
    plain DM's (``presence.sum(1)``, the expected number of groups in the batch);
    ``share[c, g]``: the group's share of the class, plain DM's expected target weights;
    ``balanced[c, g]``: group-balanced sampling's (``1 / groups`` over the groups the class holds).
    """

    presence: np.ndarray
    weights: np.ndarray
    step: np.ndarray
    share: np.ndarray
    balanced: np.ndarray


def _absent_probability(total: int, size: int, batch: int) -> float:
    """``C(total - size, batch) / C(total, batch)``: no image of a ``size``-image group in a
    uniform draw of ``batch`` of ``total`` images without replacement (exact integers)."""
    if size == 0:
        return 1.0
    if batch > total - size:
        return 0.0
    return math.comb(total - size, batch) / math.comb(total, batch)


def expected_targets(group_sizes: np.ndarray | Sequence[Sequence[int]], batch: int) -> SynchronizedExpectation:
    r"""FairDD's expected target and step under uniform real batches (see the module notes).

    Parameters
    ----------
    group_sizes : ``(K, G)`` non-negative integers: the training images of class c in group g.
    batch : real images drawn per class and iteration (DM's ``batch_real``), uniformly without
        replacement; a class with fewer images gives all of them (as :class:`fairdd.data.RealSampler`).

    The presence probability is exact (:math:`1 - \binom{N - n_g}{b} / \binom{N}{b}`, integer
    binomial coefficients); groups a class lacks get presence, weight and balanced weight 0.
    """
    sizes = np.asarray(group_sizes)
    if sizes.ndim != 2 or sizes.size == 0 or not np.issubdtype(sizes.dtype, np.integer) or (sizes < 0).any():
        raise ValueError(f"group_sizes must be a (classes, groups) array of non-negative integers, got "
                         f"shape {sizes.shape} and dtype {sizes.dtype}")
    empty = np.flatnonzero(sizes.sum(1) == 0).tolist()
    if empty:
        raise ValueError(f"classes {empty} have no images in group_sizes; every class needs at least one")
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise ValueError(f"batch={batch!r} must be a positive integer (real images per class and iteration)")
    presence = np.array([[1.0 - _absent_probability(int(row.sum()), int(n), batch) for n in row] for row in sizes])
    step = presence.sum(1)
    holds = sizes > 0
    return SynchronizedExpectation(
        presence=presence,
        weights=presence / step[:, None],
        step=step,
        share=sizes / sizes.sum(1, keepdims=True),
        balanced=holds / holds.sum(1, keepdims=True),
    )
