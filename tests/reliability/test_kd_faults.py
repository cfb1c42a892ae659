"""Knowledge distillation under faults: bad inputs are refused before any work, every cache file
is checked on read (a damaged one recomputed with a warning naming it, a foreign one refused
naming it and what it holds), a checkpoint resumes only its own config, a claimed teacher is
waited for with a message and a timeout, and the store is checked before a teacher is trained."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fairdd import kd, results
from fairdd.data import Dataset
from fairdd.models import NetworkSpec
from fairdd.seeding import generator as seeded_generator


def _data(n: int = 24, k: int = 3, size: int = 8) -> Dataset:
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % k
    images = torch.rand(n, 3, size, size, generator=g) + labels[:, None, None, None] * 0.3
    return Dataset(name="toy", split="train", inputs=images, labels=labels, classes=tuple(str(c) for c in range(k)))


def _config(**kw) -> kd.KDConfig:
    base = {"teacher": NetworkSpec(width=6, depth=1), "student": NetworkSpec(width=4, depth=1), "epochs": 2,
            "milestones": (1,), "batch_size": 8, "augment": False, "lr": 0.05, "temperature": 3.0, "alpha": 0.7}
    base.update(kw)
    return kd.KDConfig(**base)


def _model(config: kd.KDConfig, train: Dataset) -> torch.nn.Module:
    return kd._build(config.student, train, 0)


def _fit(config: kd.KDConfig, train: Dataset, **kw) -> kd.TrainLog:
    return kd.fit(_model(config, train), train, config, generator=seeded_generator(1), **kw)


def _flip_byte(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


# ------------------------------------------------------------------------------- inputs


@pytest.mark.parametrize("field", ["temperature", "lr", "weight_decay", "max_grad_norm"])
def test_infinite_numbers_are_refused(field: str) -> None:
    with pytest.raises(ValueError, match=f"{field}=inf"):
        _config(**{field: math.inf})


def test_kd_loss_refuses_an_infinite_temperature() -> None:
    z = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="temperature=inf"):
        kd.kd_loss(z, z, torch.tensor([0, 1]), math.inf, 0.5)


def test_nan_images_are_refused_before_any_training(tmp_path: Path) -> None:
    train = _data()
    train.inputs[3, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="inputs.*not finite"):
        _fit(_config(alpha=0.0), train, checkpoint=tmp_path / "ck.pt")
    assert not (tmp_path / "ck.pt").exists()
    with pytest.raises(ValueError, match="inputs.*not finite"):
        kd.teacher(_config().teacher_spec(0), train, root=tmp_path / "store")
    assert not (tmp_path / "store" / "cache").exists()


def test_nan_cached_logits_are_refused() -> None:
    train = _data()
    logits = torch.zeros(len(train), 3)
    logits[5, 1] = float("nan")
    with pytest.raises(ValueError, match="cached_logits.*not finite"):
        _fit(_config(), train, cached_logits=logits)
    with pytest.raises(ValueError, match="cached_logits.*not finite"):
        kd.students([_config()], train, seed=0, cached_logits=logits)


def test_cached_logits_of_another_class_count_are_refused() -> None:
    train = _data()
    with pytest.raises(ValueError, match="cached_logits.*2 classes.*3"):
        _fit(_config(), train, cached_logits=torch.zeros(len(train), 2))


def test_an_empty_training_set_is_refused(tmp_path: Path) -> None:
    empty = Dataset(name="toy", split="train", inputs=torch.zeros(0, 3, 8, 8), labels=torch.zeros(0, dtype=torch.long),
                    classes=("a", "b", "c"))
    with pytest.raises(ValueError, match="empty"):
        _fit(_config(alpha=0.0), empty)
    with pytest.raises(ValueError, match="empty"):
        kd.teacher(_config().teacher_spec(0), empty, root=tmp_path)
    assert not (tmp_path / "cache").exists()


# ------------------------------------------------------------------------------- caches


@pytest.fixture
def cached(tmp_path: Path) -> tuple[kd.TeacherSpec, Dataset, Path]:
    """A teacher and its logits cached under tmp/store."""
    spec, train, root = _config().teacher_spec(0), _data(), tmp_path / "store"
    model, _ = kd.teacher(spec, train, root=root)
    kd.teacher_logits(spec, train, model, root=root)
    return spec, train, root


def _state(model: torch.nn.Module) -> list[torch.Tensor]:
    return [v.clone() for v in model.state_dict().values()]


def test_a_damaged_teacher_is_retrained_with_a_warning_naming_it(cached) -> None:
    spec, train, root = cached
    path = kd.teacher_dir(spec, train, root=root) / "teacher.pt"
    before = _state(kd.teacher(spec, train, root=root)[0])
    _flip_byte(path)
    with pytest.warns(RuntimeWarning, match=f"{path}.*damaged"):
        model, _ = kd.teacher(spec, train, root=root)
    assert all(torch.equal(a, b) for a, b in zip(before, _state(model)))


def test_damaged_logits_are_recomputed_with_a_warning_naming_them(cached) -> None:
    spec, train, root = cached
    model, _ = kd.teacher(spec, train, root=root)
    path = kd.teacher_dir(spec, train, root=root) / "logits.pt"
    before = kd.teacher_logits(spec, train, model, root=root)
    _flip_byte(path)
    with pytest.warns(RuntimeWarning, match=f"{path}.*damaged"):
        after = kd.teacher_logits(spec, train, model, root=root)
    assert torch.equal(before, after)


def test_a_teacher_of_another_network_is_refused_naming_the_file(cached, tmp_path: Path) -> None:
    spec, train, root = cached
    other = dataclasses.replace(spec, network=NetworkSpec(width=5, depth=1))
    path = kd.teacher_dir(other, train, root=root) / "teacher.pt"
    results.save_checkpoint(path, results.load_checkpoint(kd.teacher_dir(spec, train, root=root) / "teacher.pt"))
    with pytest.raises(ValueError, match=f"{path}.*holds") as info:
        kd.teacher(other, train, root=root)
    assert "width" in str(info.value)


@pytest.mark.parametrize("name", ["teacher.pt", "logits.pt"])
def test_a_cache_missing_its_key_is_refused_naming_the_file(cached, name: str) -> None:
    spec, train, root = cached
    path = kd.teacher_dir(spec, train, root=root) / name
    model, _ = kd.teacher(spec, train, root=root)
    results.save_checkpoint(path, {"something": torch.zeros(1)})
    with pytest.raises(ValueError, match=f"{path}.*something"):
        kd.teacher(spec, train, root=root)
        kd.teacher_logits(spec, train, model, root=root)


def test_logits_of_another_shape_are_refused_naming_the_file(cached) -> None:
    spec, train, root = cached
    model, _ = kd.teacher(spec, train, root=root)
    path = kd.teacher_dir(spec, train, root=root) / "logits.pt"
    results.save_checkpoint(path, {"logits": torch.zeros(len(train), 2)})
    with pytest.raises(ValueError, match=rf"{path}.*\(24, 2\).*\(24, 3\)"):
        kd.teacher_logits(spec, train, model, root=root)


def test_a_garbage_partial_checkpoint_names_the_file_and_starts_over(tmp_path: Path) -> None:
    spec, train = _config().teacher_spec(0), _data()
    directory = kd.teacher_dir(spec, train, root=tmp_path)
    directory.mkdir(parents=True)
    torch.save({"model": {1, 2}}, directory / "partial.pt")  # a set: refused by torch's safe loader
    with pytest.warns(RuntimeWarning, match=f"{directory / 'partial.pt'}"):
        kd.teacher(spec, train, root=tmp_path)
    assert (directory / "teacher.pt").is_file()


def test_a_student_resumes_only_a_checkpoint_of_its_own_config(tmp_path: Path) -> None:
    train, path = _data(), tmp_path / "student.pt"
    logits = torch.zeros(len(train), 3)
    _fit(_config(temperature=4.0, epochs=1), train, cached_logits=logits, checkpoint=path)
    with pytest.raises(ValueError, match=f"{path}.*temperature"):
        _fit(_config(temperature=20.0, epochs=2), train, cached_logits=logits, checkpoint=path)
    _fit(_config(temperature=4.0, epochs=2), train, cached_logits=logits, checkpoint=path)  # its own: resumed


def test_a_damaged_cache_digest_is_checked_for_every_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "x.pt"
    results.save_checkpoint(path, {"w": torch.arange(1000.0)})
    _flip_byte(path)
    with pytest.raises(ValueError, match=f"{path}.*SHA-256"):
        results.load_checkpoint(path)


# ------------------------------------------------------------------------- claims, store


def test_waiting_for_a_claimed_teacher_prints_the_holder_and_times_out(tmp_path: Path, capsys) -> None:
    spec, train = _config().teacher_spec(0), _data()
    path = kd.teacher_dir(spec, train, root=tmp_path) / "teacher.pt"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.2)
        path.parent.mkdir(parents=True)
        path.with_suffix(".claim").write_text(str(holder.pid))
        with pytest.raises(TimeoutError, match=rf"{path.with_suffix('.claim')}.*pid {holder.pid}"):
            kd.teacher(spec, train, root=tmp_path, wait_timeout_s=1.0)
        err = capsys.readouterr().err
        assert f"pid {holder.pid}" in err and "delete" in err
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("kind", ["file", "file_parent"])
def test_a_store_that_is_a_file_is_refused_before_a_teacher_is_trained(tmp_path: Path, monkeypatch, kind: str) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    root = blocker if kind == "file" else blocker / "store"

    def no_training(*args, **kwargs):
        raise AssertionError("trained before checking the store")

    monkeypatch.setattr(kd, "fit", no_training)
    monkeypatch.setenv("FAIRDD_RESULTS", str(root))
    with pytest.raises(NotADirectoryError, match=f"results folder {root}.*nothing was computed.*FAIRDD_RESULTS"):
        kd.teacher(_config().teacher_spec(0), _data())


def test_a_full_disk_is_one_clear_error_naming_the_file(tmp_path: Path, monkeypatch) -> None:
    import errno

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(results.torch, "save", full)
    path = tmp_path / "x.pt"
    with pytest.raises(OSError, match=f"disk is full.*{path}") as info:
        results.save_checkpoint(path, {"w": torch.zeros(3)})
    assert info.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []
