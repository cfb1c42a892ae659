"""Fairness of dataset distillation on feature vectors (Han et al. 2022, *Towards Fair
Supervised Dataset Distillation for Text Classification*), on Adult, COMPAS, MOJI, BIOS.

One call, :func:`run_study`, trains every network the chapter needs on the shared study
skeleton (:class:`fairdd.studies.Study`, run store folder ``"embedding_dd"``: one finished run
per data set × method × size × seed, so a re-run computes only what is new) in parallel worker
processes, and returns tidy rows. The other functions turn those rows into the paper's tables and figures:
Table 1 (:func:`table1`), Figure 2 (:func:`size_sweep`, :func:`plot_size_sweep`), Tables 2–3
and Figure 3 (:func:`cost_table`, :func:`plot_reuse`); the paper's claims judged against our
numbers, the RMS TPR gap beside its noise floor and the text section's findings are in
:mod:`fairdd.studies.embedding_report`. :data:`PAPER_TABLE1` holds the paper's own MOJI and
BIOS numbers, to be shown beside ours and labelled as the paper's.

The chapter's text section is cells of the same study: :func:`fairdd.data.template_bios` writes one-line
biographies (written for this book, not a benchmark), a frozen encoder
(:func:`fairdd.data.embed_texts`) turns them into document vectors, and the same six models are
trained on them (:class:`fairdd.data.TemplateBios`, ``data`` of those cells), so their rows are recorded and
verified like every other; :func:`fairdd.studies.embedding_report.text_findings` states what they
show, from the rows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from fairdd import results, stats
from fairdd.config import Profile, check_choice, check_int, check_number, check_profile, check_sequence
from fairdd.data import TEMPLATE_PROFESSIONS, Dataset, StudyData, TemplateBios, embed_texts, feature_names
from fairdd.debias import StandardConfig, train_standard
from fairdd.distill.embedding import DEBIAS, EmbeddingDDConfig, distill_embeddings, predict, retrain
from fairdd.metrics import accuracy, distance_to_optimum, rms_tpr_gap
from fairdd.studies import _work
from fairdd.studies._study import Root, Study, mean_std
from fairdd.studies._work import Work
from fairdd.training import default_device

__all__ = [
    "EmbeddingCell",
    "EmbeddingStudyConfig",
    "METHODS",
    "PAPER_TABLE1",
    "STUDY",
    "cost_table",
    "cell_rows",
    "cell_work",
    "describe_profile",
    "plot_reuse",
    "plot_size_sweep",
    "run_study",
    "size_sweep",
    "table1",
    "table1_with_paper",
    "training_times",
]

_TEXT = ("moji", "bios")  # data sets of document vectors, no protected input column to drop
_SOURCES = ("adult", "compas", "german", "moji", "bios")
#: The protected attribute each feature-vector source's loader stores (StudyData.attributes).
_ATTRIBUTE = {"adult": ("sex",), "compas": ("race",), "german": ("sex",), "moji": (), "bios": ()}

#: Table 1's rows in the paper's order: (label, method, debias).
METHODS: tuple[tuple[str, str, str], ...] = (
    ("STANDARD", "standard", "none"),
    ("STANDARD + BTEO", "standard", "bteo"),
    ("STANDARD + ADV", "standard", "adv"),
    ("DD", "dd", "none"),
    ("DD + BTEO", "dd", "bteo"),
    ("DD + ADV", "dd", "adv"),
)
_LABEL = {(m, d): label for label, m, d in METHODS}

#: The paper's Table 1 (Han et al. 2022): test accuracy, fairness (1 − RMS TPR gap), DTO, in %,
#: mean ± std over 5 seeds (DTO without std). These are the paper's numbers, not ours.
PAPER_TABLE1 = pd.DataFrame(
    [
        ("MOJI", "STANDARD", 72.3, 0.5, 61.2, 1.4, 47.7), ("MOJI", "STANDARD + BTEO", 75.4, 0.1, 87.7, 0.4, 27.5),
        ("MOJI", "STANDARD + ADV", 75.6, 0.7, 89.3, 0.6, 26.6), ("MOJI", "DD", 71.3, 1.8, 62.4, 5.9, 47.3),
        ("MOJI", "DD + BTEO", 75.7, 0.4, 88.8, 1.1, 26.8), ("MOJI", "DD + ADV", 72.8, 1.5, 70.7, 9.1, 40.0),
        ("BIOS", "STANDARD", 82.3, 0.2, 85.1, 0.8, 23.2), ("BIOS", "STANDARD + BTEO", 83.8, 0.2, 90.5, 0.9, 18.7),
        ("BIOS", "STANDARD + ADV", 81.7, 0.2, 90.7, 0.8, 20.5), ("BIOS", "DD", 79.7, 0.4, 86.7, 1.4, 24.3),
        ("BIOS", "DD + BTEO", 73.2, 3.2, 90.7, 1.3, 28.3), ("BIOS", "DD + ADV", 80.3, 0.5, 87.7, 1.2, 23.2),
    ],
    columns=["dataset", "method", "accuracy", "accuracy_std", "fairness", "fairness_std", "dto"],
)


#: The ``dataset`` label of the text section's rows.
TEMPLATE = "template_bios"


@dataclass(frozen=True)
class EmbeddingCell:
    """One network of the study, the unit the run store keys on.

    ``method`` ``"standard"`` trains on the full data with ``standard``; ``"dd"`` distils with
    ``dd`` and retrains on the distilled set. ``data`` is a feature-vector data set
    (:class:`fairdd.data.StudyData`) or the text section's template biographies
    (:class:`TemplateBios`). ``include_protected=False`` drops the protected attribute's input
    columns of a tabular data set (the attribute is still known for BTEO, ADV and evaluation).
    """

    data: StudyData | TemplateBios
    include_protected: bool
    method: Literal["standard", "dd"]
    dd: EmbeddingDDConfig | None = None
    standard: StandardConfig | None = None
    count_tables: bool = dataclasses.field(default=False, metadata={"run_id": "unless_default"})

    def __post_init__(self) -> None:
        if not isinstance(self.count_tables, bool):
            raise ValueError(f"count_tables={self.count_tables!r} must be True or False")
        if not isinstance(self.data, (StudyData, TemplateBios)):
            raise ValueError(f"data={self.data!r} must be a fairdd.data.StudyData or a TemplateBios")
        if isinstance(self.data, StudyData):
            check_choice("data.source", self.data.source, _SOURCES)
        if isinstance(self.data, TemplateBios) and self.data.encoder is None:
            raise ValueError(f"data={self.data!r}: the study embeds the lines, so data.encoder must name an encoder")
        if not self.include_protected and (isinstance(self.data, TemplateBios) or self.data.source in _TEXT):
            raise ValueError(f"include_protected=False: {dataset_name(self.data)!r} has no protected input column to drop")
        check_choice("method", self.method, ("standard", "dd"))
        if (self.method == "dd") != (self.dd is not None) or (self.method == "standard") != (self.standard is not None):
            raise ValueError(f"method={self.method!r} needs exactly its own config (dd= for 'dd', standard= for 'standard')")

    @property
    def inner(self) -> EmbeddingDDConfig | StandardConfig:
        return self.dd if self.dd is not None else self.standard  # type: ignore[return-value]


def dataset_name(data: StudyData | TemplateBios) -> str:
    """The ``dataset`` column of a cell's rows: the source's name, or ``"template_bios"``."""
    return TEMPLATE if isinstance(data, TemplateBios) else data.source


def feature_data(source: str) -> StudyData:
    """A feature-vector data set of the study: every row of both splits, with its loader's
    protected attribute."""
    check_choice("source", source, _SOURCES)
    return StudyData(source, attributes=_ATTRIBUTE[source])


@dataclass(frozen=True)
class EmbeddingStudyConfig:
    """What the chapter runs; :meth:`for_profile` gives the three profiles.

    Attributes
    ----------
    profile : which profile produced these settings (reported on the page).
    data : the feature-vector data sets to study (:func:`feature_data`).
    seeds : seeds of Table 1 (and of the baselines).
    table_size : distilled size of Table 1 (paper 10).
    sizes : distilled sizes of Figure 2 and Table 2 (paper 1–20).
    sweep_seeds : seeds of the size sweep.
    ablation_seeds : seeds of the variant with the protected attribute removed from the
        inputs (empty: no such variant).
    dd, standard : templates; size, debias and seed are set per run.
    convergence : per data set, the accuracy below which a run counts as unconverged and is
        dropped from the tables (the paper: MOJI 0.65, BIOS 0.60). For Adult (majority class
        75.4 % of the test split) and COMPAS (53 %) we set it just above predicting the majority.
    text : the text section's data (``None``: no text section).
    text_seeds : seeds of the text section's six models.
    text_size : distilled size of the text section.
    text_batch_size : the real minibatch (DD) and the baselines' batch on the text section
        (its training split is small).
    count_tables : each model's row also stores its test predictions as a count table over the
        protected attribute (``group_counts``, :func:`fairdd.stats.group_counts`): the RMS TPR
        gap's bootstrap interval and noise floor come from it. A new row column, so part of the
        run id when on (off: the rows of runs made before the tables, whose pages say so).
    """

    profile: Profile = "cpu"
    data: tuple[StudyData, ...] = (feature_data("adult"), feature_data("compas"))
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    table_size: int = 10
    sizes: tuple[int, ...] = (1, 5, 10, 20)
    sweep_seeds: tuple[int, ...] = (0, 1)
    ablation_seeds: tuple[int, ...] = (0, 1, 2)
    dd: EmbeddingDDConfig = EmbeddingDDConfig()
    standard: StandardConfig = StandardConfig()
    convergence: tuple[tuple[str, float], ...] = (("adult", 0.76), ("compas", 0.55), ("moji", 0.65), ("bios", 0.60))
    text: TemplateBios | None = TemplateBios()
    text_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    text_size: int = 2
    text_batch_size: int = 64
    count_tables: bool = True

    def __post_init__(self) -> None:
        check_profile(self.profile)
        if not isinstance(self.count_tables, bool):
            raise ValueError(f"count_tables={self.count_tables!r} must be True or False")
        if not isinstance(self.data, tuple) or not all(isinstance(d, StudyData) for d in self.data):
            raise ValueError(f"data={self.data!r} must be a tuple of fairdd.data.StudyData (feature_data(source))")
        check_sequence("data", [d.source for d in self.data], lambda f, v: check_choice(f, v, _SOURCES))
        if len({d.source for d in self.data}) != len(self.data):
            raise ValueError(f"data={[d.source for d in self.data]!r} names a data set twice")
        check_sequence("seeds", self.seeds, lambda f, v: check_int(f, v, minimum=0))
        check_sequence("sizes", self.sizes, lambda f, v: check_int(f, v, minimum=1))
        check_sequence("sweep_seeds", self.sweep_seeds, lambda f, v: check_int(f, v, minimum=0))
        for i, s in enumerate(self.ablation_seeds):
            check_int(f"ablation_seeds[{i}]", s, minimum=0)
        check_int("table_size", self.table_size, minimum=1)
        for i, pair in enumerate(self.convergence):
            if len(pair) != 2 or not isinstance(pair[0], str):
                raise ValueError(f"convergence[{i}]={pair!r} must be a (dataset, accuracy) pair")
            check_number(f"convergence[{i}]", pair[1], minimum=0.0, maximum=1.0)
        if self.text is not None and not isinstance(self.text, TemplateBios):
            raise ValueError(f"text={self.text!r} must be a TemplateBios or None")
        for i, s in enumerate(self.text_seeds):
            check_int(f"text_seeds[{i}]", s, minimum=0)
        check_int("text_size", self.text_size, minimum=1)
        check_int("text_batch_size", self.text_batch_size, minimum=1)

    def threshold(self, dataset: str) -> float:
        """Convergence threshold of ``dataset`` (0 where none is set)."""
        return dict(self.convergence).get(dataset, 0.0)

    @classmethod
    def for_profile(
        cls, profile: Profile, *, sources: tuple[str, ...] | None = None, **overrides: Any
    ) -> "EmbeddingStudyConfig":
        """The ``"smoke"``, ``"cpu"`` or ``"paper"`` settings, with ``overrides`` on top
        (``sources``: the data sets by name, e.g. ``("adult",)``, instead of the profile's).

        - ``"paper"``: 7 seeds, sizes 1–20, the reference's MOJI schedule (4900 outer steps,
          halved every 980) with the paper's stated 3 distillation epochs (the reference's MOJI
          script passes 5, its BIOS script 3), fairlib's baselines (≤ 100 passes, patience 5).
          Meant for a GPU.
        - ``"cpu"``: the chapter in about 15 minutes on 2 shared cores: 5 seeds for Table 1,
          sizes 1, 5, 10, 20 on 2 seeds, 3 distillation epochs (the reference's BIOS setting)
          and 150 outer steps halved every 30 (the paper's schedule shape, 33× shorter),
          baselines ≤ 30 passes with patience 3; the text section on 60 lines per profession,
          5 seeds.
        - ``"smoke"``: every code path in seconds; the numbers mean nothing.
        """
        check_profile(profile)
        if profile == "paper":
            base = cls(
                profile="paper", seeds=tuple(range(7)), sizes=tuple(range(1, 21)), sweep_seeds=tuple(range(7)),
                ablation_seeds=tuple(range(7)), dd=EmbeddingDDConfig(distill_epochs=3), standard=StandardConfig(),
                text_seeds=tuple(range(7)),
            )
        elif profile == "cpu":
            base = cls(
                profile="cpu",
                dd=EmbeddingDDConfig(distill_epochs=3, iterations=150, decay_every=30),
                standard=StandardConfig(epochs=30, patience=3),
            )
        else:
            base = cls(
                profile="smoke", seeds=(0, 1), table_size=2, sizes=(1, 2), sweep_seeds=(0,), ablation_seeds=(0,),
                dd=EmbeddingDDConfig(distill_epochs=1, iterations=4, decay_every=2, hidden=(32, 32)),
                standard=StandardConfig(epochs=2, patience=None, hidden=(32, 32)),
                text=TemplateBios(per_profession=8), text_seeds=(0,),
            )
        if sources is not None:
            if isinstance(sources, str) or not isinstance(sources, (tuple, list)):
                raise ValueError(f"sources={sources!r} must be a tuple of data set names, e.g. ('adult', 'compas')")
            check_sequence("sources", sources, lambda f, v: check_choice(f, v, _SOURCES))
            overrides = {"data": tuple(feature_data(s) for s in sources), **overrides}
        return dataclasses.replace(base, **overrides)

    def cells(self) -> list[EmbeddingCell]:
        """Every network the chapter needs (duplicates removed, in a stable order): the feature-vector
        data sets' cells, then the text section's."""
        out: list[EmbeddingCell] = []

        def add(data: StudyData | TemplateBios, protected: bool, method: str, debias: str, seed: int, size: int,
                batch_size: int | None = None) -> None:
            batch = {} if batch_size is None else {"batch_size": batch_size}
            if method == "dd":
                cfg = dataclasses.replace(self.dd, size=size, debias=debias, seed=seed, **batch)
                run = EmbeddingCell(data, protected, "dd", dd=cfg, count_tables=self.count_tables)
            else:
                cfg = dataclasses.replace(self.standard, debias=debias, seed=seed, **batch)
                run = EmbeddingCell(data, protected, "standard", standard=cfg, count_tables=self.count_tables)
            if run not in out:
                out.append(run)

        for data in self.data:
            for _, method, debias in METHODS:
                for seed in self.seeds:
                    add(data, True, method, debias, seed, self.table_size)
                for seed in self.ablation_seeds if data.source not in _TEXT else ():
                    add(data, False, method, debias, seed, self.table_size)
            for debias in DEBIAS:
                for size in self.sizes:
                    for seed in self.sweep_seeds:
                        add(data, True, "dd", debias, seed, size)
        if self.text is not None:
            for _, method, debias in METHODS:
                for seed in self.text_seeds:
                    add(self.text, True, method, debias, seed, self.text_size, self.text_batch_size)
        return out


def describe_profile(config: EmbeddingStudyConfig) -> pd.DataFrame:
    """The settings of ``config`` beside the ``"paper"`` profile's: columns ``setting``,
    ``this build``, ``paper`` (the paper profile: the paper's protocol; the text section is
    this book's, so its paper column is the paper profile's own)."""
    paper = EmbeddingStudyConfig.for_profile("paper")

    def sizes(c: EmbeddingStudyConfig) -> str:
        s = sorted(c.sizes)
        return f"{s[0]}–{s[-1]}" if len(s) > 3 and s == list(range(s[0], s[-1] + 1)) else ", ".join(map(str, s))

    def text(c: EmbeddingStudyConfig, what: str) -> Any:
        if c.text is None:
            return "–"
        return {"lines": c.text.per_profession, "seeds": len(c.text_seeds), "size": c.text_size}[what]

    settings = [
        ("profile", lambda c: c.profile),
        ("data sets", lambda c: ", ".join(d.source for d in c.data)),
        ("seeds (Table 1)", lambda c: len(c.seeds)),
        ("distilled size (Table 1)", lambda c: c.table_size),
        ("sizes (Figure 2)", sizes),
        ("seeds (Figure 2)", lambda c: len(c.sweep_seeds)),
        ("seeds (protected attribute removed)", lambda c: len(c.ablation_seeds)),
        ("outer steps", lambda c: c.dd.iterations),
        ("halve the outer lr every", lambda c: c.dd.decay_every),
        ("distillation epochs", lambda c: c.dd.distill_epochs),
        ("real minibatch", lambda c: c.dd.batch_size),
        ("hidden layers", lambda c: " × ".join(map(str, c.dd.hidden))),
        ("baseline passes (max)", lambda c: c.standard.epochs),
        ("baseline patience", lambda c: "none" if c.standard.patience is None else c.standard.patience),
        ("text section: lines per profession", lambda c: text(c, "lines")),
        ("text section: seeds", lambda c: text(c, "seeds")),
        ("text section: distilled size", lambda c: text(c, "size")),
    ]
    # The paper's own data sets are MOJI and BIOS (not shippable here; the paper profile runs our
    # data sets with the paper's protocol); the text section is this book's, not the paper's.
    said = {"data sets": f"MOJI, BIOS (paper profile: {', '.join(d.source for d in paper.data)})"}
    return pd.DataFrame([
        {"setting": name, "this build": str(get(config)),
         "paper": said.get(name, "not in the paper" if name.startswith("text section") else str(get(paper)))}
        for name, get in settings
    ])


@functools.lru_cache(maxsize=8)
def _splits(data: StudyData | TemplateBios, include_protected: bool) -> tuple[Dataset, Dataset]:
    """The cell's two splits, cached per worker process (a worker runs many jobs on the same data)."""
    if isinstance(data, TemplateBios):
        return _template_splits(data)
    train, test, _ = data.load()
    if not include_protected:
        # The loader's encoding is per column (one-hot, or standardised by the training split's
        # own statistics), so dropping the protected columns after it gives the inputs that
        # load_dataset(..., include_protected=False) gives.
        names = feature_names(data.source)
        kept = set(feature_names(data.source, include_protected=False))
        index = torch.tensor([i for i, n in enumerate(names) if n in kept])
        train, test = (dataclasses.replace(s, inputs=s.inputs.index_select(1, index)) for s in (train, test))
    return train, test


def _template_splits(data: TemplateBios) -> tuple[Dataset, Dataset]:
    from fairdd.data import default_text_encoder

    encoder = default_text_encoder() if data.encoder == "all-MiniLM-L6-v2" else data.encoder
    out = []
    for split, frame in zip(("train", "test"), data.frames()):
        vectors = embed_texts(frame["text"].tolist(), encoder, device=default_device())
        out.append(Dataset(
            TEMPLATE, split, vectors, torch.tensor(frame["label"].to_numpy()), TEMPLATE_PROFESSIONS,
            torch.tensor(frame["attribute"].to_numpy()), "gender", ("male", "female"),
        ))
    return out[0], out[1]


@functools.lru_cache(maxsize=1)
def _warm_up() -> None:
    """Pay once per process, before any timer starts, what the first run would otherwise pay.

    The first ``torch.optim.Adam`` of a process imports ``torch._dynamo`` (seconds of CPU);
    without this the first run of every worker would look seconds slower.
    """
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


@contextlib.contextmanager
def _clocks() -> Iterator[dict[str, float]]:
    """Wall and process-CPU seconds of the ``with`` body (CUDA work is synchronised first).

    On a shared CPU the wall time grows with whatever else runs; the CPU time of a one-thread
    process does not, so the cost tables can use either (``clock=``).
    """
    out: dict[str, float] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    yield out
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    out["wall"], out["cpu"] = time.perf_counter() - wall, time.process_time() - cpu


def cell_rows(run: EmbeddingCell, root: Root = None) -> list[dict[str, Any]]:
    """Train the cell's network and score it on the test split: one tidy row (``root`` unused:
    nothing but the row is stored). It computes on :func:`fairdd.training.default_device`."""
    _warm_up()
    device = default_device()
    train, test = _splits(run.data, run.include_protected)
    groups = int(max(train.attributes.max(), test.attributes.max())) + 1
    row: dict[str, Any] = {"method_label": _LABEL[(run.method, run.inner.debias)], "debias": run.inner.debias, "seed": run.inner.seed}
    nan = float("nan")
    if run.method == "dd":
        with _clocks() as distill_time:
            dd = distill_embeddings(train, run.dd, device=device, num_groups=groups)
        with _clocks() as retrain_time:
            model, params, _ = retrain(dd.steps, dd.theta0, distill_epochs=run.dd.distill_epochs, hidden=run.dd.hidden, device=device)
        row |= {
            "size": run.dd.size, "distill_seconds": distill_time["wall"], "distill_cpu_seconds": distill_time["cpu"],
            "retrain_seconds": retrain_time["wall"], "retrain_cpu_seconds": retrain_time["cpu"],
            "train_seconds": nan, "train_cpu_seconds": nan,
            "iterations": dd.iterations, "train_rows": dd.train_rows, "discriminator_steps": dd.discriminator_steps,
            "final_loss": float(np.mean(dd.history["loss"][-10:])),
            "adv_loss_end": float(np.mean(dd.history["adv_loss"][-10:])) if "adv_loss" in dd.history else nan,
        }
    else:
        with _clocks() as train_time:
            std = train_standard(train, run.standard, device=device, num_groups=groups)
        model, params = std.model, std.params
        row |= {
            "size": 0, "distill_seconds": nan, "distill_cpu_seconds": nan, "retrain_seconds": nan, "retrain_cpu_seconds": nan,
            "train_seconds": train_time["wall"], "train_cpu_seconds": train_time["cpu"],
            "iterations": std.epochs, "train_rows": std.train_rows, "discriminator_steps": 0, "final_loss": nan,
            "adv_loss_end": nan,
        }
    pred = predict(model, params, test.inputs.to(device)).cpu()
    acc = accuracy(test.labels, pred)
    fair = 1.0 - rms_tpr_gap(test.labels, pred, sensitive_features=test.attributes, num_classes=test.num_classes)
    row |= {"accuracy": acc, "fairness": fair, "dto": float(distance_to_optimum(acc, fair))}
    if run.count_tables:
        # The test predictions as a count table over the protected attribute: enough for the
        # RMS TPR gap, its bootstrap interval and its noise floor (fairdd.stats.check_measure).
        row["group_counts"] = stats.counts_to_json(stats.group_counts(
            test.labels, pred, test.attributes, num_classes=test.num_classes, num_groups=groups))
    return [row]


def cell_work(cell: EmbeddingCell) -> list[Work]:
    """What the cell trains (:mod:`fairdd.studies._work`): the DD steps and the replay, or the
    STANDARD baseline, on its training split's size and shape."""
    n, shape, classes, groups, bteo_share = _work_data(cell.data, cell.include_protected)
    counting = _work.embedding_dd if cell.method == "dd" else _work.standard
    return counting(cell.inner, n=n, shape=shape, classes=classes, groups=groups, bteo_share=bteo_share)


@functools.lru_cache(maxsize=16)
def _work_data(data: StudyData | TemplateBios, include_protected: bool) -> tuple[int, tuple[int, ...], int, int, float]:
    """``(n, input shape, classes, groups, BTEO's balanced share)`` of a cell's training split; the
    text section's without embedding the lines (the encoder's width from its config)."""
    from fairdd.debias import balanced_indices
    from fairdd.seeding import BALANCE, stream_generator

    if isinstance(data, TemplateBios):
        frame = data.frames()[0]
        labels, attributes = torch.tensor(frame["label"].to_numpy()), torch.tensor(frame["attribute"].to_numpy())
        shape, classes = (_encoder_width(data.encoder),), len(TEMPLATE_PROFESSIONS)
    else:
        train = _splits(data, include_protected)[0]
        labels, attributes, shape, classes = train.labels, train.attributes, tuple(train.inputs.shape[1:]), train.num_classes
    kept = len(balanced_indices(labels, attributes, generator=stream_generator(0, BALANCE)))
    return len(labels), shape, classes, int(attributes.max()) + 1, kept / len(labels)


def _encoder_width(encoder: str) -> int:
    from transformers import AutoConfig

    from fairdd.data import default_text_encoder

    return int(AutoConfig.from_pretrained(default_text_encoder() if encoder == "all-MiniLM-L6-v2" else encoder).hidden_size)


STUDY = Study(name="embedding_dd", compute=cell_rows, work=cell_work)
_percent = functools.partial(mean_std, scale=100)


def run_study(config: EmbeddingStudyConfig, *, processes: int | None = None, root: Root = None) -> pd.DataFrame:
    """Compute (or load) every cell of ``config``: one row per network.

    Unfinished cells go to ``processes`` worker processes (one torch thread each; always 1 when
    :func:`fairdd.training.default_device` is a GPU); the finished ones are read from the run
    store. Columns: the cell's config (dotted: ``data.source``, ``dd.size``, ...; the text
    section's ``data.per_profession``, ...), then ``dataset`` (:func:`dataset_name`),
    ``method_label, debias, seed, size, accuracy, fairness, dto``, the wall and CPU seconds of
    each phase (``distill_seconds``, ``distill_cpu_seconds``, ``retrain_…``, ``train_…``),
    ``iterations, train_rows, discriminator_steps, final_loss, adv_loss_end`` (the
    discriminator's loss over the last 10 outer steps), ``group_counts`` (the test predictions as a
    :func:`fairdd.stats.group_counts` table over the protected attribute, JSON), the provenance
    columns (``device``: where each run computed), plus ``converged`` (accuracy ≥ the data set's
    threshold) and ``table_size`` (``config.table_size``, or ``config.text_size`` on the text
    section's rows: the distilled size their Table 1 and claims are read at).
    """
    cells = config.cells()
    df = STUDY.run(cells, processes=1 if default_device() != "cpu" else processes, root=root)
    names = {results.run_id(c): dataset_name(c.data) for c in cells}
    df.insert(1, "dataset", df["run_id"].map(names))
    df["converged"] = df["accuracy"] >= df["dataset"].map(config.threshold)
    df["table_size"] = np.where(df["dataset"] == TEMPLATE, config.text_size, config.table_size)
    return df


def text_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The text section's rows of :func:`run_study`'s frame."""
    return df[df["dataset"] == TEMPLATE]


def feature_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Every row but the text section's (the paper's tables and figures)."""
    return df[df["dataset"] != TEMPLATE]


def table1(df: pd.DataFrame, size: int, *, include_protected: bool = True) -> pd.DataFrame:
    """Table 1: accuracy, fairness, DTO (%, mean ± std over converged seeds) per data set × method.

    DTO is that of the mean accuracy and mean fairness, as the paper's (its DTO has no std);
    ``kept`` counts converged runs and ``dropped`` those the convergence filter removed.
    """
    sel = df[(df["include_protected"] == include_protected) & ((df["method"] == "standard") | (df["size"] == size))]
    sel = sel[sel["seed"].isin(_table_seeds(df, include_protected))]
    rows = []
    for dataset in dict.fromkeys(sel["dataset"]):
        for label, method, debias in METHODS:
            part = sel[(sel["dataset"] == dataset) & (sel["method"] == method) & (sel["debias"] == debias)]
            if part.empty:
                continue
            ok = part[part["converged"]]
            acc, fair = ok["accuracy"], ok["fairness"]
            dto = 100 * distance_to_optimum(acc.mean(), fair.mean()) if len(ok) else np.nan
            rows.append({
                "dataset": dataset, "method": label,
                "accuracy": _percent(acc) if len(ok) else "–", "fairness": _percent(fair) if len(ok) else "–",
                "dto": round(dto, 1), "kept": len(ok), "dropped": int(len(part) - len(ok)),
            })
    return pd.DataFrame(rows)


def table1_with_paper(ours: pd.DataFrame) -> pd.DataFrame:
    """Our Table 1 beside the paper's: one row per method, columns (source · data set, metric).

    Our columns are headed ``ours: <data set>``, the paper's ``paper: MOJI`` / ``paper: BIOS``.
    """
    paper = PAPER_TABLE1.assign(
        accuracy=[f"{a:.1f} ± {s:.1f}" for a, s in zip(PAPER_TABLE1["accuracy"], PAPER_TABLE1["accuracy_std"])],
        fairness=[f"{a:.1f} ± {s:.1f}" for a, s in zip(PAPER_TABLE1["fairness"], PAPER_TABLE1["fairness_std"])],
        source="paper",
    )
    both = pd.concat([ours.assign(source="ours"), paper], ignore_index=True)
    both["column"] = both["source"] + ": " + both["dataset"]
    wide = both.pivot(index="method", columns="column", values=["accuracy", "fairness", "dto"])
    wide = wide.swaplevel(0, 1, axis=1)
    order = list(dict.fromkeys(both["column"]))
    wide = wide.reindex(columns=[(c, m) for c in order for m in ("accuracy", "fairness", "dto")])
    return wide.reindex([label for label, _, _ in METHODS])


def training_times(df: pd.DataFrame, size: int, *, clock: Literal["wall", "cpu"] = "wall") -> pd.DataFrame:
    """Table 3: mean seconds to train each model (STANDARD variants on the full data; DD
    variants = retraining on a distilled set of ``size``), by data set."""
    t, r = _clock_column("train_seconds", clock), _clock_column("retrain_seconds", clock)
    sel = df[df["include_protected"] & ((df["method"] == "standard") | (df["size"] == size))]
    seconds = sel[t].where(sel["method"] == "standard", sel[r])
    out = sel.assign(seconds=seconds).groupby(["method_label", "dataset"])["seconds"].mean().unstack("dataset")
    return out.reindex([label for label, _, _ in METHODS])


def _table_seeds(df: pd.DataFrame, include_protected: bool) -> list[int]:
    std = df[(df["method"] == "standard") & (df["include_protected"] == include_protected)]
    return sorted(std["seed"].unique().tolist())


def size_sweep(df: pd.DataFrame) -> pd.DataFrame:
    """Figure 2's numbers: mean and std of accuracy, fairness, DTO by data set, DD method and size."""
    dd = df[(df["method"] == "dd") & df["include_protected"] & df["converged"]]
    out = dd.groupby(["dataset", "method_label", "size"])[["accuracy", "fairness", "dto"]].agg(["mean", "std", "count"])
    out.columns = [f"{a}_{b}" for a, b in out.columns]
    return out.reset_index()


def _clock_column(name: str, clock: str) -> str:
    check_choice("clock", clock, ("wall", "cpu"))
    return name if clock == "wall" else name.replace("_seconds", "_cpu_seconds")


def cost_table(df: pd.DataFrame, *, clock: Literal["wall", "cpu"] = "wall") -> pd.DataFrame:
    """Tables 2–3 and Figure 3: mean seconds by data set, method and size, and the reuse factor.

    The reuse factor (the paper's Figure 3) is how many trainings a distilled set must replace
    before distilling it paid off: ``distill / (standard − retrain)``, with the STANDARD
    baseline of the same debiasing (e.g. 3453 / (96 − 2) ≈ 36.7 for BIOS DD at size 10).
    ``clock="cpu"`` uses process CPU seconds (steadier on a shared CPU; meaningless on a GPU).
    Columns keep the names ``distill_seconds``, ``retrain_seconds``, ``standard_seconds``.
    """
    d, r, t = (_clock_column(c, clock) for c in ("distill_seconds", "retrain_seconds", "train_seconds"))
    sel = df[df["include_protected"]]
    std = sel[sel["method"] == "standard"].groupby(["dataset", "debias"])[t].mean()
    dd = sel[sel["method"] == "dd"].groupby(["dataset", "debias", "method_label", "size"])[[d, r]].mean()
    dd = dd.reset_index().rename(columns={d: "distill_seconds", r: "retrain_seconds"})
    dd["standard_seconds"] = [std.get((a, b), np.nan) for a, b in zip(dd["dataset"], dd["debias"])]
    dd["reuse_factor"] = dd["distill_seconds"] / (dd["standard_seconds"] - dd["retrain_seconds"])
    return dd


def plot_size_sweep(sweep: pd.DataFrame, standard: pd.DataFrame | None = None):  # noqa: ANN201  (matplotlib Figure)
    """Figure 2: accuracy, fairness, DTO against size; one row of panels per data set.

    ``standard`` (rows of STANDARD runs) adds the STANDARD mean as a dotted line.
    """
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(sweep["dataset"]))
    fig, axes = plt.subplots(len(datasets), 3, figsize=(12, 3.2 * len(datasets)), squeeze=False)
    for r, dataset in enumerate(datasets):
        part = sweep[sweep["dataset"] == dataset]
        for c, metric in enumerate(("accuracy", "fairness", "dto")):
            ax = axes[r][c]
            for label, g in part.groupby("method_label", sort=False):
                ax.errorbar(g["size"], 100 * g[f"{metric}_mean"], yerr=100 * g[f"{metric}_std"].fillna(0), marker="o", capsize=3, label=label)
            if standard is not None:
                base = standard[(standard["dataset"] == dataset) & (standard["method_label"] == "STANDARD")][metric]
                if len(base):
                    ax.axhline(100 * base.mean(), linestyle=":", color="grey", label="STANDARD")
            ax.set_title(f"{dataset}: {metric}{' (↓)' if metric == 'dto' else ' (↑)'}")
            ax.set_xlabel("distilled size (vectors per class)")
            ax.set_ylabel("%")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_reuse(costs: pd.DataFrame):  # noqa: ANN201  (matplotlib Figure)
    """Figure 3: reuse factor against size per data set and DD method."""
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(costs["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 3.2), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        for label, g in costs[costs["dataset"] == dataset].groupby("method_label", sort=False):
            ax.plot(g["size"], g["reuse_factor"], marker="o", label=label)
        ax.set_title(f"{dataset}: reuse factor")
        ax.set_xlabel("distilled size (vectors per class)")
        ax.set_ylabel("trainings to amortise distillation")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
