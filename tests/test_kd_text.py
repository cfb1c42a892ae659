"""Text teachers and students through fairdd.kd (tiny random transformers, no download)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from fairdd import kd
from fairdd.data import Dataset, StudyData, TemplateBios, template_bios
from fairdd.seeding import subset_seeds


@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory) -> str:
    """A folder holding a tiny BERT encoder (4 layers, 16-d, vocabulary 40, no classification
    head) with random weights: a "pretrained" source that needs no download."""
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny_bert")
    config = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=4, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16, pad_token_id=0)
    torch.manual_seed(123)
    BertModel(config).save_pretrained(folder)
    return str(folder)


def toy_corpus(n: int = 24, length: int = 7, seed: int = 0) -> Dataset:
    """Token ids with right padding; label = whether token 5 occurs, group = whether token 6 does."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(7, 40, (n, length), generator=g)
    ids[:, 0] = 2
    lengths = torch.randint(3, length + 1, (n,), generator=g)
    labels = torch.arange(n) % 2
    groups = (torch.arange(n) // 2) % 2
    ids[labels == 1, 1] = 5
    ids[groups == 1, 2] = 6
    ids[torch.arange(length)[None, :] >= lengths[:, None]] = 0
    return Dataset(name="toy", split="train", inputs=ids, labels=labels, classes=("a", "b"), attributes=groups,
                   attribute_name="group", attribute_values=("x", "y"))


def tiny_config(source: str, **overrides) -> kd.KDConfig:
    teacher = kd.TextNetworkSpec(source=source)
    student = kd.TextNetworkSpec(source=source, layers=(0, 2))
    base = kd.KDConfig(teacher=teacher, student=student, epochs=3, milestones=(2,), lr=0.05, batch_size=8,
                       augment=False, flip=False, temperature=4.0, alpha=0.8)
    return dataclasses.replace(base, **overrides)


def _params(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.state_dict().values()]


def test_distilbert_initialisation_copies_every_other_layer(tiny_source) -> None:
    from transformers import BertModel

    source = BertModel.from_pretrained(tiny_source)
    student = kd.TextNetworkSpec(source=tiny_source, layers=(0, 2)).build(7, 2, seed=0)
    assert len(student.encoder_layers) == 2 and student.model.config.num_hidden_layers == 2
    for kept, original in zip(student.encoder_layers, (0, 2)):
        theirs = source.encoder.layer[original].state_dict()
        ours = kept.state_dict()
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    # Not the skipped layer, and the embeddings come along unchanged.
    assert not torch.equal(student.encoder_layers[1].output.dense.weight, source.encoder.layer[1].output.dense.weight)
    assert torch.equal(student.model.bert.embeddings.word_embeddings.weight, source.embeddings.word_embeddings.weight)
    # The new head is drawn from the seed.
    again = kd.TextNetworkSpec(source=tiny_source, layers=(0, 2)).build(7, 2, seed=0)
    other = kd.TextNetworkSpec(source=tiny_source, layers=(0, 2)).build(7, 2, seed=1)
    assert torch.equal(again.model.classifier.weight, student.model.classifier.weight)
    assert not torch.equal(other.model.classifier.weight, student.model.classifier.weight)
    with pytest.raises(ValueError, match="has 4 encoder layers"):
        kd.TextNetworkSpec(source=tiny_source, layers=(0, 4)).build(7, 2, seed=0)


def test_random_transformer_and_frozen_parts(tiny_source) -> None:
    spec = kd.TextNetworkSpec(source=tiny_source, pretrained=False, config=(("num_hidden_layers", 1),),
                              frozen_embeddings=True, frozen_layers=1)
    model = spec.build(7, 3, seed=0)
    assert len(model.encoder_layers) == 1 and model.model.config.hidden_dropout_prob == 0.0
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in model.named_parameters() if n.startswith("model.classifier") or ".pooler." in n}
    with pytest.raises(ValueError, match="config field 'hidden_sizes'"):
        kd.TextNetworkSpec(source=tiny_source, config=(("hidden_sizes", 3),)).build(7, 2, seed=0)
    with pytest.raises(ValueError, match="int64 token ids"):
        model(torch.zeros(2, 3))
    # Trailing padding columns change nothing.
    ids = toy_corpus().inputs[:4]
    padded = torch.cat([ids, torch.zeros(4, 5, dtype=torch.int64)], 1)
    model.eval()
    torch.testing.assert_close(model(ids), model(padded))


def test_text_teacher_and_students_through_fit(tiny_source, tmp_path) -> None:
    data = toy_corpus()
    cfg = tiny_config(tiny_source)
    spec = cfg.teacher_spec(0)
    teacher, record = kd.teacher(spec, data, root=tmp_path)
    assert len(record["epoch_loss"]) == 3 and not teacher.training
    again, _ = kd.teacher(spec, data, root=tmp_path)  # read back from the cache
    assert all(torch.equal(a, b) for a, b in zip(_params(teacher), _params(again)))
    logits = kd.teacher_logits(spec, data, teacher, root=tmp_path, batch_size=5)
    assert logits.shape == (24, 2)
    # The logits cache: a student distilled from the cached logits equals one distilled from the
    # teacher batch by batch (float tolerance: batches are trimmed to their own longest post).
    cached, log = kd.student(cfg, data, seed=1, cached_logits=logits)
    live, _ = kd.student(cfg, data, seed=1, teacher_model=teacher)
    for a, b in zip(_params(cached), _params(live)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    nds, _ = kd.student(dataclasses.replace(cfg, alpha=0.0, temperature=1.0), data, seed=1)
    assert not all(torch.allclose(a, b) for a, b in zip(_params(cached), _params(nds)))
    assert len(log.epoch_loss) == 3 and log.epoch_lr == [0.05, 0.05, 0.05 * 0.1]
    with pytest.raises(ValueError, match="TextNetworkSpec student trains one by one"):
        kd.students([cfg], data, seed=1, cached_logits=logits)
    with pytest.raises(ValueError, match="augment=True needs images"):
        kd.student(dataclasses.replace(cfg, augment=True), data, seed=1, cached_logits=logits)


def test_text_student_resumes_bit_for_bit(tiny_source, tmp_path) -> None:
    data = toy_corpus()
    cfg = tiny_config(tiny_source)
    logits = torch.randn(len(data), 2, generator=torch.Generator().manual_seed(3))
    straight, log = kd.student(cfg, data, seed=4, cached_logits=logits)
    # Two epochs, "killed", then the third from the checkpoint.
    ckpt = tmp_path / "student.pt"
    kd.student(dataclasses.replace(cfg, epochs=2), data, seed=4, cached_logits=logits, checkpoint=ckpt)
    resumed, log2 = kd.student(cfg, data, seed=4, cached_logits=logits, checkpoint=ckpt)
    assert all(torch.equal(a, b) for a, b in zip(_params(straight), _params(resumed)))
    assert log2.epoch_loss == log.epoch_loss


# ------------------------------------------------------------------ the study and its report


def test_study_configs_and_cells() -> None:
    from fairdd.studies import kd_text

    for profile in ("smoke", "cpu", "paper"):
        config = kd_text.KDTextStudyConfig.for_profile(profile)
        cells = config.cells()
        assert len(cells) == len(config.seeds) * (2 + len(config.temperatures)) and len(set(cells)) == len(cells)
        assert {c.role for c in cells} == {"teacher", "nds", "ds"}
        # One teacher per seed: every cell of a seed names the same teacher spec.
        for s in config.seeds:
            assert len({c.kd.teacher_spec(s) for c in cells if c.seed == s}) == 1
    paper = kd_text.KDTextStudyConfig.for_profile("paper")
    assert paper.data.source == "hatexplain" and paper.temperatures == tuple(float(t) for t in range(1, 11))
    assert (paper.protocol.teacher.source, paper.protocol.student.source) == ("bert-base-uncased", "distilbert-base-uncased")
    assert paper.alpha == 0.8 and len(paper.seeds) == 5
    assert paper.data == StudyData("hatexplain", attributes=("gender", "race"))
    assert (paper.tokenizer, paper.max_length) == ("bert-base-uncased", 128)
    table = kd_text.describe_profile(kd_text.KDTextStudyConfig.for_profile("cpu")).set_index("setting")
    assert list(table.columns) == ["this build", "paper"]
    assert "offline stand-in" in table.loc["data", "this build"] and table.loc["data", "paper"].startswith("HateXplain")
    assert (table.loc["groups", "this build"], table.loc["groups", "paper"]) == ("gender", "gender, race")
    assert table.loc["seeds"].tolist() == ["3", "5"]
    assert "not stated" in table.loc["training", "paper"]
    tokens = ("minilm", 16)
    with pytest.raises(ValueError, match="augment must be False"):
        kd_text.KDTextStudyConfig.for_profile("cpu", protocol=dataclasses.replace(paper.protocol, augment=True))
    with pytest.raises(ValueError, match="> 0 exactly for role 'ds'"):
        kd_text.KDTextCell(paper.data, *tokens, "nds", 0, dataclasses.replace(paper.protocol, alpha=0.8))
    with pytest.raises(ValueError, match="TextNetworkSpec"):
        kd_text.KDTextCell(paper.data, *tokens, "teacher", 0, kd.KDConfig(alpha=0.0))
    # The data: HateXplain with the paper's two groups, or the biographies left as text.
    with pytest.raises(ValueError, match="the paper's groups"):
        kd_text.KDTextStudyConfig.for_profile("paper", data=StudyData("hatexplain", attributes=("gender",)))
    with pytest.raises(ValueError, match="data.source"):
        kd_text.KDTextStudyConfig.for_profile("paper", data=StudyData("mnist"))
    with pytest.raises(ValueError, match="encoder"):
        kd_text.KDTextStudyConfig.for_profile("cpu", data=TemplateBios())
    with pytest.raises(ValueError, match="max_length"):
        kd_text.KDTextStudyConfig.for_profile("cpu", max_length=2)


def test_text_data_specs() -> None:
    from fairdd.studies import kd_text

    # HateXplain's groups are named on the shared data spec; a source without them is refused.
    assert StudyData("hatexplain", attributes=("gender", "race")).attributes == ("gender", "race")
    with pytest.raises(ValueError, match="attributes"):
        StudyData("hatexplain", attributes=("religion",))
    with pytest.raises(ValueError, match="stores no protected attribute"):
        StudyData("mnist", attributes=("gender",))
    # The stand-in: the biographies' two splits, seeded as the other studies' subsets, sized per split.
    spec = kd_text.template_data(train_per_profession=5, test_per_profession=7, data_seed=3)
    assert (spec.train_seed, spec.test_seed) == subset_seeds(3) and spec.encoder is None
    train, test = spec.frames()
    assert train.equals(template_bios(5, skew=0.8, ambiguity=0.4, seed=3))
    assert test.equals(template_bios(7, skew=0.8, ambiguity=0.4, seed=4))
    tr, te, groups = kd_text.study_data(spec, "minilm", 12)
    assert tr.inputs.shape == (20, 12) and te.inputs.shape == (28, 12) and tr.inputs.dtype == torch.int64
    assert tr.classes == te.classes == ("nurse", "surgeon", "software engineer", "teacher")
    assert torch.equal(tr.labels, torch.tensor(train["label"].to_numpy())) and set(groups) == {"gender"}
    assert torch.equal(groups["gender"], torch.tensor(test["attribute"].to_numpy()))


def test_paper_table3_is_the_transcription() -> None:
    from fairdd.studies.kd_text_report import paper_table3

    table = paper_table3()
    assert list(table["model"]) == ["teacher", "nds"] + ["ds"] * 10
    assert table["temperature"].dropna().tolist() == list(range(1, 11))
    teacher, t10 = table.iloc[0], table.iloc[-1]
    assert (teacher["acc"], teacher["eod_gender"], teacher["dpd_gender"], teacher["eod_race"], teacher["dpd_race"]) == (
        75.79, 1.63, 1.10, 1.13, 1.64)
    assert (t10["acc"], t10["eod_gender"], t10["dpd_gender"], t10["eod_race"], t10["dpd_race"]) == (74.27, 1.13, 0.64, 2.64, 1.04)


def _rows(teacher: list[float], ds: dict[float, list[float]], teacher_accuracy: float = 0.75) -> "pd.DataFrame":
    import pandas as pd

    out = []
    for seed, value in enumerate(teacher):
        out.append({"role": "teacher", "seed": seed, "temperature": float("nan"), "value": value})
        out.append({"role": "nds", "seed": seed, "temperature": float("nan"), "value": value + 0.05})
    for t, values in ds.items():
        out += [{"role": "ds", "seed": s, "temperature": t, "value": v} for s, v in enumerate(values)]
    rows = pd.DataFrame(out)
    rows["eod_gender"] = rows["dpd_gender"] = rows.pop("value")
    rows["accuracy"] = 0.7
    rows.loc[rows["role"] == "teacher", "accuracy"] = teacher_accuracy
    rows["alpha"] = [0.8 if r == "ds" else float("nan") for r in rows["role"]]
    rows["source"], rows["dataset"] = "template_bios", "template biographies (offline stand-in)"
    return rows


def test_claims_in_the_four_verdict_classes() -> None:
    from fairdd import stats
    from fairdd.studies import kd_text_report as report

    clear = _rows([0.30, 0.31, 0.29, 0.30], {1.0: [0.30, 0.31, 0.30, 0.29], 10.0: [0.10, 0.11, 0.09, 0.10]})
    table = report.claims(clear)
    assert list(table.columns[:len(stats.CLAIM_COLUMNS)]) == list(stats.CLAIM_COLUMNS)
    verdicts = table.set_index("claim")
    assert verdicts.loc["text: T", "verdict"] == "supported" and verdicts.loc["text: teacher", "verdict"] == "supported"
    # The other way round: the students at T = 10 less fair.
    worse = _rows([0.10, 0.11, 0.09, 0.10], {1.0: [0.10, 0.11, 0.10, 0.09], 10.0: [0.30, 0.31, 0.29, 0.30]})
    assert (report.claims(worse)["verdict"] == "contradicted").all()
    # No change, tight spread: no drop as large as the paper's (TOST at its relative drop).
    flat = _rows([0.30, 0.301, 0.299, 0.30], {1.0: [0.30, 0.301, 0.299, 0.30], 10.0: [0.30, 0.302, 0.298, 0.30]})
    verdicts = report.claims(flat).set_index("claim")
    assert (verdicts["verdict"] == "absent").all() and verdicts["reason"].str.contains("equivalence").all()
    # No clear change, a spread far wider than the paper's drop: untestable, with the reason.
    noisy = _rows([0.30, 0.05, 0.55, 0.30], {1.0: [0.30, 0.02, 0.60, 0.25], 10.0: [0.28, 0.05, 0.58, 0.30]})
    verdicts = report.claims(noisy).set_index("claim")
    assert (verdicts["verdict"] == "untestable here").all()
    assert "could not have detected the paper's effect" in verdicts.loc["text: T", "reason"]
    assert (verdicts["mde"] > verdicts["paper_effect"].abs()).all()
    text = report.findings(noisy)
    assert "**untestable here**" in text and "teacher reaches 75.0%" in text
    # A teacher no better than the hard-label student: nothing to distil.
    same = report.claims(_rows([0.30, 0.31, 0.29, 0.30], {1.0: [0.30, 0.31, 0.30, 0.29], 10.0: [0.10, 0.11, 0.09, 0.10]},
                               teacher_accuracy=0.7))
    assert (same["verdict"] == "untestable here").all() and same["reason"].str.contains("no better").all()
    caption, table = report.table3(clear)
    assert "paper" in caption and list(table["model"])[:2] == ["Teacher", "NDS"] and len(table) == 12
    row10 = table[table["T"] == "10"].iloc[0]
    assert row10["EOD gender (paper)"] == "1.13 ± 0.11" and row10["EOD race (ours)"] == "–"
    assert row10["EOD gender (ours)"] == "10.00 ± 0.82"
    report.plot_figure5(clear)


def test_hatexplain_spec_loads_both_groups_with_the_cells_tokenizer(tmp_path, monkeypatch) -> None:
    """The paper's data through the shared spec: the loader's gender and race groups on the same
    test posts, tokenised by the cell's tokenizer (HateXplain's format, six toy posts)."""
    import json

    from fairdd.data import _spec, load_dataset
    from fairdd.studies import kd_text
    from tests.test_data_loaders import write_hatexplain

    write_hatexplain(tmp_path)
    vocab = tmp_path / "tok"
    vocab.mkdir()
    (vocab / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "post", "says", "p1"]))
    (vocab / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizer", "do_lower_case": True}))
    monkeypatch.setenv("FAIRDD_DATA", str(tmp_path))
    data = kd_text.KDTextStudyConfig.for_profile("paper").data
    train, test, groups = kd_text.study_data(data, str(vocab), 6)
    kd_text.study_data.cache_clear()  # the toy files' splits are not kept for later tests
    _spec._load.cache_clear()
    for split, got in (("train", train), ("test", test)):
        want = load_dataset("hatexplain", split, root=tmp_path, tokenizer=vocab, max_length=6)
        assert torch.equal(got.inputs, want.inputs) and torch.equal(got.labels, want.labels)
    race = load_dataset("hatexplain", "test", root=tmp_path, attribute="race", tokenizer=vocab, max_length=6)
    assert list(groups) == ["gender", "race"]
    assert torch.equal(groups["gender"], test.attributes) and torch.equal(groups["race"], race.attributes)


def test_report_reads_the_groups_from_the_rows() -> None:
    """The report draws one panel and one claim test per measured group (``eod_<group>`` columns),
    not from a list of its own: a second group in the rows is reported, an absent one is not."""
    from fairdd.studies import kd_text_report as report

    rows = _rows([0.30, 0.31, 0.29, 0.30], {1.0: [0.30, 0.31, 0.30, 0.29], 10.0: [0.10, 0.11, 0.09, 0.10]})
    assert report._groups(rows) == ["gender"]
    rows["eod_race"] = rows["dpd_race"] = rows["eod_gender"]
    assert report._groups(rows) == ["gender", "race"]
    assert len(report.plot_figure5(rows).axes) == 2
    assert report.claims(rows).set_index("claim").loc["text: T", "tests"] == 4
    with pytest.raises(ValueError, match="eod_"):
        report._groups(rows.drop(columns=["eod_gender", "eod_race"]))
