"""The knowledge-distillation study (Mohammadshahi & Ioannou): its cells, its report on constructed rows."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from fairdd import results
from fairdd.studies import kd, kd_report


def test_cells_embed_every_setting_and_share_the_teacher() -> None:
    config = kd.KDStudyConfig.for_profile("smoke")
    cells = config.cells()
    per_seed = 2 + len(config.temperatures) + len(config.ablation_temperatures)  # fashion: teacher, NDS, DS, ablation
    fashion = config.cells("fashion_mnist")
    assert len(fashion) == len(config.seeds) * per_seed
    assert len(cells) == len(set(cells)) == len({results.run_id(c) for c in cells})
    roles = [c.role for c in fashion[:per_seed]]
    assert roles[:2] == ["teacher", "nds"] and set(roles[2:]) == {"ds"}
    ds = [c for c in fashion if c.role == "ds" and c.seed == 0]
    assert {(c.kd.temperature, c.kd.alpha) for c in ds} == (
        {(t, 0.8) for t in config.temperatures} | {(t, 0.6) for t in config.ablation_temperatures})
    # Every temperature and α of a seed reads one teacher; another seed another one.
    assert len({c.kd.teacher_spec(c.seed) for c in fashion if c.seed == 0}) == 1
    assert len({c.kd.teacher_spec(c.seed) for c in fashion}) == len(config.seeds)
    # The ablation runs only where asked.
    assert not any(c.kd.alpha == 0.6 for c in config.cells("trifeature"))
    # A changed protocol changes the run id (the cell embeds it).
    cell = fashion[2]
    assert results.run_id(dataclasses.replace(cell, kd=dataclasses.replace(cell.kd, t_squared=False))) != results.run_id(cell)


def test_profiles() -> None:
    paper = kd.KDStudyConfig.for_profile("paper")
    assert paper.seeds == (0, 1, 2, 3, 4) and paper.alpha == 0.8 and paper.alpha_ablation == 0.6
    assert set(paper.temperatures) == set(range(1, 11)) | {20, 30, 40}
    p = paper.protocol("fashion_mnist")
    assert (p.teacher.model, p.student.model, p.epochs, p.milestones, p.augment) == ("resnet56", "resnet20", 100, (30, 60, 90), True)
    tri = paper.protocol("trifeature")
    assert (tri.teacher.model, tri.student.model, tri.batch_size) == ("resnet20", "lenet", 64)
    assert paper.protocol("mnist").flip is False and paper.protocol("adult").augment is False
    cpu = kd.KDStudyConfig.for_profile("cpu")
    table = kd.describe_profile(cpu).set_index("setting")
    assert list(table.columns) == ["this build", "paper"]
    assert table.loc["seeds"].tolist() == [str(len(cpu.seeds)), "5"]
    assert table.loc["temperatures at α = 0.8", "this build"] == "1, 2, 4, 6, 8, 10, 20"
    assert table.loc["Fashion-MNIST: data"].tolist() == ["300 training images per class, 100 test images per class",
                                                         "CIFAR-10, all images"]
    assert table.loc["Fashion-MNIST: teacher → student"].tolist() == ["ConvNet-32×3 → LeNet-5", "ResNet-56 → ResNet-20"]
    assert table.loc["Trifeature (shape): students' gradient norm clipped at"].tolist() == ["1", "no clipping"]
    # The data: StudyData with the loaders' attributes; the cpu profile's numbers as stated.
    assert [(d.source, d.attributes) for d in cpu.data] == [
        ("fashion_mnist", ()), ("trifeature", ("colour", "texture")), ("adult", ("sex",)), ("compas", ("race",))]
    assert cpu.protocol("adult").epochs == 8 and cpu.protocol("compas").epochs == 12


def test_bad_study_configs() -> None:
    with pytest.raises(ValueError, match="seeds"):
        kd.KDStudyConfig.for_profile("smoke", seeds=(0,))
    with pytest.raises(ValueError, match="temperatures"):
        kd.KDStudyConfig.for_profile("smoke", temperatures=(0.0, 2.0))
    with pytest.raises(ValueError, match="alpha_ablation"):
        kd.KDStudyConfig.for_profile("smoke", alpha_ablation=0.8)
    cell = kd.KDStudyConfig.for_profile("smoke").cells()[0]
    with pytest.raises(ValueError, match="alpha"):
        dataclasses.replace(cell, role="ds")


# ------------------------------------------------------------------ report on made-up rows


def _rows(*, shift_class: int | None = None, fair_trend: bool = True, seeds: int = 5) -> pd.DataFrame:
    """Constructed rows: 4 classes; DS class ``shift_class`` gains accuracy with T; DS EOD
    falls with T (``fair_trend``) below the teacher's."""
    rng = np.random.default_rng(0)
    base = np.array([0.9, 0.8, 0.7, 0.6])
    rows = []

    def row(source, role, seed, t, acc, eod):
        r = {"source": source, "dataset": kd.LABELS[source], "role": role, "seed": seed, "temperature": t,
             "alpha": 0.8 if role == "ds" else np.nan, "accuracy": float(acc.mean()),
             "disagreement": json.dumps(np.eye(4, dtype=int)[::-1].tolist())}
        r.update({f"acc_class_{c}": float(a) for c, a in enumerate(acc)})
        r.update({"eod_colour": eod, "dpd_colour": eod / 2, "eod_texture": eod, "dpd_texture": eod / 2})
        return r

    temps = [2.0, 4.0, 6.0, 8.0, 10.0, 20.0]
    for s in range(seeds):
        noise = lambda: rng.normal(0, 0.005, 4)
        # The teacher is better at class 2: a student moving class 2 up moves towards it.
        rows.append(row("fashion_mnist", "teacher", s, np.nan, base + 0.05 + np.array([0, 0, 0.1, 0]) + noise(), 0.0))
        rows.append(row("fashion_mnist", "nds", s, np.nan, base + noise(), 0.0))
        for t in temps:
            acc = base + noise()
            if shift_class is not None:
                acc[shift_class] += 0.01 * min(t, 10)
            rows.append(row("fashion_mnist", "ds", s, t, acc, 0.0))
        rows.append(row("trifeature", "teacher", s, np.nan, base + noise(), 0.05 + rng.normal(0, 0.002)))
        rows.append(row("trifeature", "nds", s, np.nan, base + noise(), 0.06 + rng.normal(0, 0.002)))
        for t in temps:
            eod = 0.05 - (0.002 * min(t, 10) if fair_trend else 0.0) + (0.02 if t == 20 else 0.0)
            rows.append(row("trifeature", "ds", s, t, base + noise(), eod + rng.normal(0, 0.001)))
    return pd.DataFrame(rows)


def test_significance_counts_the_shifted_class_only() -> None:
    sig = kd_report.significance(_rows(shift_class=2))
    fm = sig[sig["source"] == "fashion_mnist"].set_index("temperature")
    # Class 2 moves away from the NDS by 4-10 points at T >= 4: there #SC counts it (its
    # normalised accuracy moves; the others move slightly the other way through the overall mean).
    assert all("2" in fm.loc[t, "sc_classes"].split(", ") for t in (6.0, 8.0, 10.0))
    assert (fm["sc_holm"] <= fm["sc"]).all() and (fm["tc_holm"] <= fm["tc"]).all()
    flat = kd_report.significance(_rows(shift_class=None))
    assert flat.loc[flat["source"] == "fashion_mnist", "sc_holm"].sum() <= 1


def test_claims_follow_the_numbers() -> None:
    good = kd_report.claims(_rows(shift_class=2, fair_trend=True)).set_index(["claim", "dataset"])
    assert good.loc[(1, "Fashion-MNIST"), "verdict"] == "supported"
    assert good.loc[(2, "Trifeature (shape)"), "verdict"] == "supported"
    assert good.loc[(3, "Trifeature (shape)"), "verdict"] == "supported"
    assert good.loc[(4, "Trifeature (shape)"), "verdict"] == "supported"
    bad = kd_report.claims(_rows(shift_class=None, fair_trend=False)).set_index(["claim", "dataset"])
    assert bad.loc[(1, "Fashion-MNIST"), "verdict"] == "not supported"
    assert bad.loc[(2, "Trifeature (shape)"), "verdict"] == "not supported"
    assert bad.loc[(3, "Trifeature (shape)"), "verdict"] == "not supported"
    text = kd_report.findings(_rows(shift_class=2))
    assert "Claim 1 on Fashion-MNIST: **supported**" in text


def test_paper_tables_and_disagreement() -> None:
    rows = _rows(shift_class=2)
    caption, table = kd_report.paper_comparison(rows, "table5")
    assert "paper" in caption.lower() or "Table 5" in caption
    assert "stand-in for CIFAR-10" in caption
    ds4 = table[(table["model"] == "ds") & (table["temperature"] == 4)]
    assert ds4["paper acc. (%)"].item() == 91.82 and ds4["paper #SC"].item() == 0
    assert np.isfinite(ds4["ours acc."].item())
    m = kd_report.disagreement(rows, "fashion_mnist", "ds", 4.0)
    assert m.shape == (4, 4) and m.sum() == 4
    with pytest.raises(ValueError, match="table"):
        kd_report.paper_table("table99") if hasattr(kd_report, "paper_table") else kd_report.paper_comparison(rows, "table99")


def test_side_by_side_students_are_computed_together_and_match_the_sequential_study(tmp_path, monkeypatch) -> None:
    """side_by_side=True: the students of a data set and seed are one fit_many call (the
    skeleton's together/compute_together), their rows equal the sequential study's within float
    tolerance, their run ids are their own, and the teacher runs are shared."""
    from fairdd import kd as kd_training

    smoke = kd.KDStudyConfig.for_profile("smoke")
    small = dataclasses.replace(smoke, data=(smoke.data[2],), seeds=(0, 1), temperatures=(1.0, 4.0))  # Adult
    calls: list[int] = []
    real = kd_training.fit_many

    def spy(models, *args, **kwargs):
        calls.append(len(models))
        return real(models, *args, **kwargs)

    monkeypatch.setattr(kd_training, "fit_many", spy)
    seq = kd.run_study(small, processes=1, root=tmp_path)
    bat = kd.run_study(dataclasses.replace(small, side_by_side=True), processes=1, root=tmp_path)
    assert calls == [3, 3]  # per seed: the NDS and the two DS, side by side
    assert "side_by_side" not in seq.columns and set(bat.loc[bat.role != "teacher", "side_by_side"]) == {True}
    students = bat.role != "teacher"
    assert not set(seq.loc[students, "run_id"]) & set(bat.loc[students, "run_id"])
    assert (seq.loc[~students, "run_id"].tolist() == bat.loc[~students, "run_id"].tolist())
    for column in ("accuracy", "dpd_sex", "eod_sex", "teacher_agreement"):
        np.testing.assert_allclose(bat[column], seq[column], atol=0.02)  # a prediction or two may flip
    # A finished group is only read; no group checkpoint is left behind.
    cell = dataclasses.replace(small, side_by_side=True).cells()[1]
    assert kd.STUDY.is_finished(cell, tmp_path)
    again = kd.run_study(dataclasses.replace(small, side_by_side=True), processes=1, root=tmp_path)
    assert calls == [3, 3] and again["accuracy"].tolist() == bat["accuracy"].tolist()
    assert not any((tmp_path / "kd_fairness" / "checkpoints").glob("*/students.pt"))
    # A single side-by-side student is computed alone, through cell_rows (no fit_many).
    one = dataclasses.replace(small, side_by_side=True, seeds=(2, 3), temperatures=(4.0,))
    kd.STUDY.run([c for c in one.cells() if c.seed == 2 and c.role != "ds"], processes=1, root=tmp_path)
    assert calls == [3, 3]
    with pytest.raises(ValueError, match="for students"):
        dataclasses.replace(small.cells()[0], side_by_side=True)
