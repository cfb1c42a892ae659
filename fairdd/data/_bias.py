"""Biased data sets with Lu et al.'s semantics: colour (CMNIST-DD) and corruption (CCIFAR10-DD).

Lu et al. 2024, "Exploring the Impact of Dataset Bias on Dataset Distillation"
(``yaolu-zjut/Biased-DD@34f4231``), give every image a *bias attribute*
``a`` in 0–9 beside its label ``y``. The **bias ratio** ``r`` is the fraction of each class
whose attribute equals its label ("bias-aligned"); the other ``1 - r`` are spread evenly over
the 9 other attributes ("bias-conflicting"). So ``r = 0.1`` is unbiased (attributes uniform
and independent of the label), ``r = 0`` has no aligned sample at all, and ``r = 1`` makes the
attribute a perfect shortcut. The paper's training ratios are 0, 0.1, 0.5, 0.8, 0.95, 1.0;
its test sets are built with ``r = 0``.

Counts are exact and as in the reference: for a class of ``n`` images the attribute
boundaries are ``round(n · cumsum(p))`` with ``p = r`` on the label and ``(1 - r) / 9``
elsewhere (numpy's round-half-to-even in float64). Which images get which attribute is a
seeded random permutation within the class (the reference used file order).

* :func:`colorize`: the digit (foreground) takes colour ``c[a]`` plus one Gaussian jitter
  per image and channel, ``clip(c[a] + N(0, σ²), 0, 1) · intensity``; the background stays
  black. σ by severity 1–5: 0.05, 0.02, 0.01, 0.005, 0.002 (the paper sweeps 1–4).
* :func:`corrupt`: attribute ``a`` -> CIFAR-10-C corruption ``CORRUPTIONS[a]`` (Snow, Frost,
  Fog, Brightness, Contrast, Spatter, Elastic, JPEG, Pixelate, Saturate) at one severity
  1–5 of the CIFAR-10-C tables; the paper's severities 1–4 are CIFAR-10-C levels 2–5. See
  :mod:`fairdd.data._corruptions` for how faithful each corruption is (Frost crops
  CIFAR-10-C's own frost photographs, which ``python -m fairdd.fetch`` takes from the PyPI
  wheel ``imagecorruptions-imaug``; water Spatter is approximated).

Every random draw comes from ``torch.Generator().manual_seed(seed)`` on the CPU, in a fixed
order (attribute permutations class by class, then the image draws attribute by
attribute), so a call is deterministic and gives the same images on every device.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from fairdd import seeding
from fairdd.config import check_choice, check_int, check_number
from fairdd.data._container import Dataset
from fairdd.data._corruptions import CORRUPTIONS, apply_named_corruption

__all__ = [
    "BIAS_RATIOS",
    "COLOUR_NAMES",
    "COLOUR_STD",
    "COLOURS",
    "CORRUPTIONS",
    "apply_colour",
    "apply_corruption",
    "assign_attributes",
    "bias_aligned",
    "colorize",
    "corrupt",
    "make_biased",
]

BIAS_RATIOS = (0.0, 0.1, 0.5, 0.8, 0.95, 1.0)  # Lu et al.'s training ratios

# RGB foreground colour of each attribute: Lu et al.'s colors.th (yaolu-zjut/Biased-DD@34f4231).
COLOURS = torch.tensor(
    [
        [0.984, 0.313, 0.169],
        [0.991, 0.916, 0.352],
        [0.673, 0.461, 0.580],
        [0.783, 0.832, 0.601],
        [0.088, 0.778, 0.982],
        [0.321, 0.961, 0.446],
        [0.025, 0.236, 0.759],
        [0.555, 0.102, 0.762],
        [0.208, 0.393, 0.019],
        [0.834, 0.202, 0.267],
    ]
)
COLOUR_NAMES = ("vermilion", "yellow", "mauve", "sage", "sky blue", "green", "blue", "purple", "olive", "crimson")
COLOUR_STD = {1: 0.05, 2: 0.02, 3: 0.01, 4: 0.005, 5: 0.002}  # jitter σ by severity
N_ATTRIBUTES = 10


def _check_labels(labels: torch.Tensor, n: int | None = None) -> torch.Tensor:
    labels = torch.as_tensor(labels)
    if labels.ndim != 1 or labels.dtype in (torch.float16, torch.float32, torch.float64, torch.bool):
        raise ValueError(f"labels must be a 1-d integer tensor; got shape {tuple(labels.shape)}, {labels.dtype}")
    if n is not None and labels.numel() != n:
        raise ValueError(f"labels has {labels.numel()} entries for {n} images")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= N_ATTRIBUTES):
        raise ValueError(f"labels must lie in [0, {N_ATTRIBUTES - 1}] (one attribute per class)")
    return labels.long()


def _check_images(images: torch.Tensor) -> None:
    if not torch.is_floating_point(images):
        raise ValueError(f"images must be a float tensor in [0, 1]; got {images.dtype}")
    if not bool(torch.isfinite(images).all()):
        bad = int((~torch.isfinite(images)).flatten(1).any(1).sum()) if images.ndim > 1 else "some"
        raise ValueError(f"images hold NaN or inf values ({bad} image(s)); they must lie in [0, 1]")
    if images.numel() and (float(images.min()) < 0 or float(images.max()) > 1):
        raise ValueError("images must lie in [0, 1]")


def assign_attributes(labels: torch.Tensor, *, bias_ratio: float, seed: int = 0) -> torch.Tensor:
    """Bias attributes ``(N,)`` with exactly Lu et al.'s per-class counts (module docstring).

    Parameters
    ----------
    labels : ``(N,)`` int class indices in [0, 9].
    bias_ratio : fraction of each class whose attribute equals its label, in [0, 1].
    seed : seeds the permutation that decides which images of a class get which attribute.
    """
    return _assign(_check_labels(labels), bias_ratio, seeding.generator(seed))



def _assign(labels: torch.Tensor, bias_ratio: float, generator: torch.Generator) -> torch.Tensor:
    check_number("bias_ratio", bias_ratio, minimum=0.0, maximum=1.0)
    bias_ratio = float(bias_ratio)  # a numpy number computes as the Python float it equals
    k = N_ATTRIBUTES
    eye = np.eye(k)
    ratios = bias_ratio * eye + (1 - bias_ratio) / (k - 1) * (1 - eye)  # (class, attribute)
    labels_cpu = labels.cpu()
    attributes = torch.empty_like(labels_cpu)
    for c in range(k):
        members = (labels_cpu == c).nonzero().view(-1)
        milestones = np.round(members.numel() * np.cumsum(ratios[c])).astype(np.int64)  # (k,)
        counts = np.diff(np.concatenate([[0], milestones]))
        block = torch.repeat_interleave(torch.arange(k), torch.from_numpy(counts))
        order = torch.randperm(members.numel(), generator=generator)
        attributes[members[order]] = block
    return attributes.to(labels.device)


def bias_aligned(labels: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
    """Boolean mask ``(N,)``: True where the bias attribute equals the label."""
    labels, attributes = torch.as_tensor(labels), torch.as_tensor(attributes)
    if labels.shape != attributes.shape:
        raise ValueError(f"labels {tuple(labels.shape)} and attributes {tuple(attributes.shape)} differ in shape")
    return labels == attributes


def _grey(images: torch.Tensor) -> torch.Tensor:
    """Single-channel intensity ``(N, 1, H, W)`` from ``(N, H, W)`` or ``(N, 1, H, W)``."""
    if images.ndim == 3:
        images = images.unsqueeze(1)
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"images has shape {tuple(images.shape)}; expected grey (N, H, W) or (N, 1, H, W)")
    return images


def _colour(images: torch.Tensor, attributes: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    jitter = torch.randn(images.shape[0], 3, generator=generator) * COLOUR_STD[severity]
    colour = (COLOURS[attributes.cpu()] + jitter).clamp(0, 1)  # (N, 3), one draw per image
    return colour.to(images.device, images.dtype).view(-1, 3, 1, 1) * images


def apply_colour(images: torch.Tensor, attributes: torch.Tensor, *, severity: int, seed: int = 0) -> torch.Tensor:
    """Colour each grey digit with ``COLOURS[attribute]`` + jitter; ``(N, 3, H, W)`` in [0, 1]."""
    check_choice("severity", severity, tuple(COLOUR_STD))
    images = _grey(images)
    _check_images(images)
    attributes = _check_labels(attributes, images.shape[0])
    return _colour(images, attributes, severity, seeding.generator(seed))


def colorize(
    images: torch.Tensor, labels: torch.Tensor, *, bias_ratio: float, severity: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Colour-biased digits (CMNIST-DD).

    Parameters
    ----------
    images : grey ``(N, 1, H, W)`` or ``(N, H, W)`` in [0, 1] (digit bright, background 0).
    labels : ``(N,)`` int class indices in [0, 9].
    bias_ratio : in [0, 1]; see the module docstring.
    severity : 1–5, the colour jitter σ = 0.05, 0.02, 0.01, 0.005, 0.002.
    seed : seeds the attribute permutation and then the jitter.

    Returns
    -------
    images : ``(N, 3, H, W)`` float in [0, 1].
    attributes : ``(N,)`` int64 colour indices into :data:`COLOURS`.
    """
    check_choice("severity", severity, tuple(COLOUR_STD))
    images = _grey(images)
    _check_images(images)
    labels = _check_labels(labels, images.shape[0])
    generator = seeding.generator(seed)
    attributes = _assign(labels, bias_ratio, generator)
    return _colour(images, attributes, severity, generator), attributes


def _three_channels(images: torch.Tensor) -> torch.Tensor:
    if images.ndim == 3:
        images = images.unsqueeze(1)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images has shape {tuple(images.shape)}; expected (N, 1 or 3, H, W) or (N, H, W)")
    if images.shape[-1] < 8 or images.shape[-2] < 8:
        raise ValueError(f"images of {tuple(images.shape[-2:])} pixels are too small to corrupt (need >= 8×8)")
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def _corrupt(images: torch.Tensor, attributes: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    out = torch.empty_like(images)
    for a, name in enumerate(CORRUPTIONS):
        rows = (attributes == a).nonzero().view(-1).to(images.device)
        if rows.numel():
            out[rows] = apply_named_corruption(images[rows], name, severity, generator)
    return out


def apply_corruption(images: torch.Tensor, attributes: torch.Tensor, *, severity: int, seed: int = 0) -> torch.Tensor:
    """Corrupt each image with ``CORRUPTIONS[attribute]``; ``(N, 3, H, W)`` in [0, 1]."""
    check_int("severity", severity, minimum=1, maximum=5)
    images = _three_channels(images)
    _check_images(images)
    attributes = _check_labels(attributes, images.shape[0])
    return _corrupt(images, attributes.to(images.device), severity, seeding.generator(seed))


def corrupt(
    images: torch.Tensor, labels: torch.Tensor, *, bias_ratio: float, severity: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Corruption-biased images (CCIFAR10-DD).

    Parameters
    ----------
    images : ``(N, 3, H, W)`` colour or ``(N, 1, H, W)`` / ``(N, H, W)`` grey (replicated to
        three channels), in [0, 1], at least 8×8 and, for Frost's crops, at most 62×104.
    labels : ``(N,)`` int class indices in [0, 9].
    bias_ratio : in [0, 1]; see the module docstring.
    severity : CIFAR-10-C level 1–5 (the paper's 1–4 are levels 2–5).
    seed : seeds the attribute permutation and then every corruption's random draws.

    Returns
    -------
    images : ``(N, 3, H, W)`` float in [0, 1].
    attributes : ``(N,)`` int64 indices into :data:`CORRUPTIONS`.
    """
    check_int("severity", severity, minimum=1, maximum=5)
    images = _three_channels(images)
    _check_images(images)
    labels = _check_labels(labels, images.shape[0])
    generator = seeding.generator(seed)
    attributes = _assign(labels, bias_ratio, generator)
    return _corrupt(images, attributes.to(images.device), severity, generator), attributes


def make_biased(
    dataset: Dataset,
    *,
    kind: Literal["colour", "corruption"],
    bias_ratio: float,
    severity: int,
    seed: int = 0,
) -> Dataset:
    """A biased copy of an image :class:`Dataset` with the bias attribute filled in.

    ``kind="colour"`` needs grey images (MNIST, Fashion-MNIST); ``"corruption"`` takes grey
    or colour images. The name becomes ``"<name>-colour"`` or ``"<name>-corruption"``.
    Build the test split with ``bias_ratio=0`` (every image bias-conflicting), as Lu et al. do.
    """
    check_choice("kind", kind, ("colour", "corruption"))
    fn = colorize if kind == "colour" else corrupt
    images, attributes = fn(dataset.inputs, dataset.labels, bias_ratio=bias_ratio, severity=severity, seed=seed)
    return Dataset(
        name=f"{dataset.name}-{kind}",
        split=dataset.split,
        inputs=images,
        labels=dataset.labels,
        classes=dataset.classes,
        attributes=attributes,
        attribute_name=kind,
        attribute_values=COLOUR_NAMES if kind == "colour" else CORRUPTIONS,
    )
