"""Per-channel statistics and normalisation of image tensors.

The distillation code works on normalised images, ``(x - mean) / std`` per channel, with
the statistics of the *training* images (as the reference code does with its fixed
per-data-set constants). :func:`normalize_splits` does that for whole :class:`Dataset` splits.
"""

from __future__ import annotations

import dataclasses

import torch

from fairdd.data._container import Dataset

__all__ = ["channel_stats", "denormalize", "normalize", "normalize_splits"]


def _check_images(images: torch.Tensor) -> None:
    if images.ndim != 4:
        raise ValueError(f"images has shape {tuple(images.shape)}; expected (N, C, H, W)")
    if images.is_floating_point() and not bool(torch.isfinite(images).all()):
        bad = int((~torch.isfinite(images)).flatten(1).any(1).sum())
        raise ValueError(f"images hold NaN or inf values in {bad} of {images.shape[0]} image(s); clean or drop them first")


def channel_stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (population) standard deviation of each channel over N, H and W.

    Parameters
    ----------
    images : ``(N, C, H, W)`` float tensor.

    Returns
    -------
    mean, std : ``(C,)`` tensors of ``images.dtype``; the sum over images is accumulated in
        float64, so 60k images sum without round-off.
    """
    _check_images(images)
    n, c, h, w = images.shape
    if n * h * w == 0:
        raise ValueError(f"images of shape {tuple(images.shape)} is empty: no statistics of nothing")
    count = n * h * w
    # Per-image sums in the input dtype (H·W terms), then the N of them in float64: as
    # accurate as a float64 pass for image-sized data, without a float64 copy of the set.
    mean = images.sum(dim=(2, 3)).double().sum(dim=0) / count
    centred = images - mean.to(images.dtype).view(1, c, 1, 1)
    var = (centred * centred).sum(dim=(2, 3)).double().sum(dim=0) / count
    return mean.to(images.dtype), var.sqrt().to(images.dtype)


def _per_channel(values: torch.Tensor | tuple[float, ...] | list[float], images: torch.Tensor) -> torch.Tensor:
    v = torch.as_tensor(values, dtype=images.dtype, device=images.device).reshape(-1)
    if v.numel() != images.shape[1]:
        raise ValueError(f"got {v.numel()} per-channel values for {images.shape[1]} channels")
    if not bool(torch.isfinite(v).all()):
        raise ValueError(f"per-channel mean/std values {values!r} must be finite numbers")
    return v.view(1, -1, 1, 1)


def normalize(
    images: torch.Tensor,
    mean: torch.Tensor | tuple[float, ...] | list[float],
    std: torch.Tensor | tuple[float, ...] | list[float],
) -> torch.Tensor:
    """``(images - mean) / std`` per channel; ``images`` ``(N, C, H, W)``, mean/std ``(C,)``."""
    _check_images(images)
    s = _per_channel(std, images)
    if bool((s <= 0).any()):
        raise ValueError(f"std={std!r} must be > 0 in every channel")
    return (images - _per_channel(mean, images)) / s


def denormalize(
    images: torch.Tensor,
    mean: torch.Tensor | tuple[float, ...] | list[float],
    std: torch.Tensor | tuple[float, ...] | list[float],
) -> torch.Tensor:
    """Inverse of :func:`normalize`: ``images * std + mean`` per channel."""
    _check_images(images)
    return images * _per_channel(std, images) + _per_channel(mean, images)


def normalize_splits(
    *datasets: Dataset, stats: tuple[torch.Tensor, torch.Tensor] | None = None
) -> tuple[Dataset | tuple[torch.Tensor, torch.Tensor], ...]:
    """Normalise image splits with one per-channel statistic: by default the first split's.

    Parameters
    ----------
    *datasets : image :class:`Dataset` splits ``(N, C, H, W)``, the training split first
        (``normalize_splits(train, test)``).
    stats : ``(mean, std)`` to use instead of :func:`channel_stats` of ``datasets[0]`` (a fixed
        statistic of the data set, e.g. that of another colouring of the training images).

    Returns
    -------
    tuple
        ``(*normalised, (mean, std))``: each split with ``inputs`` replaced by
        :func:`normalize` ``(inputs, mean, std)`` (every other field kept), then the statistic,
        for :func:`denormalize`. ``train, test, (mean, std) = normalize_splits(train, test)``.
    """
    if not datasets:
        raise ValueError("normalize_splits needs at least one data set")
    mean, std = channel_stats(datasets[0].inputs) if stats is None else stats
    normalised = tuple(dataclasses.replace(d, inputs=normalize(d.inputs, mean, std)) for d in datasets)
    return (*normalised, (mean, std))
