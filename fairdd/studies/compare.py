"""Beyond the papers: dataset and knowledge distillation under one protocol, and fair image DD.

Each of the book's papers judges its compression with its own measure (RMS TPR gap,
bias-conflicting accuracy, class-wise variance, Welch counts and DPD/EOD). This study puts the
two kinds of distillation side by side on one data set and one set of measures, with the
mitigations each offers:

* **dataset distillation** — a random real subset, DM, and DC synthetic sets at one IPC; DM with
  group-balanced real sampling (:class:`fairdd.data.RealSampler`), and DM and DC with FairDD's
  synchronized matching (:mod:`fairdd.distill.synchronized`; Zhou et al., "FairDD: Fair Dataset
  Distillation via Synchronized Matching", zqhang/FairDD@37eef67); beside them the DD
  protocol's own whole-set baseline (``"whole"``: the evaluation protocol on every image).
* **knowledge distillation** (:mod:`fairdd.kd`; Hinton et al. 2015, Mohammadshahi & Ioannou's
  protocol) — a teacher, the student network on hard labels (``"student"``) and distilled
  students at several temperatures and weights α of the soft term (``"kd"``), and with KD's
  own mitigation beside the temperature: batches balanced over the colour groups within each
  class (``"kd_balanced"``, :attr:`fairdd.kd.KDConfig.balanced_batches`, Han et al.'s BTEO on a
  student's batches).

**One reference for both kinds.** The teacher is the DD evaluation network (a ConvNet) trained
on the whole training set with the full training protocol: the uncompressed model both kinds
of compression are measured against (DD compresses its data, KD its network). The DD
protocol's whole-set baseline trains the same network on the same data for only a few epochs
(DD papers' baseline budget); it is a compression of training time and is compared with the
same reference.

Data: colour-biased digits (the CMNIST-DD construction of Lu et al. 2024,
:func:`fairdd.data.make_splits`) at several bias ratios; the protected attribute is the colour.
Every model is tested on three splits of the same test digits: bias-conflicting (colour ≠
label), bias-aligned (colour = label) and unbiased (colours independent of the label, the
colouring the attribute probe of the bias chapter uses). Accuracy, class-wise measures and the
group measures (DPD, EOD — one-vs-rest over the classes, averaged, :mod:`fairdd.metrics` — and
FairDD's DEO_M / DEO_A, :func:`fairdd.metrics.tpr_gap_by_class`) are read on the unbiased split.

Cost: a model's compute from nothing, measured on this machine — distillation + training
seconds for a synthetic set; the teacher's training seconds + the student's for a KD student
(the teacher is shared by every student of a seed, but a student cannot exist without one).

Rows: **one per trained model** (``compression``, ``method`` label, ``bias_ratio``, ``seed``,
``network``, ``temperature`` for KD students, the measures, the seconds). The report lives in
:mod:`fairdd.studies.compare_report`.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from fairdd import kd, metrics
from fairdd.config import check_choice, check_int, check_number, check_profile, check_sequence
from fairdd.data import DataSpec, Dataset, dataset_label, probe_data, study_data
from fairdd.distill import DCConfig, DMConfig, config_for
from fairdd.evaluate import EvalConfig, evaluate_synthetic
from fairdd.models import NetworkSpec
from fairdd.parallel import map_processes
from fairdd.studies._dd import training_set
from fairdd.studies import _work
from fairdd.studies._study import Root, Study

__all__ = [
    "COMPRESSIONS",
    "CompareCell",
    "CompareStudyConfig",
    "DD_METHODS",
    "KD_ROLES",
    "LABELS",
    "STUDY",
    "cell_rows",
    "describe_profile",
    "run_study",
]

#: Dataset-distillation compressions (and the random subset of the same size).
DD_METHODS: tuple[str, ...] = ("random", "dm", "dm_balanced", "dm_fairdd", "dc", "dc_fairdd")
#: Knowledge-distillation roles: the teacher (reference), the student on hard labels, distilled students.
KD_ROLES: tuple[str, ...] = ("teacher", "student", "kd", "kd_balanced")
STUDENTS: tuple[str, ...] = KD_ROLES[1:]
COMPRESSIONS: tuple[str, ...] = ("whole",) + DD_METHODS + KD_ROLES
LABELS = {
    "whole": "whole set, DD protocol",
    "random": "random real subset",
    "dm": "DM",
    "dm_balanced": "DM + balanced sampling",
    "dm_fairdd": "DM + FairDD",
    "dc": "DC",
    "dc_fairdd": "DC + FairDD",
    "teacher": "teacher (the reference)",
    "student": "student, hard labels",
    "kd": "KD student",
    "kd_balanced": "KD student, balanced batches",
}
#: The reference each compression is compared with: the teacher (see the module notes).
REFERENCE = {m: "teacher" for m in COMPRESSIONS if m != "teacher"}


@dataclass(frozen=True)
class CompareCell:
    """One run: a compression of one biased training set, one seed.

    ``distill`` is the DD method's config (DD methods only); ``evaluation`` the DD protocol
    (``"whole"`` and DD methods); ``kd`` the KD config (KD roles; for ``"kd"`` its temperature
    and α are the cell's). ``batched`` (students only): trained by :func:`fairdd.kd.fit_many`
    with the other batched students of its ratio, seed and protocol that one worker job computes
    — equal to training it alone within float tolerance, so it is part of the run id when set
    (and left out at its default, so the recorded runs keep their ids).
    """

    data: DataSpec
    bias_ratio: float
    compression: str
    seed: int
    images_per_class: int | None = None
    distill: DMConfig | DCConfig | None = None
    evaluation: EvalConfig | None = None
    kd: kd.KDConfig | None = None
    batched: bool = dataclasses.field(default=False, metadata={"run_id": "unless_default"})

    def __post_init__(self) -> None:
        if not isinstance(self.batched, bool):
            raise ValueError(f"batched={self.batched!r} must be True or False")
        if self.batched and self.compression not in STUDENTS:
            raise ValueError(f"batched=True is for the students {STUDENTS}; compression={self.compression!r}")
        check_number("bias_ratio", self.bias_ratio, minimum=0.0, maximum=1.0)
        check_choice("compression", self.compression, COMPRESSIONS)
        check_int("seed", self.seed, minimum=0)
        dd = self.compression in DD_METHODS
        if dd != (self.images_per_class is not None):
            raise ValueError(f"images_per_class={self.images_per_class!r}: set exactly for {DD_METHODS}")
        if (dd and self.compression != "random") != (self.distill is not None):
            raise ValueError(f"distill={self.distill!r}: set exactly for the distillation methods")
        if (self.compression in KD_ROLES) == (self.evaluation is not None) or (self.compression in KD_ROLES) != (
            self.kd is not None
        ):
            raise ValueError("a KD role needs kd (and no evaluation); every other compression an evaluation (and no kd)")


@dataclass(frozen=True)
class CompareStudyConfig:
    """The grid: bias ratios × compressions × seeds. See :meth:`for_profile`.

    Attributes
    ----------
    profile : ``"smoke"``, ``"cpu"`` or ``"paper"``.
    source, severity, train_per_class, test_per_class, data_seed : the colour-biased digits
        (:class:`fairdd.data.DataSpec`, kind ``"colour"``).
    bias_ratios : training bias ratios (0.1 is unbiased: each colour equally likely per class).
    seeds : one distillation / teacher / student per seed.
    images_per_class : IPC of the synthetic sets and the random subset.
    dd_methods : which of :data:`DD_METHODS` run.
    dm, dc : the DD configs; the ``*_balanced`` and ``*_fairdd`` variants replace their
        ``real_sampling`` / ``matching``.
    evaluation : the DD protocol (synthetic sets); ``whole_epochs``, ``whole_batch_size`` the
        whole-set reference's.
    kd_protocol : teacher, student and training protocol of KD (T and α are set per cell).
    temperatures, alphas : the distilled students (every T at every α).
    balanced_temperatures : the temperatures (at ``alphas[0]``) of the students trained on
        group-balanced batches.
    kd_batched : train the students of each ratio and seed side by side, one
        :func:`fairdd.kd.students` call per protocol (plain, group-balanced); their cells carry
        ``batched=True``. Default off (the recorded runs); meant for a GPU.
    """

    profile: str
    source: str = "mnist"
    severity: int = 4
    train_per_class: int | None = None
    test_per_class: int | None = None
    data_seed: int = 0
    bias_ratios: tuple[float, ...] = (0.1, 0.5, 0.8, 0.95)
    seeds: tuple[int, ...] = (0, 1, 2)
    images_per_class: int = 50
    dd_methods: tuple[str, ...] = DD_METHODS
    dm: DMConfig = dataclasses.field(default_factory=lambda: config_for("dm", "paper"))
    dc: DCConfig = dataclasses.field(default_factory=lambda: config_for("dc", "paper"))
    evaluation: EvalConfig = EvalConfig()
    whole_epochs: int = 150
    whole_batch_size: int = 256
    kd_protocol: kd.KDConfig = dataclasses.field(
        default_factory=lambda: kd.KDConfig(teacher=NetworkSpec(), student=NetworkSpec(model="lenet"), flip=False)
    )
    temperatures: tuple[float, ...] = (1.0, 2.0, 4.0, 10.0, 20.0)
    alphas: tuple[float, ...] = (0.8, 0.6)
    balanced_temperatures: tuple[float, ...] = (1.0, 4.0, 10.0)
    kd_batched: bool = False

    def __post_init__(self) -> None:
        check_profile(self.profile)
        if not isinstance(self.kd_batched, bool):
            raise ValueError(f"kd_batched={self.kd_batched!r} must be True or False")
        check_sequence("bias_ratios", self.bias_ratios, lambda f, v: check_number(f, v, minimum=0.0, maximum=1.0))
        check_sequence("seeds", self.seeds, lambda f, v: check_int(f, v, minimum=0))
        check_sequence("dd_methods", self.dd_methods, lambda f, v: check_choice(f, v, DD_METHODS))
        check_sequence("temperatures", self.temperatures, lambda f, v: check_number(f, v, minimum=0.0, strict_minimum=True))
        for name in ("bias_ratios", "seeds", "dd_methods", "temperatures"):
            if len(set(getattr(self, name))) != len(getattr(self, name)):
                raise ValueError(f"{name}={getattr(self, name)!r} must not repeat a value")
        check_int("images_per_class", self.images_per_class, minimum=1)
        check_int("whole_epochs", self.whole_epochs, minimum=1)
        check_sequence("alphas", self.alphas, lambda f, v: check_number(f, v, minimum=0.0, maximum=1.0, strict_minimum=True))
        for i, t in enumerate(self.balanced_temperatures):
            check_number(f"balanced_temperatures[{i}]", t, minimum=0.0, strict_minimum=True)
        for name in ("alphas", "balanced_temperatures"):
            if len(set(getattr(self, name))) != len(getattr(self, name)):
                raise ValueError(f"{name}={getattr(self, name)!r} must not repeat a value")
        self.data()  # validates source, severity and sizes

    @classmethod
    def for_profile(cls, profile: str, **overrides: Any) -> "CompareStudyConfig":
        """``"paper"``: Lu et al.'s DD protocol (IPC 50, reference DM/DC, 300-epoch ConvNet-128
        evaluation, whole set 150 epochs) and Mohammadshahi & Ioannou's KD protocol (ConvNet-128 teacher →
        LeNet-5 student, 100 epochs, T up to 20), all digits, 4 ratios, 3 seeds. ``"cpu"``: a
        quarter of an hour here (:func:`describe_profile` states every reduction). ``"smoke"``:
        seconds, for CI."""
        check_profile(profile)
        if profile == "paper":
            base = cls(profile="paper")
        elif profile == "cpu":
            small = {"network": NetworkSpec(width=16), "batch_real": 32}
            base = cls(
                profile="cpu",
                train_per_class=600,
                test_per_class=100,
                bias_ratios=(0.1, 0.9),
                images_per_class=10,
                # DC's matching (one backward per attribute group under FairDD) costs minutes
                # per set here even at its one-step IPC-1 schedule; it runs at "paper" and "smoke".
                dd_methods=("random", "dm", "dm_balanced", "dm_fairdd"),
                dm=dataclasses.replace(config_for("dm", "cpu"), iterations=60, lr_img=5.0, **small),
                evaluation=EvalConfig(network=NetworkSpec(width=16), epochs=50, num_networks=2),
                whole_epochs=4,
                whole_batch_size=128,
                kd_protocol=kd.KDConfig(
                    teacher=NetworkSpec(width=16), student=NetworkSpec(model="lenet"), epochs=8, milestones=(4, 6),
                    augment=False, flip=False, max_grad_norm=1.0,
                ),
                temperatures=(1.0, 4.0, 10.0),
            )
        else:
            tiny = {"network": NetworkSpec(width=8, depth=2), "batch_real": 8, "checkpoint_every": 1}
            base = cls(
                profile="smoke",
                train_per_class=20,
                test_per_class=10,
                bias_ratios=(0.1, 0.9),
                seeds=(0, 1),
                images_per_class=2,
                dm=dataclasses.replace(config_for("dm", "smoke"), iterations=2, **tiny),
                dc=dataclasses.replace(config_for("dc", "smoke"), iterations=1, loops={2: (1, 0)}, **tiny),
                evaluation=EvalConfig(network=NetworkSpec(width=8, depth=2), epochs=2, num_networks=1),
                whole_epochs=1,
                whole_batch_size=64,
                kd_protocol=kd.KDConfig(
                    teacher=NetworkSpec(width=8, depth=2), student=NetworkSpec(model="lenet"), epochs=1,
                    milestones=(1,), batch_size=64, augment=False, flip=False, max_grad_norm=1.0,
                ),
                temperatures=(1.0, 4.0),
                alphas=(0.8,),
                balanced_temperatures=(4.0,),
            )
        return dataclasses.replace(base, **overrides) if overrides else base

    def data(self) -> DataSpec:
        return DataSpec(
            source=self.source, kind="colour", severity=self.severity, train_per_class=self.train_per_class,
            test_per_class=self.test_per_class, data_seed=self.data_seed,
        )

    def method_config(self, method: str) -> DMConfig | DCConfig | None:
        """The DD config of ``method`` (``None`` for the random subset)."""
        check_choice("method", method, DD_METHODS)
        if method == "random":
            return None
        base = self.dm if method.startswith("dm") else self.dc
        if method.endswith("_balanced"):
            return dataclasses.replace(base, real_sampling="group_balanced")
        if method.endswith("_fairdd"):
            return dataclasses.replace(base, matching="synchronized")
        return base

    def cells(self) -> list[CompareCell]:
        """Per ratio and seed: the whole-set reference, the DD sets, the teacher, the hard-label
        student and the distilled students."""
        out = []
        whole = dataclasses.replace(self.evaluation, epochs=self.whole_epochs, batch_size=self.whole_batch_size)
        for r in self.bias_ratios:
            for s in self.seeds:
                common = {"data": self.data(), "bias_ratio": r, "seed": s}
                out.append(CompareCell(compression="whole", evaluation=whole, **common))
                out += [
                    CompareCell(compression=m, images_per_class=self.images_per_class, distill=self.method_config(m),
                                evaluation=self.evaluation, **common)
                    for m in self.dd_methods
                ]
                hard = dataclasses.replace(self.kd_protocol, alpha=0.0, temperature=1.0)
                b = self.kd_batched
                out.append(CompareCell(compression="teacher", kd=hard, **common))
                out.append(CompareCell(compression="student", kd=hard, batched=b, **common))
                out += [
                    CompareCell(compression="kd", kd=dataclasses.replace(self.kd_protocol, temperature=t, alpha=a),
                                batched=b, **common)
                    for a in self.alphas
                    for t in self.temperatures
                ]
                out += [
                    CompareCell(compression="kd_balanced", kd=dataclasses.replace(
                        self.kd_protocol, temperature=t, alpha=self.alphas[0], balanced_batches=True), batched=b, **common)
                    for t in self.balanced_temperatures
                ]
        return out


def describe_profile(config: CompareStudyConfig) -> str:
    """A markdown list of the protocol behind the numbers, read from ``config``."""
    d, e, p = config.data(), config.evaluation, config.kd_protocol
    sizes = "all images" if d.train_per_class is None else f"{d.train_per_class} training and {d.test_per_class} test images per class"
    lines = [
        f"**Profile `{config.profile}`.** {dataset_label(d)} (colour severity {d.severity}), {sizes}; bias ratios "
        f"{', '.join(f'{r:g}' for r in config.bias_ratios)}; seeds {len(config.seeds)}.",
        f"DD: {', '.join(LABELS[m] for m in config.dd_methods)} at IPC {config.images_per_class}; DM {config.dm.iterations} "
        f"iterations (reference 20000), ConvNet width {config.dm.network.width}, {config.dm.batch_real} real images per class, "
        f"lr_img {config.dm.lr_img:g}"
        + (f"; DC {config.dc.iterations} iterations" if any(m.startswith('dc') for m in config.dd_methods) else "")
        + f". Evaluation: {e.num_networks} ConvNet(s) of width {e.network.width} per set, {e.epochs} epochs; the whole-set "
        f"reference {config.whole_epochs} epoch(s).",
        f"KD: teacher {p.teacher.model} (width {p.teacher.width}) → student {p.student.model}, {p.epochs} epochs, lr {p.lr:g} "
        f"×{p.lr_gamma:g} at {', '.join(map(str, p.milestones))}, batch {p.batch_size}, "
        f"{'augmented' if p.augment else 'no augmentation (teacher outputs cached)'}"
        + (f", students' gradient norm clipped at {p.max_grad_norm:g}" if p.max_grad_norm else "")
        + f"; T = {kd.temperatures_label(config.temperatures)} at α = {', '.join(f'{a:g}' for a in config.alphas)}; "
        f"on group-balanced batches T = {kd.temperatures_label(config.balanced_temperatures) or 'none'} at α = "
        f"{config.alphas[0]:g}; soft term {'×T²' if p.t_squared else 'without T²'}.",
    ]
    return "\n".join(f"- {line}" if i else line for i, line in enumerate(lines))


# ----------------------------------------------------------------------------- computing


def _evaluation_set(data: DataSpec, bias_ratio: float) -> tuple[Dataset, Dataset, int, int]:
    """``(train, test, n_conflicting, n_aligned)``: the test set is the conflicting, then the
    aligned, then the unbiased split of the test digits (one prediction pass per model)."""
    train, test = study_data(data, bias_ratio)
    _, unbiased = probe_data(data)
    half = len(test) // 2
    return train, Dataset.concat(test, unbiased, name=f"{test.name}+unbiased"), half, len(test) - half


def measures(predicted: torch.Tensor, test: Dataset, n_conflicting: int, n_aligned: int) -> dict[str, float]:
    """The study's measures of one model from its predictions on :func:`_evaluation_set`'s test set."""
    y, a, p = test.labels.cpu().numpy(), test.attributes.cpu().numpy(), predicted.cpu().numpy()
    conf = slice(0, n_conflicting)
    aligned = slice(n_conflicting, n_conflicting + n_aligned)
    unb = slice(n_conflicting + n_aligned, len(y))
    k = test.num_classes
    classes = metrics.classwise_accuracy(y[unb], p[unb], num_classes=k)
    gaps = metrics.tpr_gap_by_class(y[unb], p[unb], sensitive_features=a[unb], num_classes=k)
    return {
        "accuracy": metrics.accuracy(y[unb], p[unb]),
        "acc_conflicting": metrics.accuracy(y[conf], p[conf]),
        "acc_aligned": metrics.accuracy(y[aligned], p[aligned]),
        **{f"acc_class_{c}": float(v) for c, v in enumerate(classes)},
        "classwise_variance": float(np.var(classes)),
        "worst_class": float(np.min(classes)),
        "dpd": metrics.demographic_parity_difference(y[unb], p[unb], sensitive_features=a[unb], num_classes=k),
        "eod": metrics.equalized_odds_difference(y[unb], p[unb], sensitive_features=a[unb], num_classes=k),
        "deo_max": float(np.nanmax(gaps)),
        "deo_mean": float(np.nanmean(gaps)),
    }


def cell_rows(cell: CompareCell, root: Root = None) -> list[dict[str, Any]]:
    """Compute one cell: build the compressed model(s), test them, measure."""
    if cell.batched:
        return group_rows([cell], root)[0]
    train, test, n_conf, n_aligned = _evaluation_set(cell.data, cell.bias_ratio)
    if cell.compression in KD_ROLES:
        spec = cell.kd.teacher_spec(cell.seed)
        teacher, record = kd.teacher(spec, train, root=root)
        teacher_time = float(record["train_time_s"])
        if cell.compression == "teacher":
            model, train_time, teacher_time = teacher, teacher_time, 0.0
        else:
            logits = None if cell.kd.augment else kd.teacher_logits(spec, train, teacher, root=root)
            model, log = kd.student(cell.kd, train, seed=cell.seed, teacher_model=teacher, cached_logits=logits)
            train_time = log.train_time_s
        return [_kd_row(cell, model, train_time, teacher_time, test, n_conf, n_aligned)]
    base = _base(cell)
    images, labels, _, distill_time = training_set(
        STUDY, cell, train, cell.compression, images_per_class=cell.images_per_class, seed=cell.seed,
        distill_config=cell.distill, root=root,
    )
    rows = evaluate_synthetic(images, labels, test, cell.evaluation, seed=cell.seed, keep_predictions=True)
    return [
        {**base, "network": row["network"], **measures(row["predictions"], test, n_conf, n_aligned),
         "train_time_s": row["train_time_s"], "distill_time_s": distill_time, "teacher_time_s": 0.0,
         "cost_s": distill_time + row["train_time_s"]}
        for row in rows
    ]


def _base(cell: CompareCell) -> dict[str, Any]:
    base = {"dataset": dataset_label(cell.data), "method": LABELS[cell.compression], "temperature": np.nan,
            "alpha": np.nan}
    if cell.compression in ("kd", "kd_balanced"):
        base["temperature"], base["alpha"] = cell.kd.temperature, cell.kd.alpha
    return base


def _kd_row(
    cell: CompareCell, model: torch.nn.Module, train_time: float, teacher_time: float, test: Dataset, n_conf: int,
    n_aligned: int,
) -> dict[str, Any]:
    """A KD role's one row: its test measures and costs."""
    predicted = kd.predict_logits(model, test.inputs).argmax(1)
    return {**_base(cell), "network": 0, **measures(predicted, test, n_conf, n_aligned), "train_time_s": train_time,
            "distill_time_s": 0.0, "teacher_time_s": teacher_time, "cost_s": train_time + teacher_time}


def group_rows(cells: list[CompareCell], root: Root = None) -> list[list[dict[str, Any]]]:
    """:func:`cell_rows` of a worker job's cells: the ``batched`` students (one ratio and seed)
    are trained side by side, one :func:`fairdd.kd.students` call (and one resumable
    checkpoint) per protocol; any other cell is computed alone. Rows per cell, in order."""
    batched = [c for c in cells if c.batched]
    out: dict[CompareCell, list[dict[str, Any]]] = {}
    if batched:
        if len({(c.data, c.bias_ratio, c.seed) for c in batched}) != 1:
            raise ValueError("batched students of one job must share data, bias ratio and seed")
        first = batched[0]
        train, test, n_conf, n_aligned = _evaluation_set(first.data, first.bias_ratio)
        by_protocol: dict[tuple[Any, ...], list[CompareCell]] = {}
        for c in batched:  # one fit_many per protocol: the plain and the group-balanced students
            key = (c.kd.teacher_spec(c.seed), c.kd.student, c.kd.balanced_batches, c.kd.max_grad_norm)
            by_protocol.setdefault(key, []).append(c)
        for (spec, *_), members in by_protocol.items():
            teacher, record = kd.teacher(spec, train, root=root)
            logits = None if members[0].kd.augment else kd.teacher_logits(spec, train, teacher, root=root)
            with STUDY.group_checkpoint(members, root) as folder:
                trained = kd.students([c.kd for c in members], train, seed=first.seed, teacher_model=teacher,
                                      cached_logits=logits, checkpoint=folder / "students.pt")
            for cell, (model, log) in zip(members, trained):
                out[cell] = [_kd_row(cell, model, log.train_time_s, float(record["train_time_s"]), test, n_conf, n_aligned)]
    return [out[c] if c in out else cell_rows(c, root) for c in cells]


def _group(cell: CompareCell) -> Any:
    """Batched students of one ratio and seed share a worker job; every other cell is its own."""
    return ("students", cell.data, cell.bias_ratio, cell.seed) if cell.batched else cell


def _prepare_teachers(cells: list[CompareCell], root: Root, processes: int | None) -> None:
    """Train the teachers the unfinished KD cells read, once each, before the cells (so that
    the workers do not wait on one another's claims)."""
    jobs = list(dict.fromkeys((c.data, c.bias_ratio, c.kd.teacher_spec(c.seed)) for c in cells if c.kd is not None))
    if jobs:
        map_processes(functools.partial(_train_teacher, root=root), jobs, processes=processes)


def _train_teacher(job: tuple[DataSpec, float, kd.TeacherSpec], *, root: Root) -> None:
    data, ratio, spec = job
    train, _ = study_data(data, ratio)
    kd.teacher(spec, train, root=root)


def cell_work(cell: CompareCell) -> list[_work.Work]:
    """What the cell trains (:mod:`fairdd.studies._work`): a KD teacher (shared) or student — the
    students of one ratio, seed and protocol side by side — or a distillation and the evaluation of
    its set, or the whole-set baseline."""
    n, shape, k = _work.train_size(cell.data)
    if cell.kd is not None:
        role = "teacher" if cell.compression == "teacher" else "student"
        together = (cell.data, cell.bias_ratio, cell.seed, cell.kd.balanced_batches) if role == "student" else None
        return _work.kd(role, cell.kd, cell.seed, n=n, shape=shape, classes=k, data_key=(cell.data, cell.bias_ratio),
                        together=together)
    if cell.compression == "whole":
        return _work.evaluation(cell.evaluation, n, shape, k, component="whole-set")
    out = []
    if cell.distill is not None:
        out += _work.distillation(cell.compression, cell.distill, n=n, shape=shape, classes=k, ipc=cell.images_per_class,
                                  data_key=(cell.data, cell.bias_ratio), groups=_work.attribute_groups())
    return out + _work.evaluation(cell.evaluation, k * cell.images_per_class, shape, k)


STUDY = Study(name="compare_dd_kd", compute=cell_rows, work=cell_work, group=_group, prepare=_prepare_teachers,
              compute_group=group_rows)


def run_study(config: CompareStudyConfig, *, processes: int | None = None, root: Root = None) -> pd.DataFrame:
    """Every cell of ``config`` through the run store; all rows (finished cells are only read)."""
    return STUDY.run(config.cells(), processes=processes, root=root)
