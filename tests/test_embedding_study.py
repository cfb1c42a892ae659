"""The embedding-DD study layer (Han et al. 2022): profiles, the run list, tables from hand-made rows, an end-to-end run."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from fairdd import results, stats
from fairdd.data import TemplateBios, load_dataset, template_bios
from fairdd.studies import embedding as study
from fairdd.studies import embedding_report
from fairdd.studies.embedding import EmbeddingCell, EmbeddingStudyConfig, feature_data


def test_profiles_and_validation():
    paper = EmbeddingStudyConfig.for_profile("paper")
    assert paper.seeds == tuple(range(7)) and paper.sizes == tuple(range(1, 21))
    assert paper.dd.iterations == 4900 and paper.dd.distill_epochs == 3 and paper.standard.epochs == 100
    cpu = EmbeddingStudyConfig.for_profile("cpu")
    assert len(cpu.seeds) == 5 and cpu.table_size == 10 and cpu.profile == "cpu"
    for kwargs, field in [
        ({"profile": "gpu"}, "profile"), ({"data": ("adult",)}, "data"), ({"seeds": ()}, "seeds"),
        ({"sizes": (0,)}, "sizes"), ({"table_size": 0}, "table_size"), ({"convergence": (("adult", 1.5),)}, "convergence"),
        ({"data": (feature_data("adult"), feature_data("adult"))}, "twice"), ({"text": "bios"}, "text"),
        ({"text_size": 0}, "text_size"),
    ]:
        with pytest.raises(ValueError, match=field):
            EmbeddingStudyConfig(**kwargs)
    with pytest.raises(ValueError, match="sources"):
        EmbeddingStudyConfig.for_profile("cpu", sources=("mnist",))
    assert [d.source for d in EmbeddingStudyConfig.for_profile("cpu", sources=("compas",)).data] == ["compas"]
    with pytest.raises(ValueError, match="method"):
        EmbeddingCell(feature_data("adult"), True, "dd", standard=cpu.standard)
    with pytest.raises(ValueError, match="no protected input column"):
        EmbeddingCell(TemplateBios(), False, "standard", standard=cpu.standard)
    with pytest.raises(ValueError, match="per_profession"):
        TemplateBios(per_profession=1)
    with pytest.raises(ValueError, match="test_per_profession"):
        TemplateBios(test_per_profession=1)
    with pytest.raises(ValueError, match="data.encoder must name an encoder"):
        EmbeddingCell(TemplateBios(encoder=None), True, "standard", standard=cpu.standard)
    # The test split's own size: its lines only; the training lines and the run id of a spec
    # without it unchanged.
    train, test = TemplateBios(per_profession=3, test_per_profession=5).frames()
    assert (len(train), len(test)) == (12, 20)
    assert train.equals(TemplateBios(per_profession=3).frames()[0])
    assert "test_per_profession" not in results.canonical_config(TemplateBios())


def test_describe_profile_sets_this_build_beside_the_paper():
    table = study.describe_profile(EmbeddingStudyConfig.for_profile("cpu")).set_index("setting")
    assert list(table.columns) == ["this build", "paper"]
    assert table.loc["outer steps", "this build"] == "150" and table.loc["outer steps", "paper"] == "4900"
    assert table.loc["sizes (Figure 2)", "paper"] == "1–20" and table.loc["sizes (Figure 2)", "this build"] == "1, 5, 10, 20"
    assert table.loc["text section: seeds", "paper"] == "not in the paper"
    assert "MOJI, BIOS" in table.loc["data sets", "paper"]
    none = study.describe_profile(EmbeddingStudyConfig.for_profile("smoke", text=None)).set_index("setting")
    assert none.loc["text section: seeds", "this build"] == "–"


def test_protected_columns_dropped_as_the_loader_drops_them():
    for split_index, split in enumerate(("train", "test")):
        ours = study._splits(feature_data("compas"), False)[split_index]
        loader = load_dataset("compas", split, include_protected=False)
        assert torch.equal(ours.inputs, loader.inputs) and torch.equal(ours.labels, loader.labels)
        assert torch.equal(ours.attributes, loader.attributes)


def test_runs_cover_every_row_and_size_once():
    cfg = EmbeddingStudyConfig.for_profile("smoke", sources=("compas",), seeds=(0, 1), sizes=(1, 2), sweep_seeds=(0,),
                                           ablation_seeds=(5,), text=None)
    runs = cfg.cells()
    assert len(runs) == len(set(runs))
    table = [r for r in runs if r.include_protected and (r.method == "standard" or r.dd.size == cfg.table_size)]
    assert len(table) == 6 * 2  # six rows × two seeds (the size-2 sweep runs of seed 0 are these)
    ablation = [r for r in runs if not r.include_protected]
    assert len(ablation) == 6 and {r.inner.seed for r in ablation} == {5}
    sweep = {(r.dd.debias, r.dd.size) for r in runs if r.method == "dd" and r.include_protected and r.dd.seed == 0}
    assert sweep == {(d, s) for d in ("none", "bteo", "adv") for s in (1, 2)}
    assert all(r.inner.hidden == (32, 32) for r in runs)


def rows():
    """Hand-made rows: two seeds per method on one data set, size 10, one unconverged DD run."""
    base = dict(dataset="toy", include_protected=True, converged=True, distill_seconds=np.nan, retrain_seconds=np.nan, train_seconds=np.nan)
    out = []
    spec = {  # label: (method, debias, [(acc, fair), (acc, fair)])
        "STANDARD": ("standard", "none", [(0.80, 0.70), (0.82, 0.72)]),
        "STANDARD + BTEO": ("standard", "bteo", [(0.79, 0.90), (0.79, 0.92)]),
        "STANDARD + ADV": ("standard", "adv", [(0.80, 0.88), (0.80, 0.90)]),
        "DD": ("dd", "none", [(0.78, 0.71), (0.50, 0.99)]),
        "DD + BTEO": ("dd", "bteo", [(0.77, 0.90), (0.77, 0.92)]),
        "DD + ADV": ("dd", "adv", [(0.78, 0.70), (0.78, 0.72)]),
    }
    for label, (method, debias, values) in spec.items():
        for seed, (acc, fair) in enumerate(values):
            row = dict(base, method=method, debias=debias, method_label=label, seed=seed, accuracy=acc, fairness=fair,
                       size=10 if method == "dd" else 0, dto=np.hypot(1 - acc, 1 - fair))
            if method == "dd":
                row.update(distill_seconds=100.0 + 10 * seed, retrain_seconds=1.0)
            else:
                row.update(train_seconds={"none": 21.0, "bteo": 11.0, "adv": 31.0}[debias])
            out.append(row)
    df = pd.DataFrame(out)
    df.loc[(df["method_label"] == "DD") & (df["seed"] == 1), "converged"] = False
    return df


def test_table1_means_stds_dto_and_dropped_runs():
    t = study.table1(rows(), 10).set_index("method")
    assert t.loc["STANDARD", "accuracy"] == "81.0 ± 1.4"  # mean 0.81, sample std 0.01414
    assert t.loc["STANDARD", "dto"] == pytest.approx(100 * np.hypot(0.19, 0.29), abs=0.05)
    assert t.loc["DD", "kept"] == 1 and t.loc["DD", "dropped"] == 1 and t.loc["DD", "accuracy"] == "78.0"
    assert t["dropped"].sum() == 1


def test_cost_table_reuse_factor_uses_the_matching_baseline():
    c = study.cost_table(rows()).set_index("method_label")
    assert c.loc["DD", "reuse_factor"] == pytest.approx(105.0 / (21.0 - 1.0))
    assert c.loc["DD + ADV", "reuse_factor"] == pytest.approx(105.0 / (31.0 - 1.0))
    # The paper's worked example (BIOS, size 10): 3453 / (96 − 2) ≈ 36.73.
    df = rows()
    df.loc[df["method_label"] == "DD", "distill_seconds"] = 3453.0
    df.loc[df["method_label"] == "DD", "retrain_seconds"] = 2.0
    df.loc[df["method_label"] == "STANDARD", "train_seconds"] = 96.0
    assert study.cost_table(df).set_index("method_label").loc["DD", "reuse_factor"] == pytest.approx(36.73, abs=0.01)


def test_paper_table1_is_labelled_and_consistent():
    p = study.PAPER_TABLE1
    assert set(p["dataset"]) == {"MOJI", "BIOS"} and len(p) == 12
    dto = 100 * np.hypot(1 - p["accuracy"] / 100, 1 - p["fairness"] / 100)
    assert np.allclose(dto, p["dto"], atol=0.1)  # the paper's DTO follows from its rounded means


def test_run_study_end_to_end_and_reuses_finished_runs(tmp_path, monkeypatch):
    cfg = EmbeddingStudyConfig.for_profile(
        "smoke", sources=("compas",), seeds=(0,), table_size=1, sizes=(1,), sweep_seeds=(0,), ablation_seeds=(), text=None,
    )
    cfg = dataclasses.replace(cfg, dd=dataclasses.replace(cfg.dd, iterations=2, hidden=(8, 8)),
                              standard=dataclasses.replace(cfg.standard, epochs=1, hidden=(8, 8)))
    df = study.run_study(cfg, processes=1, root=tmp_path)
    assert len(df) == 6 and set(df["method_label"]) == {label for label, _, _ in study.METHODS}
    assert df["accuracy"].between(0, 1).all() and df["fairness"].between(0, 1).all()
    dd = df[df["method"] == "dd"]
    assert (dd["iterations"] == 2).all() and (dd["distill_seconds"] > 0).all() and (dd["distill_cpu_seconds"] > 0).all()
    assert dd.loc[dd["debias"] == "adv", "adv_loss_end"].notna().all() and dd.loc[dd["debias"] != "adv", "adv_loss_end"].isna().all()
    assert (dd.loc[dd["debias"] == "adv", "discriminator_steps"] == 2).all()

    def boom(cell, root):
        raise AssertionError("a finished run was recomputed")

    monkeypatch.setattr(study, "STUDY", dataclasses.replace(study.STUDY, compute=boom))
    again = study.run_study(cfg, root=tmp_path)
    pd.testing.assert_frame_equal(df, again)


def test_table1_with_paper_labels_the_sources():
    wide = study.table1_with_paper(study.table1(rows(), 10))
    assert list(dict.fromkeys(c for c, _ in wide.columns)) == ["ours: toy", "paper: MOJI", "paper: BIOS"]
    assert wide.loc["DD + BTEO", ("paper: BIOS", "accuracy")] == "73.2 ± 3.2"
    assert wide.loc["STANDARD", ("ours: toy", "accuracy")] == "81.0 ± 1.4"


def test_training_times_table3():
    t = study.training_times(rows(), 10)
    assert t.loc["STANDARD + ADV", "toy"] == 31.0 and t.loc["DD + BTEO", "toy"] == 1.0


def test_template_bios_skew_and_ambiguity():
    d = template_bios(per_profession=400, skew=0.8, ambiguity=0.0, seed=0)
    share = d.groupby("profession")["attribute"].mean()  # share of women
    assert share["nurse"] > 0.75 and share["surgeon"] < 0.25
    assert not d["text"].str.contains("nurse|surgeon|engineer|teacher").any()  # titles are not in the text
    assert set(d["label"]) == {0, 1, 2, 3} and (d["attribute"] == (d["gender"] == "female")).all()
    common = template_bios(per_profession=400, ambiguity=1.0)["text"].str.contains("long hours|loves the job|trained|helps people")
    assert common.all()


def test_cost_tables_on_the_cpu_clock():
    df = rows()
    for name in ("distill", "retrain", "train"):
        df[f"{name}_cpu_seconds"] = df[f"{name}_seconds"] / 2
    c = study.cost_table(df, clock="cpu").set_index("method_label")
    assert c.loc["DD", "distill_seconds"] == pytest.approx(52.5)
    assert c.loc["DD", "reuse_factor"] == pytest.approx(52.5 / (10.5 - 0.5))
    assert study.training_times(df, 10, clock="cpu").loc["STANDARD", "toy"] == 10.5
    with pytest.raises(ValueError, match="clock"):
        study.cost_table(df, clock="gpu")


def test_text_cells_the_six_models_on_template_bios():
    cfg = EmbeddingStudyConfig.for_profile("smoke", text=TemplateBios(per_profession=5), text_seeds=(0, 3), text_size=2,
                                           text_batch_size=16)
    text = [c for c in cfg.cells() if isinstance(c.data, TemplateBios)]
    assert len(text) == 6 * 2 and cfg.cells()[-len(text):] == text  # after the feature-vector cells
    assert {(c.method, c.inner.debias, c.inner.seed) for c in text} == {(m, d, s) for _, m, d in study.METHODS for s in (0, 3)}
    assert all(c.inner.batch_size == 16 and c.include_protected for c in text)
    assert all(c.dd.size == 2 for c in text if c.method == "dd")
    assert not [c for c in EmbeddingStudyConfig.for_profile("smoke", text=None).cells() if isinstance(c.data, TemplateBios)]


def test_text_section_end_to_end(tmp_path):
    """The text cells through the run store: embedded template lines, the six models, rows labelled template_bios."""
    cfg = EmbeddingStudyConfig.for_profile(
        "smoke", sources=("compas",), seeds=(0,), table_size=1, sizes=(1,), sweep_seeds=(0,), ablation_seeds=(),
        text=TemplateBios(per_profession=8), text_seeds=(0,), text_batch_size=8,
    )
    cfg = dataclasses.replace(cfg, dd=dataclasses.replace(cfg.dd, iterations=2, hidden=(8, 8)),
                              standard=dataclasses.replace(cfg.standard, epochs=1, hidden=(8, 8)))
    df = study.run_study(cfg, processes=1, root=tmp_path)
    text = study.text_rows(df)
    assert len(text) == 6 and len(study.feature_rows(df)) == 6 and set(text["data.per_profession"]) == {8}
    assert text["accuracy"].between(0, 1).all()
    lines = embedding_report.text_findings(df, cfg.text_size)
    assert lines[0].startswith("On the template biographies (1 seed, distilled size 2)")
    # Each row stores its test predictions as a count table over the protected attribute, from
    # which its fairness is recomputed exactly.
    for _, row in df.iterrows():
        groups = 2
        counts = stats.counts_from_json(row["group_counts"], num_groups=groups)
        assert 1 - stats.group_measure(counts, "rms_tpr_gap") == pytest.approx(row["fairness"], abs=1e-9)
        assert stats.group_measure(counts, "accuracy") == pytest.approx(row["accuracy"], abs=1e-9)
