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

Running: the teachers are trained before the cells, in parallel
(:func:`fairdd.studies._kd.prepare_teachers`, shared with :mod:`fairdd.studies.kd`); with
``side_by_side`` the students of one ratio, seed and protocol are trained together
(:func:`students_rows`) and each evaluation's networks side by side.

Rows: **one per trained model** (``compression``, ``method`` label, ``bias_ratio``, ``seed``,
``network``, ``temperature`` for KD students, the measures, ``group_counts`` — the unbiased
split's predictions as a :func:`fairdd.stats.group_counts` table in JSON, for the group measures'
intervals and noise floors — the seconds). The report lives in
:mod:`fairdd.studies.compare_report`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from fairdd import kd, metrics, results, stats
from fairdd.config import check_choice, check_int, check_number, check_profile, check_sequence
from fairdd.data import BiasSpec, Dataset, StudyData, dataset_label, probe_data, study_data
from fairdd.distill import DCConfig, DMConfig, config_for
from fairdd.evaluate import EvalConfig, evaluate_synthetic
from fairdd.models import NetworkSpec
from fairdd.studies._dd import training_set
from fairdd.studies._kd import prepare_teachers, students_side_by_side
from fairdd.studies import _work
from fairdd.studies._study import Root, Study
from fairdd.training import default_device

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
#: What a cell's rows hold, part of every run id: 2 adds ``group_counts`` (issue 23), so a run
#: stored by earlier code (without it) is computed again rather than read.
ROWS_VERSION = 2


@dataclass(frozen=True)
class CompareCell:
    """One run: a compression of one biased training set, one seed.

    ``distill`` is the DD method's config (DD methods only); ``evaluation`` the DD protocol
    (``"whole"`` and DD methods); ``kd`` the KD config (KD roles; for ``"kd"`` its temperature
    and α are the cell's). ``side_by_side`` (students only): trained by
    :func:`fairdd.kd.fit_many` with the other side-by-side students of its ratio, seed and
    protocol (:func:`students_rows`) — equal to training it alone within float tolerance, so it
    is part of the run id when set (and left out at its default, so the recorded runs keep their
    ids). ``rows_version``: :data:`ROWS_VERSION`, the only value allowed (in the run id, so rows of
    an older shape are never read as this code's).
    """

    data: StudyData
    bias_ratio: float
    compression: str
    seed: int
    images_per_class: int | None = None
    distill: DMConfig | DCConfig | None = None
    evaluation: EvalConfig | None = None
    kd: kd.KDConfig | None = None
    side_by_side: bool = dataclasses.field(default=False, metadata={"run_id": "unless_default"})
    rows_version: int = ROWS_VERSION

    def __post_init__(self) -> None:
        if not isinstance(self.side_by_side, bool):
            raise ValueError(f"side_by_side={self.side_by_side!r} must be True or False")
        if self.rows_version != ROWS_VERSION:
            raise ValueError(f"rows_version={self.rows_version!r}: this code writes rows of version {ROWS_VERSION}")
        if self.side_by_side and self.compression not in STUDENTS:
            raise ValueError(f"side_by_side=True is for the students {STUDENTS}; compression={self.compression!r} "
                             "(a DD cell's evaluation networks: evaluation.side_by_side)")
        _check_data(self.data)
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


def _check_data(data: Any) -> None:
    if not isinstance(data, StudyData) or data.bias is None or data.bias.kind != "colour":
        raise ValueError(f"data={data!r} must be a fairdd.data.StudyData with a colour bias "
                         "(bias=fairdd.data.BiasSpec('colour', severity)): the study's splits are colour-biased digits")


def colour_digits(train_per_class: int | None = None, test_per_class: int | None = None, *, severity: int = 4,
                  source: str = "mnist", data_seed: int = 0) -> StudyData:
    """The study's data: colour-biased digits (Lu et al.'s CMNIST-DD construction) at colour
    ``severity``, class-stratified subsets of ``*_per_class`` (``None``: all images)."""
    return StudyData(source, train_per_class, test_per_class, data_seed=data_seed, bias=BiasSpec("colour", severity))


@dataclass(frozen=True)
class CompareStudyConfig:
    """The grid: bias ratios × compressions × seeds. See :meth:`for_profile`.

    Attributes
    ----------
    profile : ``"smoke"``, ``"cpu"`` or ``"paper"``.
    data : the colour-biased digits (:func:`colour_digits`: a :class:`fairdd.data.StudyData`
        with a ``"colour"`` :class:`fairdd.data.BiasSpec`); the bias ratio is the cells'.
    bias_ratios : training bias ratios (0.1 is unbiased: each colour equally likely per class).
    seeds : one distillation / teacher / student per seed.
    images_per_class : IPC of the synthetic sets and the random subset.
    dd_methods : which of :data:`DD_METHODS` run.
    dm, dc : the DD configs; the ``*_balanced`` and ``*_fairdd`` variants replace their
        ``real_sampling`` / ``matching``.
    evaluation : the DD protocol (synthetic sets and the random subset).
    whole : the DD protocol's whole-set baseline (the same networks on every image, for the
        DD papers' short budget).
    kd_protocol : teacher, student and training protocol of KD (T and α are set per cell).
    temperatures, alphas : the distilled students (every T at every α).
    balanced_temperatures : the temperatures (at ``alphas[0]``) of the students trained on
        group-balanced batches.
    side_by_side : train side by side what can be: the students of each ratio and seed, one
        :func:`fairdd.kd.students` call per protocol (plain, group-balanced; their cells carry
        ``side_by_side=True``), and each evaluation's networks
        (:attr:`fairdd.evaluate.EvalConfig.side_by_side` in the cells' ``evaluation``). Equal to
        one-by-one training within float tolerance, with run ids of their own. Default off (the
        recorded runs); meant for a GPU.
    """

    profile: str
    data: StudyData = colour_digits()
    bias_ratios: tuple[float, ...] = (0.1, 0.5, 0.8, 0.95)
    seeds: tuple[int, ...] = (0, 1, 2)
    images_per_class: int = 50
    dd_methods: tuple[str, ...] = DD_METHODS
    dm: DMConfig = dataclasses.field(default_factory=lambda: config_for("dm", "paper"))
    dc: DCConfig = dataclasses.field(default_factory=lambda: config_for("dc", "paper"))
    evaluation: EvalConfig = EvalConfig()
    whole: EvalConfig = EvalConfig(epochs=150)
    kd_protocol: kd.KDConfig = dataclasses.field(
        default_factory=lambda: kd.KDConfig(teacher=NetworkSpec(), student=NetworkSpec(model="lenet"), flip=False)
    )
    temperatures: tuple[float, ...] = (1.0, 2.0, 4.0, 10.0, 20.0)
    alphas: tuple[float, ...] = (0.8, 0.6)
    balanced_temperatures: tuple[float, ...] = (1.0, 4.0, 10.0)
    side_by_side: bool = False

    def __post_init__(self) -> None:
        check_profile(self.profile)
        _check_data(self.data)
        if not isinstance(self.side_by_side, bool):
            raise ValueError(f"side_by_side={self.side_by_side!r} must be True or False")
        for name in ("evaluation", "whole"):
            if not isinstance(getattr(self, name), EvalConfig):
                raise ValueError(f"{name}={getattr(self, name)!r} must be a fairdd.evaluate.EvalConfig")
        check_sequence("bias_ratios", self.bias_ratios, lambda f, v: check_number(f, v, minimum=0.0, maximum=1.0))
        check_sequence("seeds", self.seeds, lambda f, v: check_int(f, v, minimum=0))
        check_sequence("dd_methods", self.dd_methods, lambda f, v: check_choice(f, v, DD_METHODS))
        check_sequence("temperatures", self.temperatures, lambda f, v: check_number(f, v, minimum=0.0, strict_minimum=True))
        for name in ("bias_ratios", "seeds", "dd_methods", "temperatures"):
            if len(set(getattr(self, name))) != len(getattr(self, name)):
                raise ValueError(f"{name}={getattr(self, name)!r} must not repeat a value")
        check_int("images_per_class", self.images_per_class, minimum=1)
        check_sequence("alphas", self.alphas, lambda f, v: check_number(f, v, minimum=0.0, maximum=1.0, strict_minimum=True))
        for i, t in enumerate(self.balanced_temperatures):
            check_number(f"balanced_temperatures[{i}]", t, minimum=0.0, strict_minimum=True)
        for name in ("alphas", "balanced_temperatures"):
            if len(set(getattr(self, name))) != len(getattr(self, name)):
                raise ValueError(f"{name}={getattr(self, name)!r} must not repeat a value")

    @classmethod
    def for_profile(cls, profile: str, **overrides: Any) -> "CompareStudyConfig":
        """``"paper"``: Lu et al.'s DD protocol (IPC 50, reference DM/DC, 300-epoch ConvNet-128
        evaluation, whole set 150 epochs) and Mohammadshahi & Ioannou's KD protocol (ConvNet-128 teacher →
        LeNet-5 student, 100 epochs, T up to 20), all digits, 4 ratios, 3 seeds. ``"cpu"``: a
        quarter of an hour here (:func:`describe_profile` tabulates every reduction). ``"smoke"``:
        seconds, for CI."""
        check_profile(profile)
        if profile == "paper":
            base = cls(profile="paper")
        elif profile == "cpu":
            # fast_kernels: the same networks on the faster CPU path (issue 23's re-recording).
            width16 = NetworkSpec(width=16, fast_kernels=True)
            base = cls(
                profile="cpu",
                data=colour_digits(600, 100),
                bias_ratios=(0.1, 0.9),
                # Five seeds: five distilled sets (the DD unit: a set, its networks averaged) and
                # five KD students per kind, equal n for the class and mitigation tests.
                seeds=(0, 1, 2, 3, 4),
                images_per_class=10,
                # DC's matching (one backward per attribute group under FairDD) costs minutes
                # per set here even at its one-step IPC-1 schedule; it runs at "paper" and "smoke".
                dd_methods=("random", "dm", "dm_balanced", "dm_fairdd"),
                dm=DMConfig(network=width16, batch_real=32, iterations=60, lr_img=5.0),
                evaluation=EvalConfig(network=width16, epochs=50, num_networks=2),
                # One network per seed: the seed is the unit (its networks would be averaged).
                whole=EvalConfig(network=width16, epochs=4, num_networks=1, batch_size=128),
                kd_protocol=kd.KDConfig(
                    teacher=width16, student=NetworkSpec(model="lenet", fast_kernels=True), epochs=8,
                    milestones=(4, 6), augment=False, flip=False, max_grad_norm=1.0,
                ),
                # T = 1 and 10 (the mitigation test's two ends), one α and two balanced temperatures
                # here: the other students bought five seeds inside the budget.
                temperatures=(1.0, 10.0),
                alphas=(0.8,),
                balanced_temperatures=(1.0, 10.0),
            )
        else:
            tiny = {"network": NetworkSpec(width=8, depth=2), "batch_real": 8, "checkpoint_every": 1}
            base = cls(
                profile="smoke",
                data=colour_digits(20, 10),
                bias_ratios=(0.1, 0.9),
                seeds=(0, 1),
                images_per_class=2,
                dm=dataclasses.replace(config_for("dm", "smoke"), iterations=2, **tiny),
                dc=dataclasses.replace(config_for("dc", "smoke"), iterations=1, loops={2: (1, 0)}, **tiny),
                evaluation=EvalConfig(network=NetworkSpec(width=8, depth=2), epochs=2, num_networks=1),
                whole=EvalConfig(network=NetworkSpec(width=8, depth=2), epochs=1, num_networks=1, batch_size=64),
                kd_protocol=kd.KDConfig(
                    teacher=NetworkSpec(width=8, depth=2), student=NetworkSpec(model="lenet"), epochs=1,
                    milestones=(1,), batch_size=64, augment=False, flip=False, max_grad_norm=1.0,
                ),
                temperatures=(1.0, 4.0),
                alphas=(0.8,),
                balanced_temperatures=(4.0,),
            )
        return dataclasses.replace(base, **overrides) if overrides else base

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
        evaluation, whole = self.evaluation, self.whole
        if self.side_by_side:
            evaluation = dataclasses.replace(evaluation, side_by_side=True)
            whole = dataclasses.replace(whole, side_by_side=True)
        for r in self.bias_ratios:
            for s in self.seeds:
                common = {"data": self.data, "bias_ratio": r, "seed": s}
                out.append(CompareCell(compression="whole", evaluation=whole, **common))
                out += [
                    CompareCell(compression=m, images_per_class=self.images_per_class, distill=self.method_config(m),
                                evaluation=evaluation, **common)
                    for m in self.dd_methods
                ]
                hard = dataclasses.replace(self.kd_protocol, alpha=0.0, temperature=1.0)
                b = self.side_by_side
                out.append(CompareCell(compression="teacher", kd=hard, **common))
                out.append(CompareCell(compression="student", kd=hard, side_by_side=b, **common))
                out += [
                    CompareCell(compression="kd", kd=dataclasses.replace(self.kd_protocol, temperature=t, alpha=a),
                                side_by_side=b, **common)
                    for a in self.alphas
                    for t in self.temperatures
                ]
                out += [
                    CompareCell(compression="kd_balanced", kd=dataclasses.replace(
                        self.kd_protocol, temperature=t, alpha=self.alphas[0], balanced_batches=True), side_by_side=b,
                        **common)
                    for t in self.balanced_temperatures
                ]
        return out


def describe_profile(config: CompareStudyConfig) -> pd.DataFrame:
    """The protocol behind the numbers, read from ``config``, beside the papers' (Lu et al.'s DD
    protocol and Mohammadshahi & Ioannou's KD protocol, as :meth:`CompareStudyConfig.for_profile`
    ``"paper"`` states them): one row per setting, columns ``setting``, ``this build``, ``paper``."""
    paper = CompareStudyConfig.for_profile("paper")
    rows = [("profile", config.profile, "paper")]
    for setting, read in _SETTINGS:
        rows.append((setting, read(config), read(paper)))
    return pd.DataFrame(rows, columns=["setting", "this build", "paper"])


def _sizes(d: StudyData) -> str:
    return ("all images" if d.train_per_class is None else f"{d.train_per_class} training images per class") + (
        "" if d.test_per_class is None else f", {d.test_per_class} test images per class")


def _kd_training(p: kd.KDConfig) -> str:
    return (f"{p.epochs} epochs, lr {p.lr:g} ×{p.lr_gamma:g} at {', '.join(map(str, p.milestones))}, batch {p.batch_size}, "
            + ("augmented" if p.augment else "no augmentation (teacher outputs cached)"))


def _evaluation(e: EvalConfig) -> str:
    return (f"{e.num_networks} ConvNet-{e.network.width}×{e.network.depth} per set, {e.epochs} epochs, batch {e.batch_size}"
            + (", side by side" if e.side_by_side else ""))


_SETTINGS: tuple[tuple[str, Any], ...] = (
    ("data", lambda c: f"{dataset_label(c.data)}, colour severity {c.data.bias.severity}, {_sizes(c.data)}"),
    ("bias ratios", lambda c: ", ".join(f"{r:g}" for r in c.bias_ratios)),
    ("seeds", lambda c: str(len(c.seeds))),
    ("DD methods", lambda c: f"{', '.join(LABELS[m] for m in c.dd_methods)} at IPC {c.images_per_class}"),
    ("DM", lambda c: f"{c.dm.iterations} iterations, ConvNet-{c.dm.network.width}, {c.dm.batch_real} real images per "
                     f"class, lr_img {c.dm.lr_img:g}"),
    ("DC", lambda c: f"{c.dc.iterations} iterations, ConvNet-{c.dc.network.width}, {c.dc.batch_real} real images per class"
     if any(m.startswith("dc") for m in c.dd_methods) else "not run"),
    ("DD evaluation", lambda c: _evaluation(c.evaluation)),
    ("whole-set baseline (DD protocol)", lambda c: _evaluation(c.whole)),
    ("KD teacher → student", lambda c: f"{c.kd_protocol.teacher.model}-{c.kd_protocol.teacher.width} → "
                                       f"{c.kd_protocol.student.model}"),
    ("KD training", lambda c: _kd_training(c.kd_protocol)),
    ("students' gradient norm clipped at", lambda c: f"{c.kd_protocol.max_grad_norm:g}" if c.kd_protocol.max_grad_norm
     else "no clipping"),
    ("distilled students", lambda c: f"T = {kd.temperatures_label(c.temperatures)} at α = "
                                     f"{', '.join(f'{a:g}' for a in c.alphas)}; soft term "
                                     f"{'×T²' if c.kd_protocol.t_squared else 'without T²'}"),
    ("students on group-balanced batches", lambda c: f"T = {kd.temperatures_label(c.balanced_temperatures) or 'none'} "
                                                     f"at α = {c.alphas[0]:g}"),
    ("students trained", lambda c: "side by side (equal to one by one within float tolerance)" if c.side_by_side
     else "one by one"),
    ("CPU kernels", lambda c: "fast (NetworkSpec.fast_kernels: equal within float tolerance)"
     if c.kd_protocol.teacher.fast_kernels else "default"),
)


# ----------------------------------------------------------------------------- computing


def _evaluation_set(data: StudyData, bias_ratio: float) -> tuple[Dataset, Dataset, int, int]:
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
    groups = len(test.attribute_values) if test.attribute_values else int(a.max()) + 1
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
        # The unbiased split's predictions as a count table (fairdd.stats.group_counts, group =
        # colour): the group measures' bootstrap intervals and noise floors come from it.
        "group_counts": stats.counts_to_json(stats.group_counts(y[unb], p[unb], a[unb], num_classes=k,
                                                                num_groups=groups)),
    }


def cell_rows(cell: CompareCell, root: Root = None) -> list[dict[str, Any]]:
    """Compute one cell: build the compressed model(s), test them, measure."""
    device = default_device()
    train, test, n_conf, n_aligned = _evaluation_set(cell.data, cell.bias_ratio)
    if cell.compression in KD_ROLES:
        train, test = train.to(device), test.to(device)
        spec = cell.kd.teacher_spec(cell.seed)
        teacher, record = kd.teacher(spec, train, root=root)
        teacher_time = float(record["train_time_s"])
        if cell.compression == "teacher":
            model, train_time, teacher_time = teacher, teacher_time, 0.0
        else:
            logits = None if cell.kd.augment else kd.teacher_logits(spec, train, teacher, root=root)
            model, log = kd.student(cell.kd, train, seed=cell.seed, teacher_model=teacher, cached_logits=logits,
                                    checkpoint=results.checkpoint_dir(STUDY.name, cell, root=root) / "student.pt")
            train_time = log.train_time_s
        return [_kd_row(cell, model, train_time, teacher_time, test, n_conf, n_aligned)]
    base = _base(cell)
    images, labels, _, distill_time = training_set(
        STUDY, cell, train.to(device) if cell.distill is not None else train, cell.compression,
        images_per_class=cell.images_per_class, seed=cell.seed, distill_config=cell.distill, root=root,
    )
    rows = evaluate_synthetic(images.to(device), labels.to(device), test, cell.evaluation, seed=cell.seed,
                              keep_predictions=True)
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


def students_rows(cells: list[CompareCell], root: Root, checkpoint: Path) -> list[list[dict[str, Any]]]:
    """The ``compute_together`` of :data:`STUDY`: the side-by-side students of one ratio, seed and
    protocol (:func:`_together`: the plain or the group-balanced ones) trained together
    (:func:`fairdd.studies._kd.students_side_by_side`, resumable under ``checkpoint``); rows per
    cell as :func:`cell_rows` gives them (within float tolerance)."""
    first, device = cells[0], default_device()
    train, test, n_conf, n_aligned = _evaluation_set(first.data, first.bias_ratio)
    train, test = train.to(device), test.to(device)
    spec = first.kd.teacher_spec(first.seed)
    teacher, record = kd.teacher(spec, train, root=root)
    trained = students_side_by_side([c.kd for c in cells], train, seed=first.seed, spec=spec, teacher_model=teacher,
                                    root=root, checkpoint=checkpoint)
    return [[_kd_row(cell, model, log.train_time_s, float(record["train_time_s"]), test, n_conf, n_aligned)]
            for cell, (model, log) in zip(cells, trained)]


def _train_split(data: StudyData, bias_ratio: float) -> Dataset:
    return study_data(data, bias_ratio)[0]


def _prepare(cells: list[CompareCell], root: Root, processes: int | None) -> None:
    """Train the teachers the unfinished KD cells read, once each, before the cells (so that
    the workers do not wait on one another's claims)."""
    prepare_teachers([(_train_split, (c.data, c.bias_ratio), c.kd.teacher_spec(c.seed)) for c in cells if c.kd is not None],
                     root, processes)


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


def _group(cell: CompareCell) -> Any:
    """Side-by-side students of one ratio and seed share a worker job; every other cell is its own."""
    return ("students", cell.data, cell.bias_ratio, cell.seed) if cell.side_by_side else cell


def _together(cell: CompareCell) -> tuple[Any, ...] | None:
    """Side-by-side students of one ratio, seed and protocol (all but T and α: the plain and the
    group-balanced ones apart) train together."""
    if not cell.side_by_side:
        return None
    return cell.data, cell.bias_ratio, cell.seed, dataclasses.replace(cell.kd, temperature=1.0, alpha=0.0)


STUDY = Study(name="compare_dd_kd", compute=cell_rows, work=cell_work, group=_group, prepare=_prepare,
              together=_together, compute_together=students_rows)


def run_study(config: CompareStudyConfig, *, processes: int | None = None, root: Root = None) -> pd.DataFrame:
    """Every cell of ``config`` through the run store; all rows (finished cells are only read)."""
    return STUDY.run(config.cells(), processes=processes, root=root)
