"""What replicates: every chapter's claim verdicts in one table.

The replication summary page is built from the chapters' own functions on the chapters' own
rows: for each study that judges claims, :func:`chapter_claims` reads (or, where missing,
computes) the study's runs at a profile through its ``run_study`` and calls its report's
``claims(rows)``, which returns :data:`fairdd.stats.CLAIM_COLUMNS`. :func:`summary`
concatenates them, so the summary cannot disagree with a chapter built from the same runs
(the book's browser test compares the rendered pages).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType

import pandas as pd

from fairdd.stats import CLAIM_COLUMNS, VERDICTS
from fairdd.studies import STUDIES, config_class, study_module

__all__ = ["CHAPTERS", "chapter_claims", "claims_module", "summary", "verdict_counts"]

#: The studies whose chapters judge a paper's claims, in the book's order (``dd_methods`` is a
#: methods page and judges none).
CHAPTERS: tuple[str, ...] = ("embedding_dd", "bias_dd", "classwise_dd", "kd_fairness", "kd_text", "compare_dd_kd")


def claims_module(study: str) -> ModuleType:
    """The module whose ``claims(rows)`` judges ``study``'s claims: its ``*_report`` module if
    it has one, else the study module itself."""
    module = study_module(study)
    try:
        report = importlib.import_module(f"{STUDIES[study]}_report")
    except ModuleNotFoundError:
        report = module
    if not callable(getattr(report, "claims", None)):
        raise TypeError(f"study {study!r}: neither {STUDIES[study]}_report nor {STUDIES[study]} defines claims(rows)")
    return report


def chapter_claims(study: str, profile: str, *, processes: int | None = None, root: str | None = None) -> pd.DataFrame:
    """``study``'s claim verdicts at ``profile``, exactly as its chapter computes them."""
    if study not in CHAPTERS:
        raise ValueError(f"study={study!r} judges no claims here; choose one of {list(CHAPTERS)}")
    module = study_module(study)
    frames = []
    # Every configuration the chapter runs (BOOK_VARIANTS: e.g. the class-wise chapter's 10- and
    # 100-class tasks), each judged on its own rows, as the page does.
    for variant in getattr(module, "BOOK_VARIANTS", ({},)):
        config = config_class(study).for_profile(profile, **variant)
        rows = module.run_study(config, processes=processes, root=root)
        claims = claims_module(study).claims(rows)
        missing = [c for c in CLAIM_COLUMNS if c not in claims.columns]
        if missing:
            raise TypeError(f"study {study!r}: claims(rows) lacks the columns {missing} (build rows with stats.claim_row)")
        frames.append(claims)
    return pd.concat(frames, ignore_index=True)


def summary(profile: str, *, studies: Sequence[str] = CHAPTERS, processes: int | None = None,
            root: str | None = None) -> pd.DataFrame:
    """Every claim of every chapter at ``profile``: :data:`fairdd.stats.CLAIM_COLUMNS`, one row per
    claim and data set, in the book's order."""
    frames = [chapter_claims(s, profile, processes=processes, root=root)[list(CLAIM_COLUMNS)] for s in studies]
    return pd.concat(frames, ignore_index=True)


def verdict_counts(claims: pd.DataFrame) -> pd.DataFrame:
    """How many claims (rows) each paper has in each verdict class (every class a column)."""
    table = pd.crosstab(claims["paper"], pd.Categorical(claims["verdict"], categories=VERDICTS))
    table = table.reindex(columns=list(VERDICTS), fill_value=0)
    table.columns.name = None
    table["all"] = table.sum(axis=1)
    return table.reset_index()
