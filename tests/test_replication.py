"""fairdd.studies.replication: the summary is the chapters' own claims tables, concatenated."""

import pandas as pd
import pytest

from fairdd import book, stats
from fairdd.studies import replication


def _claims(paper, verdicts):
    return pd.DataFrame([
        stats.claim_row(paper=paper, claim=i + 1, statement="s", chapter=paper.lower(), dataset="d",
                        verdict=stats.Verdict(v, "why"), extra=1)
        for i, v in enumerate(verdicts)
    ])


def test_summary_concatenates_the_chapters_claims_in_order(monkeypatch):
    tables = {"embedding_dd": _claims("A", ["supported"]), "kd_fairness": _claims("B", ["absent", "untestable here"])}
    calls = []

    def fake(study, profile, *, processes=None, root=None):
        calls.append((study, profile))
        return tables[study]

    monkeypatch.setattr(replication, "chapter_claims", fake)
    out = replication.summary("smoke", studies=["embedding_dd", "kd_fairness"])
    assert calls == [("embedding_dd", "smoke"), ("kd_fairness", "smoke")]
    assert list(out.columns) == list(stats.CLAIM_COLUMNS)  # the chapters' extra columns are left out
    assert out["verdict"].tolist() == ["supported", "absent", "untestable here"]
    counts = replication.verdict_counts(out)
    assert counts.columns.tolist() == ["paper", *stats.VERDICTS, "all"]
    assert counts.set_index("paper").loc["B", ["absent", "untestable here", "supported", "all"]].tolist() == [1, 1, 0, 2]


def test_every_chapter_has_a_claims_function():
    for study in replication.CHAPTERS:
        assert callable(replication.claims_module(study).claims)


def test_chapter_claims_rejects_a_study_without_claims():
    with pytest.raises(ValueError, match="study='dd_methods' judges no claims"):
        replication.chapter_claims("dd_methods", "smoke")


def test_claims_html_marks_every_row_for_the_browser_check():
    html = book.claims_html(_claims("P & Q", ["supported", "contradicted"]))
    assert html.count("data-claim-key=") == 2
    assert 'data-claim-key="P &amp; Q | 2 | d" data-verdict="contradicted"' in html
    with pytest.raises(ValueError, match="lack the columns"):
        book.claims_html(pd.DataFrame({"claim": [1]}))
    bad = _claims("P", ["supported"]).assign(verdict="not supported")
    with pytest.raises(ValueError, match="verdicts \\['not supported'\\]"):
        book.claims_html(bad)


def test_chapter_claims_judges_every_book_variant(monkeypatch):
    """A chapter that runs its config more than once (BOOK_VARIANTS) has claims for each run."""
    from fairdd.studies import classwise, config_class

    config_cls = config_class("classwise_dd")
    monkeypatch.setattr(replication, "config_class", lambda study: config_cls)
    seen = []

    def fake_run(config, *, processes=None, root=None):
        seen.append(config.num_classes if hasattr(config, "num_classes") else config)
        return pd.DataFrame({"variant": [len(seen)]})

    monkeypatch.setattr(classwise, "run_study", fake_run)
    monkeypatch.setattr(replication.claims_module("classwise_dd"), "claims",
                        lambda rows: _claims(f"v{int(rows['variant'][0])}", ["supported"]))
    out = replication.chapter_claims("classwise_dd", "smoke")
    assert len(seen) == len(classwise.BOOK_VARIANTS) == len(out) >= 2
    assert out["paper"].tolist() == [f"v{i + 1}" for i in range(len(seen))]
