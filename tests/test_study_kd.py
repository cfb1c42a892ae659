"""The knowledge-distillation study (Mohammadshahi & Ioannou): its cells, its report on constructed rows."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch

from fairdd import results, stats
from fairdd.studies import kd, kd_report


def test_cells_embed_every_setting_and_share_the_teacher() -> None:
    config = kd.KDStudyConfig.for_profile("smoke")
    cells = config.cells()
    per_seed = 2 + len(config.temperatures) + len(config.ablation_temperatures)  # teacher, NDS, DS, ablation
    hundred = config.cells("trifeature100")
    assert len(hundred) == len(config.seeds) * per_seed
    assert len(cells) == len(set(cells)) == len({results.run_id(c) for c in cells})
    roles = [c.role for c in hundred[:per_seed]]
    assert roles[:2] == ["teacher", "nds"] and set(roles[2:]) == {"ds"}
    ds = [c for c in hundred if c.role == "ds" and c.seed == 0]
    assert {(c.kd.temperature, c.kd.alpha) for c in ds} == (
        {(t, 0.8) for t in config.temperatures} | {(t, 0.6) for t in config.ablation_temperatures})
    # Every temperature and α of a seed reads one teacher; another seed another one.
    assert len({c.kd.teacher_spec(c.seed) for c in hundred if c.seed == 0}) == 1
    assert len({c.kd.teacher_spec(c.seed) for c in hundred}) == len(config.seeds)
    # The ablation runs only where asked; the 100-class set is Trifeature relabelled (its own run ids).
    assert not any(c.kd.alpha == 0.6 for c in config.cells("trifeature"))
    assert {c.label for c in hundred} == {"shape_colour"} and {c.label for c in config.cells("trifeature")} == {"default"}
    # A changed protocol changes the run id (the cell embeds it).
    cell = hundred[2]
    assert results.run_id(dataclasses.replace(cell, kd=dataclasses.replace(cell.kd, t_squared=False))) != results.run_id(cell)
    with pytest.raises(ValueError, match="label"):
        dataclasses.replace(config.cells("trifeature")[0], label="shape_colour")


def test_the_100_class_stand_in_relabels_trifeature() -> None:
    data = kd.study_data_spec("trifeature100", samples_per_combination=1, test_samples_per_combination=2)
    assert kd.key_of(data) == "trifeature100" and data.attributes == ()
    train, test, attrs = kd._splits(data, "shape_colour")
    raw_train, raw_test, _ = data.load()
    assert train.num_classes == 100 and len(test.labels) == 2 * 200 == 2 * len(raw_train.labels) // 4
    assert torch.equal(train.labels, raw_train.labels * 10 + raw_train.attributes)
    assert torch.equal(test.labels // 10, raw_test.labels) and attrs == {}
    # 2 test images per combination, 1 training image: the test split is drawn separately.
    assert len(raw_test.labels) == 400 and len(raw_train.labels) == 800


def test_profiles() -> None:
    paper = kd.KDStudyConfig.for_profile("paper")
    assert paper.seeds == (0, 1, 2, 3, 4) and paper.alpha == 0.8 and paper.alpha_ablation == 0.6
    assert set(paper.temperatures) == set(range(1, 11)) | {20, 30, 40}
    p = paper.protocol("fashion_mnist")
    assert (p.teacher.model, p.student.model, p.epochs, p.milestones, p.augment) == ("resnet56", "resnet20", 100, (30, 60, 90), True)
    tri = paper.protocol("trifeature")
    assert (tri.teacher.model, tri.student.model, tri.batch_size) == ("resnet20", "lenet", 64)
    assert paper.protocol("mnist").flip is False and paper.protocol("adult").augment is False
    assert paper.ablation_sources == ("trifeature100",)  # the paper's Table 7 is on CIFAR-100
    cpu = kd.KDStudyConfig.for_profile("cpu")
    table = kd.describe_profile(cpu).set_index("setting")
    assert list(table.columns) == ["this build", "paper"]
    assert table.loc["seeds"].tolist() == [str(len(cpu.seeds)), "5"]
    assert table.loc["COMPAS (race): seeds", "this build"] == str(len(cpu.seeds_of("compas")))
    assert table.loc["Trifeature (shape): data", "this build"].startswith("2400 training / 5000 test images (50 test images")
    assert table.loc["Trifeature (shape): students' gradient norm clipped at"].tolist() == ["1", "no clipping"]
    # The data: StudyData with the loaders' attributes.
    assert [(kd.key_of(d), d.attributes) for d in cpu.data] == [
        ("trifeature100", ()), ("trifeature", ("colour", "texture")), ("adult", ("sex",)), ("compas", ("race",))]
    assert all(d.test_samples_per_combination == 25 for d in cpu.data if d.source == "trifeature")


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
    with pytest.raises(ValueError, match="seeds_by_set"):
        kd.KDStudyConfig.for_profile("smoke", seeds_by_set=(("adult", (0,)),))
    with pytest.raises(ValueError, match="not in data"):
        kd.KDStudyConfig.for_profile("smoke", seeds_by_set=(("mnist", (0, 1)),))
    with pytest.raises(ValueError, match="test_samples_per_combination"):
        kd.study_data_spec("trifeature", test_samples_per_combination=0)


# ------------------------------------------------------------------ report on made-up rows


def _counts_json(n: int, tpr: tuple[float, float], rng: np.random.Generator) -> str:
    """A binary task's (group, true, predicted) count table, ``n`` examples per group and class:
    group g's true-positive rate ``tpr[g]``, false-positive rate 0.1 in both groups."""
    table = np.zeros((2, 2, 2), dtype=np.int64)
    for g, rate in enumerate(tpr):
        hit, false = rng.binomial(n, rate), rng.binomial(n, 0.1)
        table[g, 1] = [n - hit, hit]
        table[g, 0] = [n - false, false]
    return stats.counts_to_json(table)


def _fair_rows(*, nds_eod: float = 0.10, ds_shift: float = -0.03, sd: float = 0.002, seeds: int = 6,
               teacher_gain: float = 0.02, group_effect: bool = True, trend: float = -0.002,
               high_t_jump: float = 0.02, identical: bool = False) -> pd.DataFrame:
    """Constructed Adult-like rows (binary label, attribute "sex"): per seed a teacher, an NDS
    and DS at T = 1, 2, 4, 6, 8, 10, 20. The DS at T = 10 has EOD = NDS + ``ds_shift``; EOD
    changes by ``trend`` per unit T up to 10 and jumps by ``high_t_jump`` at T = 20; DPD = EOD / 2;
    seed-level noise ``sd``. ``group_effect``: the stored count tables show a clear TPR gap
    between the groups (else none: every measure within its floor). ``identical``: every T's
    students equal (a seed's rows at T = 8 and 10 coincide)."""
    rng = np.random.default_rng(0)
    tpr = (0.9, 0.6) if group_effect else (0.8, 0.8)
    rows = []

    def row(role, seed, t, acc, eod):
        return {"source": "adult", "dataset": kd.LABELS["adult"], "role": role, "seed": seed, "temperature": t,
                "alpha": 0.8 if role == "ds" else np.nan, "accuracy": acc, "acc_class_0": acc, "acc_class_1": acc,
                "eod_sex": eod, "dpd_sex": eod / 2, "group_counts_sex": _counts_json(400, tpr, rng),
                "disagreement": "[]"}

    for s in range(seeds):
        rows.append(row("teacher", s, np.nan, 0.85 + teacher_gain + rng.normal(0, 0.001), nds_eod + rng.normal(0, sd)))
        rows.append(row("nds", s, np.nan, 0.85 + rng.normal(0, 0.001), nds_eod + rng.normal(0, sd)))
        noise = rng.normal(0, sd)
        for t in (1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0):
            tt = 10.0 if identical and t >= 8 else min(t, 10.0)
            eod = nds_eod + ds_shift + trend * (tt - 10) + (high_t_jump if t == 20 else 0.0)
            rows.append(row("ds", s, t, 0.855, eod + (noise if identical else rng.normal(0, sd))))
    return pd.DataFrame(rows)


def _verdicts(rows: pd.DataFrame) -> pd.DataFrame:
    return kd_report.claims(rows).set_index(["claim", "dataset"])


ADULT = "Adult (sex) — sex"


def test_claims_return_the_shared_columns_and_the_four_verdict_classes() -> None:
    """On constructed rows each verdict class is reachable, with its reason (claim 5: distilled
    students fairer than non-distilled ones; the paper's effect, CelebA Table 8, is 1.13 EOD
    points at T = 10)."""
    good = kd_report.claims(_fair_rows())
    assert list(good.columns[:len(stats.CLAIM_COLUMNS)]) == list(stats.CLAIM_COLUMNS)
    assert set(good["paper"]) == {"Mohammadshahi & Ioannou"} and set(good["chapter"]) == {"kd_fairness"}
    assert set(good["verdict"]) <= set(stats.VERDICTS) and good["reason"].str.len().min() > 10
    v = good.set_index(["claim", "dataset"])
    assert v.loc[(5, ADULT), "verdict"] == "supported"
    assert v.loc[(3, ADULT), "verdict"] == "supported"  # EOD and DPD fall with T up to 10
    assert v.loc[(2, ADULT), "verdict"] == "supported"  # the DS below its teacher in DPD
    assert v.loc[(4, ADULT), "verdict"] == "supported"  # the jump at T = 20
    assert _verdicts(_fair_rows(ds_shift=+0.03)).loc[(5, ADULT), "verdict"] == "contradicted"
    absent = _verdicts(_fair_rows(ds_shift=0.0, sd=0.0005))
    assert absent.loc[(5, ADULT), "verdict"] == "absent"
    assert "equivalence" in absent.loc[(5, ADULT), "reason"]
    weak = _verdicts(_fair_rows(ds_shift=-0.005, sd=0.05, seeds=3))
    assert weak.loc[(5, ADULT), "verdict"] == "untestable here"
    assert "could not have detected the paper's effect" in weak.loc[(5, ADULT), "reason"]
    assert weak.loc[(5, ADULT), "mde"] > weak.loc[(5, ADULT), "paper_effect"]
    table = kd_report.answerable(good)
    assert table.loc[(table["claim"] == 5) & (table["dataset"] == ADULT), "detectable"].item() == "yes"
    assert set(table.loc[table["verdict"] == "untestable here", "detectable"]) <= {"no", "–", "yes"}


def test_degenerate_protocols_and_the_noise_floor_make_claims_untestable() -> None:
    """A teacher no better than the hard-label student, students identical across T, and a
    measure within its noise floor: "untestable here", the reason saying which."""
    same = _verdicts(_fair_rows(teacher_gain=-0.002))
    assert set(same.loc[[c for c in same.index if c[1] == ADULT], "verdict"]) == {"untestable here"}
    assert "no better than the hard-label student" in same.loc[(5, ADULT), "reason"]
    flat = kd_report.degenerate(_fair_rows(identical=True), "adult")
    assert flat["teacher"] is None and "identical across T" in flat["temperature"]
    frozen = _verdicts(_fair_rows(identical=True))
    assert frozen.loc[(3, ADULT), "verdict"] == "untestable here" and "identical" in frozen.loc[(3, ADULT), "reason"]
    assert frozen.loc[(5, ADULT), "verdict"] == "supported"  # T is not what claim 5 varies
    blind = _fair_rows(group_effect=False)
    checks = kd_report.group_checks(blind)
    assert checks["within_floor"].all()
    v = kd_report.claims(blind, checks=checks).set_index(["claim", "dataset"])
    assert v.loc[(5, ADULT), "verdict"] == "untestable here" and "noise floor" in v.loc[(5, ADULT), "reason"]
    assert kd_report.group_checks(_fair_rows())["within_floor"].mean() < 0.05  # a clear group gap: (almost) none
    table = kd_report.floor_table(checks, "adult", "sex")
    assert table["EOD within the noise floor"].str.endswith("within the noise floor").all()


def _classwise_rows(*, shifted: int, seeds: int = 6, classes: int = 20) -> pd.DataFrame:
    """Constructed 100-class-stand-in rows (``classes`` classes): DS classes 0 … ``shifted`` − 1
    gain accuracy with T (class c by 0.004·(c + 1)·min(T, 10)), so more classes become
    significant for #SC as T rises; the teacher is better."""
    rng = np.random.default_rng(1)
    base = np.linspace(0.6, 0.9, classes)
    rows = []

    def row(role, seed, t, acc):
        r = {"source": "trifeature100", "dataset": kd.LABELS["trifeature100"], "role": role, "seed": seed,
             "temperature": t, "alpha": 0.8 if role == "ds" else np.nan, "accuracy": float(acc.mean()),
             "disagreement": "[]"}
        r.update({f"acc_class_{c}": float(a) for c, a in enumerate(acc)})
        return r

    for s in range(seeds):
        rows.append(row("teacher", s, np.nan, base + 0.05 + rng.normal(0, 0.003, classes)))
        rows.append(row("nds", s, np.nan, base + rng.normal(0, 0.003, classes)))
        for t in (2.0, 4.0, 6.0, 8.0, 10.0, 20.0):
            acc = base + rng.normal(0, 0.003, classes)
            acc[:shifted] += 0.004 * (np.arange(shifted) + 1) * min(t, 10)
            rows.append(row("ds", s, t, acc))
    return pd.DataFrame(rows)


def test_class_wise_claims_judge_the_counts_against_chance() -> None:
    label = kd.LABELS["trifeature100"]
    moved = _verdicts(_classwise_rows(shifted=10))
    assert moved.loc[(6, label), "verdict"] == "supported"  # far more classes than 0.05 · 20 = 1
    assert moved.loc[(1, label), "unit"].startswith("temperature")
    assert "#SC per T" in moved.loc[(1, label), "evidence"]
    still = _verdicts(_classwise_rows(shifted=0))
    assert still.loc[(6, label), "verdict"] == "untestable here"  # chance-level counts, 20 classes: no power
    assert "per-seed form" not in " ".join(still["evidence"].astype(str))
    sig = kd_report.significance(_classwise_rows(shifted=10))
    assert sig.set_index("temperature").loc[10.0, "sc"] > sig.set_index("temperature").loc[2.0, "sc"]


def test_significance_counts_the_shifted_class_only() -> None:
    rows = _classwise_rows(shifted=1, classes=4)
    sig = kd_report.significance(rows).set_index("temperature")
    assert all("0" in sig.loc[t, "sc_classes"].split(", ") for t in (6.0, 8.0, 10.0))
    assert (sig["sc_holm"] <= sig["sc"]).all() and (sig["tc_holm"] <= sig["tc"]).all()
    flat = kd_report.significance(_classwise_rows(shifted=0, classes=4))
    assert flat["sc_holm"].sum() <= 1


def test_findings_are_generated_from_the_rows() -> None:
    rows = pd.concat([_fair_rows(teacher_gain=-0.002), _classwise_rows(shifted=10)], ignore_index=True)
    text = kd_report.findings(rows)
    assert "Degenerate protocol: the teacher" in text
    assert "chance alone gives about" in text
    assert "Claim 6 on Trifeature (shape × colour, 100 classes): **supported**" in text


def test_paper_tables_and_disagreement() -> None:
    rows = _classwise_rows(shifted=2, classes=4)
    caption, table = kd_report.paper_comparison(rows, "table6")
    assert "Table" in caption and "stand-in for CIFAR-100" in caption
    ds4 = table[(table["model"] == "ds") & (table["temperature"] == 4)]
    assert ds4["paper acc. (%)"].item() == 69.18 and ds4["paper #SC"].item() == 8
    assert np.isfinite(ds4["ours acc."].item())
    caption, _ = kd_report.paper_comparison(rows, "table5")
    assert "none at this profile" in caption
    fair = _fair_rows()
    caption, table = kd_report.paper_comparison(fair, "table8", checks=kd_report.group_checks(fair))
    assert "ours Adult (sex) EOD floor" in table.columns
    with pytest.raises(ValueError, match="table"):
        kd_report.paper_comparison(rows, "table99")


def test_side_by_side_students_are_computed_together_and_match_the_sequential_study(tmp_path, monkeypatch) -> None:
    """side_by_side=True: the students of a data set and seed are one fit_many call (the
    skeleton's together/compute_together), their rows equal the sequential study's within float
    tolerance, their run ids are their own, and the teacher runs are shared."""
    from fairdd import kd as kd_training

    smoke = kd.KDStudyConfig.for_profile("smoke")
    small = dataclasses.replace(smoke, data=tuple(d for d in smoke.data if d.source == "adult"), seeds=(0, 1),
                                temperatures=(1.0, 4.0))
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
    # Each row stores its test predictions as a (group, true, predicted) count table: valid, over
    # the whole test split, and giving the row's own measures (what the floors are computed from).
    for _, r in seq.iterrows():
        counts = stats.counts_from_json(r["group_counts_sex"], num_classes=2, num_groups=2)
        assert counts.sum() == 100 and np.trace(counts.sum(axis=0)) / counts.sum() == pytest.approx(r["accuracy"])
        assert stats.group_measure(counts, "eod") == pytest.approx(r["eod_sex"])
        assert stats.group_measure(counts, "dpd") == pytest.approx(r["dpd_sex"])
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
