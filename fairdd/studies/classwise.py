"""Dataset distillation and class-wise fairness: an IPC sweep of MTT (and DM) against the whole set.

The study follows *Impact of Data Distillation on Fairness in Machine Learning Models* (2025):
distil a 10-class image set with MTT at several sizes (images per class, IPC), several
distilled sets per IPC, and train several fresh classifiers (ConvNet and AlexNet) on each set;
the *baseline model* (BLM) is the same architectures trained on the whole training set, the
same number of runs. Fairness is class-wise: the variance of the class accuracies of a model.
DM runs the same sweep beside MTT (cheap, and a second method to see whether a finding is
MTT's).

Data (:class:`ClasswiseData`, :func:`study_data`): the paper's 10-class set is CIFAR-10 when its
files are present, else Fashion-MNIST as a stand-in; its 100-class set is CIFAR-100 when present,
else the MNIST digits (10 classes: a stand-in for the protocol, not for the 100-class
difficulty). Stand-ins are named so in every table and figure by :func:`dataset_label`;
per-channel normalisation with the training split's statistics, then, as an option (field
``zca``, on for CIFAR-10 at ``paper`` as MTT's reference does, off for Fashion-MNIST), ZCA
whitening fitted on the whole training set (:mod:`fairdd.data._zca`).

Cells (:class:`ClasswiseCell`, :func:`cell_rows`): one distilled set (method × IPC × set seed)
evaluated by every architecture, or one BLM run (the whole set, one run index); through the run
store (study :data:`STUDY`). MTT's expert trajectories are trained once, before the cells, by
the study's ``prepare`` hook, and shared by every IPC and seed (:func:`fairdd.distill.train_experts`
caches them by data and expert settings).

Rows: tidy, **one row per trained model**, wide in the classes: ``dataset``, ``method``
(config column), ``architecture``, ``ipc`` (NaN for the BLM), ``set_seed`` (config column),
``network``, ``accuracy`` and ``acc_class_0 … acc_class_{K-1}`` (fractions), times.
:func:`fairdd.studies.classwise_report.long_format` melts them to one row per model × class.

Tables, claims and figures live in :mod:`fairdd.studies.classwise_report`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from fairdd.config import check_choice, check_int, check_profile, check_sequence
from fairdd.data import ZCA, Dataset, denormalize, fit_zca, load_dataset, normalize_splits, stratified_subset
from fairdd.distill import DMConfig, MTTConfig, config_for, distill_side_by_side, train_experts
from fairdd.evaluate import EvalConfig, evaluate_synthetic
from fairdd.models import NetworkSpec
from fairdd.paths import data_root
from fairdd.studies._dd import load_synthetic, save_synthetic, training_set
from fairdd.studies import _work
from fairdd.studies._study import Root, Study
from fairdd.training import default_device

__all__ = [
    "ARCHITECTURES",
    "ARCH_LABELS",
    "ClasswiseCell",
    "ClasswiseData",
    "ClasswiseStudyConfig",
    "METHODS",
    "METHOD_LABELS",
    "STUDY",
    "cell_rows",
    "dataset_label",
    "default_source",
    "describe_profile",
    "task_classes",
    "run_study",
    "study_data",
    "synthetic_images",
]

DISTILLERS: tuple[str, ...] = ("mtt", "dm")
METHODS: tuple[str, ...] = DISTILLERS + ("whole",)
METHOD_LABELS = {"mtt": "MTT", "dm": "DM", "whole": "BLM (whole set)"}
ARCHITECTURES: tuple[str, ...] = ("convnet", "alexnet")
ARCH_LABELS = {"convnet": "ConvNet", "alexnet": "AlexNet"}
SOURCES: tuple[str, ...] = ("cifar10", "cifar100", "fashion_mnist", "mnist")
#: The paper's sweeps: CIFAR-10 IPC 1…30, CIFAR-100 IPC 1…35 (its section 3.2).
PAPER_IPCS: dict[int, tuple[int, ...]] = {10: (1, 5, 10, 15, 20, 25, 30), 100: (1, 5, 10, 15, 20, 25, 30, 35)}
#: The paper's classifiers: ConvNet and AlexNet on CIFAR-10, ConvNet on CIFAR-100.
PAPER_ARCHITECTURES: dict[int, tuple[str, ...]] = {10: ARCHITECTURES, 100: ("convnet",)}
#: The paper's data set for each task, and the offline stand-in used when its files are absent.
PAPER_SOURCE = {10: "cifar10", 100: "cifar100"}
STAND_IN = {10: "fashion_mnist", 100: "mnist"}
_LABELS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100",
           "fashion_mnist": "Fashion-MNIST (stand-in for CIFAR-10)",
           "mnist": "MNIST digits (stand-in for CIFAR-100)"}
_CIFAR_FILES = {"cifar10": ("cifar-10-batches-py", ("data_batch_1", "test_batch", "batches.meta")),
                "cifar100": ("cifar-100-python", ("train", "test", "meta"))}

# ----------------------------------------------------------------------------- data


@dataclass(frozen=True)
class ClasswiseData:
    """The data of the study.

    Attributes
    ----------
    source : ``"cifar10"``, ``"cifar100"`` (the paper's) or the offline stand-ins
        ``"fashion_mnist"`` (for CIFAR-10) and ``"mnist"`` (for CIFAR-100).
    train_per_class, test_per_class : class-stratified subsets (``None``: all images).
    zca : ZCA-whiten after normalisation (fit on the whole — possibly subset — training split,
        ``eps`` 0.1), as MTT's reference does for CIFAR.
    data_seed : seeds the subsets.
    """

    source: str = "cifar10"
    train_per_class: int | None = None
    test_per_class: int | None = None
    zca: bool = True
    data_seed: int = 0

    def __post_init__(self) -> None:
        check_choice("source", self.source, SOURCES)
        for name in ("train_per_class", "test_per_class"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), minimum=1)
        if not isinstance(self.zca, bool):
            raise ValueError(f"zca={self.zca!r} must be True or False")
        check_int("data_seed", self.data_seed, minimum=0)


def dataset_label(data: ClasswiseData) -> str:
    """The page's name of the data set, marking a stand-in as one."""
    return _LABELS[data.source]


def default_source(num_classes: int, root: str | None = None) -> str:
    """The paper's data set for the ``num_classes``-class task (10: CIFAR-10, 100: CIFAR-100)
    when its python batches are under the data root, else its offline stand-in."""
    check_choice("num_classes", num_classes, tuple(PAPER_SOURCE))
    folder, files = _CIFAR_FILES[PAPER_SOURCE[num_classes]]
    base = data_root() if root is None else root
    present = all((Path(base) / folder / f).is_file() for f in files)
    return PAPER_SOURCE[num_classes] if present else STAND_IN[num_classes]


@functools.lru_cache(maxsize=4)
def _prepared(data: ClasswiseData) -> tuple[Dataset, Dataset, torch.Tensor, torch.Tensor, ZCA | None]:
    train = stratified_subset(load_dataset(data.source, "train"), data.train_per_class, data.data_seed)
    test = stratified_subset(load_dataset(data.source, "test"), data.test_per_class, data.data_seed + 1)
    train, test, (mean, std) = normalize_splits(train, test)
    zca = None
    if data.zca:
        zca = fit_zca(train.inputs)
        train = dataclasses.replace(train, inputs=zca.apply(train.inputs).contiguous())
        test = dataclasses.replace(test, inputs=zca.apply(test.inputs).contiguous())
    return train, test, mean, std, zca


def study_data(data: ClasswiseData) -> tuple[Dataset, Dataset]:
    """Normalised (and, with ``zca``, whitened) ``(train, test)``; cached per process."""
    train, test, *_ = _prepared(data)
    return train, test


def to_display(data: ClasswiseData, images: torch.Tensor) -> torch.Tensor:
    """Images of the study's input space back in [0, 1] (inverse ZCA, then de-normalised)."""
    _, _, mean, std, zca = _prepared(data)
    x = zca.invert(images) if zca is not None else images
    return denormalize(x, mean, std).clamp(0, 1)


# ----------------------------------------------------------------------------- cells


@dataclass(frozen=True)
class ClasswiseCell:
    """One run: a distilled set evaluated by every architecture, or one BLM run.

    Attributes
    ----------
    data : the data set and its pipeline.
    method : ``"mtt"``, ``"dm"`` or ``"whole"`` (the BLM).
    images_per_class : IPC; ``None`` for ``"whole"``.
    set_seed : distillation seed (BLM: the run index); classifier i is seeded from ``(set_seed, i)``.
    distill : the method config (``None`` for ``"whole"``).
    evaluations : one evaluation protocol per architecture (``num_networks`` classifiers each).
    side_by_side : (DM only) the set is distilled side by side with the other side-by-side DM
        sets of its IPC that one worker job computes (:func:`fairdd.distill.distill_side_by_side`,
        one seed each) — equal to distilling it alone within float tolerance, so it is part of
        the run id when set (and left out at its default, so the recorded runs keep their ids).
    """

    data: ClasswiseData
    method: str
    images_per_class: int | None
    set_seed: int
    distill: MTTConfig | DMConfig | None
    evaluations: tuple[EvalConfig, ...]
    side_by_side: bool = dataclasses.field(default=False, metadata={"run_id": "unless_default"})

    def __post_init__(self) -> None:
        check_choice("method", self.method, METHODS)
        check_int("set_seed", self.set_seed, minimum=0)
        if not isinstance(self.side_by_side, bool):
            raise ValueError(f"side_by_side={self.side_by_side!r} must be True or False")
        if self.side_by_side and self.method != "dm":
            raise ValueError(f"side_by_side=True is for method 'dm' only (method={self.method!r})")
        if (self.method == "whole") != (self.images_per_class is None):
            raise ValueError(f"images_per_class={self.images_per_class!r}: None exactly for method 'whole'")
        if self.images_per_class is not None:
            check_int("images_per_class", self.images_per_class, minimum=1)
        if (self.method == "whole") != (self.distill is None):
            raise ValueError(f"distill={self.distill!r}: None exactly for method 'whole'")
        if not self.evaluations or not all(isinstance(e, EvalConfig) for e in self.evaluations):
            raise ValueError(f"evaluations={self.evaluations!r} must be a non-empty tuple of EvalConfig")


@dataclass(frozen=True)
class ClasswiseStudyConfig:
    """The sweep: methods × IPC × distilled sets, classifiers per set, and the BLM. See :meth:`for_profile`.

    Attributes
    ----------
    profile : ``"smoke"``, ``"cpu"`` or ``"paper"``.
    data : the data set and pipeline.
    methods : distillation methods (``"mtt"``, ``"dm"``); the BLM always runs.
    ipcs : the IPC sweep (paper on CIFAR-10: 1, 5, 10, 15, 20, 25, 30).
    set_seeds : one distilled set per seed and IPC (paper: 10); also the BLM's run indices.
    networks : fresh classifiers per set and architecture (paper: 10).
    architectures : classifier architectures (paper: ConvNet and AlexNet).
    mtt, dm : the method configs; the ConvNet classifier is MTT's distillation network.
    eval_epochs, eval_dsa, eval_lr : the classifiers' protocol on a synthetic set (authors'
        fork: 1000 epochs, lr 0.01 fixed rather than MTT's learned rate; DSA as MTT's
        evaluation).
    whole_epochs, whole_batch_size : the BLM's training on the whole set.
    eval_batched : train each set's classifiers (and the BLM's) side by side
        (:attr:`fairdd.evaluate.EvalConfig.batched`; equal to one-by-one training within float
        tolerance, so the cells' run ids change when it is on). Default off (the recorded runs);
        meant for a GPU.
    dm_side_by_side : distil the DM sets of one IPC (one per set seed) side by side
        (:attr:`ClasswiseCell.side_by_side`). Default off (the recorded runs); meant for a GPU.
    """

    profile: str
    data: ClasswiseData = ClasswiseData()
    methods: tuple[str, ...] = DISTILLERS
    ipcs: tuple[int, ...] = PAPER_IPCS[10]
    set_seeds: tuple[int, ...] = tuple(range(10))
    networks: int = 10
    architectures: tuple[str, ...] = ARCHITECTURES
    mtt: MTTConfig = dataclasses.field(default_factory=lambda: config_for("mtt", "paper"))
    dm: DMConfig = dataclasses.field(default_factory=lambda: config_for("dm", "paper"))
    eval_epochs: int = 1000
    eval_dsa: bool = True
    eval_lr: float = 0.01
    whole_epochs: int = 50
    whole_batch_size: int = 256
    eval_batched: bool = False
    dm_side_by_side: bool = False

    def __post_init__(self) -> None:
        check_profile(self.profile)
        for name in ("eval_batched", "dm_side_by_side"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} must be True or False")
        check_sequence("methods", self.methods, lambda f, v: check_choice(f, v, DISTILLERS))
        check_sequence("ipcs", self.ipcs, lambda f, v: check_int(f, v, minimum=1))
        check_sequence("set_seeds", self.set_seeds, lambda f, v: check_int(f, v, minimum=0))
        check_sequence("architectures", self.architectures, lambda f, v: check_choice(f, v, ARCHITECTURES))
        for name in ("ipcs", "set_seeds", "methods", "architectures"):
            if len(set(getattr(self, name))) != len(getattr(self, name)):
                raise ValueError(f"{name}={getattr(self, name)!r} must not repeat a value")
        check_int("networks", self.networks, minimum=1)
        check_int("eval_epochs", self.eval_epochs, minimum=1)
        check_int("whole_epochs", self.whole_epochs, minimum=1)
        check_int("whole_batch_size", self.whole_batch_size, minimum=1)
        if not isinstance(self.mtt, MTTConfig) or not isinstance(self.dm, DMConfig):
            raise ValueError("mtt and dm must be an MTTConfig and a DMConfig")

    @classmethod
    def for_profile(
        cls, profile: str, *, num_classes: int = 10, source: str | None = None, **overrides: Any
    ) -> "ClasswiseStudyConfig":
        """The page's protocols for the paper's 10-class or 100-class task.

        ``num_classes`` picks the task (10: ConvNet and AlexNet, IPC 1…30; 100: ConvNet only,
        IPC 1…35, as the paper); ``source`` defaults to the task's CIFAR set when present, else
        its stand-in (:func:`default_source`).

        - ``"paper"``: the paper's — its IPC sweep, 10 sets per IPC, 10 classifiers per set and
          architecture, MTT and DM at the reference settings, 1000 epochs with DSA; ZCA on CIFAR.
        - ``"cpu"``: ≤ 15 minutes on 2 cores for both tasks together; :func:`describe_profile`
          states every reduction (the 100-class task runs MTT only, at fewer IPCs and sets).
        - ``"smoke"``: seconds, for CI.
        """
        check_profile(profile)
        check_choice("num_classes", num_classes, tuple(PAPER_SOURCE))
        source = default_source(num_classes) if source is None else source
        check_choice("source", source, SOURCES)
        zca = source.startswith("cifar")
        task = {"ipcs": PAPER_IPCS[num_classes], "architectures": PAPER_ARCHITECTURES[num_classes]}
        base = cls._profile(profile, source, zca)
        if profile == "paper":
            base = dataclasses.replace(base, **task)
        elif num_classes == 100:
            # The second task at reduced cost: MTT only (DM's comparison is the 10-class task's).
            base = dataclasses.replace(base, architectures=task["architectures"], methods=("mtt",),
                                       **({"ipcs": (1, 10), "set_seeds": (0, 1)} if profile == "cpu" else {}))
        return dataclasses.replace(base, **overrides) if overrides else base

    @classmethod
    def _profile(cls, profile: str, source: str, zca: bool) -> "ClasswiseStudyConfig":
        """The 10-class task's protocol at ``profile``."""
        if profile == "paper":
            return cls(profile="paper", data=ClasswiseData(source=source, zca=zca))
        if profile == "cpu":
            return cls(
                profile="cpu",
                data=ClasswiseData(source=source, train_per_class=300, test_per_class=200, zca=zca),
                ipcs=(1, 5, 10),
                set_seeds=(0, 1, 2),
                networks=2,
                # The DD references' AlexNet (128-256 channels, no width option) costs many times
                # this narrow ConvNet per step (benchmarks/bench_models.py times both), beyond a
                # quarter-hour for this sweep. It runs at "paper" and "smoke".
                architectures=("convnet",),
                mtt=_network(
                    config_for("mtt", "cpu"), width=16,
                    num_experts=2, expert_train_epochs=4, expert_epoch_size=None, expert_batch=128,
                    max_start_epoch=2, expert_epochs=2, syn_steps=8, iterations=80, checkpoint_every=20,
                ),
                dm=_network(config_for("dm", "cpu"), width=16, batch_real=32, iterations=60, lr_img=5.0),
                eval_epochs=150,
                eval_dsa=False,
                # Enough epochs for the BLM to converge on this subset: a BLM still rising is a
                # weak baseline, and "DD beats the BLM" would then be no finding.
                whole_epochs=15,
                whole_batch_size=128,
            )
        return cls(
            profile="smoke",
            data=ClasswiseData(source=source, train_per_class=20, test_per_class=10, zca=zca),
            ipcs=(1, 2),
            set_seeds=(0, 1),
            networks=1,
            mtt=_network(config_for("mtt", "smoke"), expert_epoch_size=None, iterations=2),
            dm=_network(config_for("dm", "smoke"), iterations=2),
            eval_epochs=2,
            eval_dsa=False,
            whole_epochs=1,
            whole_batch_size=64,
        )

    def evaluation(self, architecture: str, *, whole: bool = False) -> EvalConfig:
        """The classifiers' protocol for one architecture (synthetic set or the whole set)."""
        check_choice("architecture", architecture, ARCHITECTURES)
        config = EvalConfig(
            network=_classifier(self, architecture),
            epochs=self.whole_epochs if whole else self.eval_epochs,
            lr=self.eval_lr,
            batch_size=self.whole_batch_size if whole else 256,
            dsa=False if whole else self.eval_dsa,
            num_networks=self.networks,
            batched=self.eval_batched,
        )
        return dataclasses.replace(config, dsa_strategy=self.mtt.dsa_strategy) if config.dsa else config

    def cell(self, method: str, images_per_class: int | None, set_seed: int) -> ClasswiseCell:
        whole = method == "whole"
        return ClasswiseCell(
            data=self.data,
            method=method,
            images_per_class=None if whole else images_per_class,
            set_seed=set_seed,
            distill=None if whole else getattr(self, method),
            evaluations=tuple(self.evaluation(a, whole=whole) for a in self.architectures),
            side_by_side=self.dm_side_by_side and method == "dm",
        )

    def cells(self) -> list[ClasswiseCell]:
        """Every run: method × IPC × set seed, then one BLM run per set seed."""
        out = [self.cell(m, ipc, s) for m in self.methods for ipc in self.ipcs for s in self.set_seeds]
        return out + [self.cell("whole", None, s) for s in self.set_seeds]


# The network fields of the configs are read and written here only (``network``, a
# :class:`fairdd.models.NetworkSpec`), so a reshaping of them touches these helpers alone.
def _network(config: Any, *, width: int | None = None, **fields: Any) -> Any:
    """``config`` with its ConvNet's ``width`` (when given) and other fields replaced."""
    if width is not None:
        fields["network"] = dataclasses.replace(config.network, width=width)
    return dataclasses.replace(config, **fields)


def _classifier(config: "ClasswiseStudyConfig", architecture: str) -> NetworkSpec:
    """The classifier network: MTT's distillation ConvNet, or the references' AlexNet."""
    return config.mtt.network if architecture == "convnet" else NetworkSpec(model=architecture)  # type: ignore[arg-type]


def _describe_network(spec: NetworkSpec) -> str:
    return f"width {spec.width}, depth {spec.depth}, {spec.norm}"


def task_classes(data: ClasswiseData) -> int:
    """The paper's task a data set plays: 10 (CIFAR-10 or its stand-in) or 100 (CIFAR-100 or its)."""
    return 100 if data.source in (PAPER_SOURCE[100], STAND_IN[100]) else 10


def describe_profile(config: ClasswiseStudyConfig) -> str:
    """A markdown paragraph saying which protocol produced the numbers, read from ``config``."""
    d, mtt, dm = config.data, config.mtt, config.dm
    task = task_classes(d)
    sizes = "all images" if d.train_per_class is None else (
        f"{d.train_per_class} training and {d.test_per_class} test images per class"
    )
    conv = _describe_network(_classifier(config, "convnet"))
    paper_ipcs = PAPER_IPCS[task]
    lines = [
        f"**Profile `{config.profile}`.** {dataset_label(d)}, {sizes}, ZCA whitening {'on' if d.zca else 'off'}; "
        f"methods {', '.join(METHOD_LABELS[m] for m in config.methods)}; IPC {', '.join(map(str, config.ipcs))} "
        f"(paper {paper_ipcs[0]}–{paper_ipcs[-1]}); {len(config.set_seeds)} distilled set(s) per IPC (paper 10); "
        f"{config.networks} classifier(s) per set and architecture (paper 10); architectures "
        f"{', '.join(ARCH_LABELS[a] for a in config.architectures)} (paper "
        f"{' and '.join(ARCH_LABELS[a] for a in PAPER_ARCHITECTURES[task])}).",
    ]
    if "mtt" in config.methods:
        lines.append(
            f"MTT: {mtt.num_experts} expert(s) × {mtt.expert_train_epochs} epochs"
            + (f" of {mtt.expert_epoch_size} images" if mtt.expert_epoch_size else "")
            + f" (reference 100 × 50), trained once and shared by every IPC and set; {mtt.iterations} iterations "
            f"(reference 5000), syn_steps {mtt.syn_steps} (20), expert_epochs {mtt.expert_epochs} (3), max_start_epoch "
            f"{mtt.max_start_epoch} (25), lr_img {mtt.lr_img:g}; ConvNet {_describe_network(mtt.network)} (reference 128, 3)."
        )
    if "dm" in config.methods:
        lines.append(
            f"DM: {dm.iterations} iterations (reference 20000), ConvNet width {dm.network.width}, {dm.batch_real} real "
            f"images per class per iteration (256), lr_img {dm.lr_img:g} (1)."
        )
    lines.append(
        f"Classifiers on a synthetic set: {config.eval_epochs} epochs (paper 1000), lr {config.eval_lr:g}, "
        f"{'DSA' if config.eval_dsa else 'no augmentation'}; ConvNet {conv}"
        + ("; AlexNet as in the DD references" if "alexnet" in config.architectures else "")
        + f". BLM: the same architectures on the whole training split, {config.whole_epochs} epoch(s), batch "
        f"{config.whole_batch_size}, {len(config.set_seeds)} run(s) × {config.networks} classifiers."
    )
    return "\n".join(f"- {line}" if i else line for i, line in enumerate(lines))


# ----------------------------------------------------------------------------- computing


def cell_rows(cell: ClasswiseCell, root: Root = None) -> list[dict[str, Any]]:
    """Compute one cell: distil (or take the whole set), train every classifier, test it.

    Returns one row per classifier (see the module notes). A ``side_by_side`` cell computed
    alone is distilled side by side with no other set (its own group checkpoint).
    """
    if cell.side_by_side:
        with STUDY.group_checkpoint([cell], root) as folder:
            return compute_together([cell], root, folder)[0]
    device = default_device()
    train, test = study_data(cell.data)
    images, labels, synthetic, distill_time = training_set(
        STUDY, cell, train.to(device), cell.method, images_per_class=cell.images_per_class, seed=cell.set_seed,
        distill_config=cell.distill, root=root,
    )
    return _evaluated(cell, images, labels, synthetic, distill_time, test, device)


def compute_together(cells: list[ClasswiseCell], root: Root, checkpoint: Path) -> list[list[dict[str, Any]]]:
    """The ``side_by_side`` DM cells of one :func:`_together` key (one data set, config and IPC;
    one set seed each) distilled together by :func:`fairdd.distill.distill_side_by_side`, its
    resumable state in ``checkpoint``; rows per cell, in order."""
    device = default_device()
    first = cells[0]
    train, test = study_data(first.data)
    start = time.perf_counter()
    sets = distill_side_by_side(
        train.to(device), first.distill, images_per_class=first.images_per_class,
        seeds=[c.set_seed for c in cells], checkpoint_dir=checkpoint,
    )
    seconds = (time.perf_counter() - start) / len(cells)  # the group's time, shared equally
    out = []
    for cell, synthetic in zip(cells, sets):
        save_synthetic(STUDY, cell, synthetic.images, synthetic.labels, root)
        out.append(_evaluated(cell, synthetic.images, synthetic.labels, synthetic, seconds, test, device))
    return out


def _evaluated(
    cell: ClasswiseCell, images: torch.Tensor, labels: torch.Tensor, synthetic: Any, distill_time: float,
    test: Any, device: str,
) -> list[dict[str, Any]]:
    """Every architecture's classifiers trained on ``(images, labels)`` and tested: the cell's rows."""
    learned_lr = synthetic.learning_rate if synthetic is not None else None
    rows = []
    for evaluation in cell.evaluations:
        evaluated = evaluate_synthetic(images.to(device), labels.to(device), test, evaluation, seed=cell.set_seed)
        for row in evaluated:
            rows.append(
                {
                    "dataset": dataset_label(cell.data),
                    "architecture": ARCH_LABELS[evaluation.model],
                    "ipc": cell.images_per_class,
                    "network": row["network"],
                    "accuracy": row["accuracy"],
                    **{k: v for k, v in row.items() if k.startswith("acc_class_")},
                    "num_train": row["num_train"],
                    "train_time_s": row["train_time_s"],
                    "distill_time_s": distill_time,
                    "learned_lr": learned_lr,
                }
            )
    return rows


def _prepare_experts(cells: list[ClasswiseCell], root: Root, processes: int | None) -> None:
    """Train the MTT expert trajectories the unfinished cells read, once, in parallel.

    They are cached where :func:`fairdd.distill.distill` looks for them (the results root's
    ``cache/mtt_experts``), keyed by data and expert settings, so every IPC and seed shares them.
    """
    for data, config in dict.fromkeys((c.data, c.distill) for c in cells if c.method == "mtt"):
        train, _ = study_data(data)
        if torch.cuda.is_available():
            train_experts(train.to("cuda"), config, progress=False)
        else:
            workers = processes if processes is not None else (os.cpu_count() or 1)
            train_experts(train, config, progress=False, processes=min(workers, config.num_experts))


def cell_work(cell: ClasswiseCell) -> list[_work.Work]:
    """What the cell trains (:mod:`fairdd.studies._work`): its distillation (MTT's experts shared
    per data set) and each evaluation of its set, or the whole-set baselines."""
    n, shape, k = _work.train_size(cell.data)
    whole = cell.method == "whole"
    out = [] if whole else _work.distillation(cell.method, cell.distill, n=n, shape=shape, classes=k,
                                              ipc=cell.images_per_class, data_key=cell.data)
    for evaluation in cell.evaluations:
        out += _work.evaluation(evaluation, n if whole else k * cell.images_per_class, shape, k,
                                component="whole-set" if whole else "evaluation")
    return out


#: The configs the book's page runs at a profile: ``for_profile(profile, **variant)`` for each
#: (the 10-class task, then the 100-class task); ``fairdd.records`` verifies records against them.
BOOK_VARIANTS: tuple[dict[str, Any], ...] = ({}, {"num_classes": 100})

def _together(cell: ClasswiseCell) -> Any:
    """Side-by-side DM cells of one data set, config and IPC are distilled together."""
    return ("dm", cell.data, cell.distill, cell.images_per_class) if cell.side_by_side else None


def _group(cell: ClasswiseCell) -> Any:
    """Cells distilled together share a worker job; every other cell is a job of its own."""
    return _together(cell) or cell


STUDY = Study(name="classwise_dd", compute=cell_rows, work=cell_work, group=_group, prepare=_prepare_experts,
              together=_together, compute_together=compute_together)


def run_study(config: ClasswiseStudyConfig, *, processes: int | None = None, root: Root = None) -> pd.DataFrame:
    """Every cell of ``config`` through the run store; all rows (finished cells are only read).

    MTT's experts are trained first (in parallel), then the cells, most expensive first, in
    one-thread worker processes. Use ``processes=1`` on a GPU.
    """
    return STUDY.run(config.cells(), processes=processes, root=root)


def synthetic_images(cell: ClasswiseCell, *, root: Root = None) -> torch.Tensor:
    """A distillation cell's synthetic images in [0, 1] for display, ``(N, C, H, W)`` class-major."""
    saved = load_synthetic(STUDY, cell, root)
    return to_display(cell.data, saved["images"])

