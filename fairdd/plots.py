"""Figures and small tables for the notebooks, so that no notebook defines a function.

Everything here reads a :class:`fairdd.data.Dataset` (or plain tensors) and returns a
matplotlib ``Figure``/``Axes``, an image tensor or a pandas ``DataFrame``; nothing writes files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from fairdd.config import check_int
from fairdd.data import Dataset, stratified_index

__all__ = ["attribute_table", "image_grid", "sample_grid", "show_grids", "show_image_grid", "show_samples"]


def image_grid(images: torch.Tensor, nrow: int, *, padding: int = 1, pad_value: float = 1.0) -> torch.Tensor:
    """Tile ``(N, C, H, W)`` images in [0, 1] into one ``(3, H', W')`` image, ``nrow`` per row.

    Grey images are repeated to three channels; ``padding`` pixels of ``pad_value``
    separate the tiles and frame the grid (as torchvision's ``make_grid``, without
    importing torchvision, which takes seconds).
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images has shape {tuple(images.shape)}; expected (N, 1 or 3, H, W)")
    check_int("nrow", nrow, minimum=1)
    check_int("padding", padding, minimum=0)
    x = images.detach().float().cpu().clamp(0, 1).expand(-1, 3, -1, -1)
    n, _, h, w = x.shape
    ncol = min(nrow, max(n, 1))
    nrows = -(-n // ncol)
    tiles = torch.full((nrows * ncol, 3, h + padding, w + padding), float(pad_value))
    tiles[:n, :, padding:, padding:] = x  # each tile carries its top and left padding
    grid = tiles.view(nrows, ncol, 3, h + padding, w + padding).permute(2, 0, 3, 1, 4)
    grid = grid.reshape(3, nrows * (h + padding), ncol * (w + padding))
    return torch.nn.functional.pad(grid, (0, padding, 0, padding), value=float(pad_value))


def sample_grid(
    dataset: Dataset, *, per_class: int = 8, seed: int = 0, classes: Sequence[int] | None = None
) -> torch.Tensor:
    """A grid with one row per class of ``per_class`` random images of that class.

    A class with fewer images leaves the rest of its row blank (white). ``classes`` picks
    the rows (default: every class). Returns ``(3, H', W')``.
    """
    if dataset.inputs.ndim != 4:
        raise ValueError(f"{dataset.name} holds feature vectors, not images")
    check_int("per_class", per_class, minimum=1)
    rows = list(range(dataset.num_classes)) if classes is None else list(classes)
    blank = torch.ones_like(dataset.inputs[:1])
    tiles = []
    labels = dataset.labels.cpu()
    drawn = stratified_index(labels, per_class, seed, keep_order=False, classes=rows)
    for c in rows:
        pick = drawn[labels[drawn] == c]
        tiles.append(dataset.inputs[pick.to(dataset.inputs.device)].cpu())
        tiles.extend([blank.cpu()] * (per_class - pick.numel()))
    return image_grid(torch.cat(tiles), nrow=per_class)


def show_image_grid(grid: torch.Tensor, *, ax: Axes | None = None, title: str | None = None) -> Axes:
    """Draw a ``(3, H, W)`` grid from :func:`image_grid` / :func:`sample_grid` without axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(grid.shape[2] / 60, grid.shape[1] / 60))
    ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def show_samples(
    dataset: Dataset,
    *,
    per_class: int = 8,
    seed: int = 0,
    classes: Sequence[int] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """One row of random samples per class, each row labelled with its class name."""
    rows = list(range(dataset.num_classes)) if classes is None else list(classes)
    grid = sample_grid(dataset, per_class=per_class, seed=seed, classes=rows)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.0 + 0.55 * per_class, 0.55 * len(rows) + 0.4))
    ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
    tile = (grid.shape[1] - 1) / len(rows)  # pixel height of one row, padding included
    ax.set_yticks([tile * (k + 0.5) for k in range(len(rows))], [dataset.classes[c] for c in rows], fontsize=8)
    ax.set_xticks([])
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    ax.set_title(title if title is not None else f"{dataset.name} ({dataset.split}, {len(dataset):,} images)", fontsize=10)
    return ax


def show_grids(
    datasets: Mapping[str, Dataset],
    *,
    per_class: int = 6,
    seed: int = 0,
    classes: Sequence[int] | None = None,
    ncols: int | None = None,
    suptitle: str | None = None,
) -> Figure:
    """Side-by-side :func:`sample_grid` panels, one per named data set (e.g. per bias ratio)."""
    if not datasets:
        raise ValueError("datasets must not be empty")
    ncols = len(datasets) if ncols is None else ncols
    check_int("ncols", ncols, minimum=1)
    nrows = -(-len(datasets) // ncols)
    grids = {name: sample_grid(d, per_class=per_class, seed=seed, classes=classes) for name, d in datasets.items()}
    first = next(iter(grids.values()))
    panel = 2.6  # inches per panel width; the height follows the grid's aspect
    height = panel * first.shape[1] / first.shape[2] + 0.4
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel * ncols, height * nrows + 0.5), squeeze=False)
    for ax, (name, grid) in zip(axes.flat, grids.items()):
        show_image_grid(grid, ax=ax, title=name)
    for ax in list(axes.flat)[len(datasets) :]:
        ax.set_axis_off()
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def attribute_table(dataset: Dataset, *, normalize: bool = False) -> pd.DataFrame:
    """Class × attribute counts (or row shares with ``normalize=True``) as a named DataFrame."""
    if dataset.attributes is None:
        raise ValueError(f"{dataset.name} has no attributes")
    n_attr = len(dataset.attribute_values) if dataset.attribute_values else int(dataset.attributes.max()) + 1
    flat = dataset.labels.cpu() * n_attr + dataset.attributes.cpu()
    counts = torch.bincount(flat, minlength=dataset.num_classes * n_attr).view(dataset.num_classes, n_attr)
    columns = list(dataset.attribute_values) if dataset.attribute_values else list(range(n_attr))
    table = pd.DataFrame(counts.numpy(), index=list(dataset.classes), columns=columns)
    table.index.name = "class"
    table.columns.name = dataset.attribute_name
    if normalize:
        table = table.div(table.sum(axis=1).where(lambda s: s > 0, 1), axis=0)
    return table
