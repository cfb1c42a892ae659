"""Dataset distillation and class-wise fairness: an IPC sweep of MTT (and DM) against the whole set.

The study follows *Impact of Data Distillation on Fairness in Machine Learning Models* (2025):
distil a 10-class image set with MTT at several sizes (images per class, IPC), several
distilled sets per IPC, and train several fresh classifiers (ConvNet and AlexNet) on each set;
the *baseline model* (BLM) is the same architectures trained on the whole training set, the
same number of runs. Fairness is class-wise: the variance of the class accuracies of a model.
DM runs the same sweep beside MTT (cheap, and a second method to see whether a finding is
MTT's), and a class-stratified random real subset of the same size (method ``"random"``) is the
control at each IPC: what training on that few *real* images does to class-wise fairness, so
that a trend of the distilled sets can be told from a trend of the training-set size.

Data (:class:`fairdd.data.StudyData`, :func:`study_data`): the paper's 10-class set is CIFAR-10 when its
files are present, else Fashion-MNIST as a stand-in; its 100-class set is CIFAR-100 when present,
else the MNIST digits (10 classes: a stand-in for the protocol, not for the 100-class
difficulty). Stand-ins are named so in every table and figure by :func:`dataset_label`;
per-channel normalisation with the training split's statistics, then, as an option (field
``zca``, on for CIFAR-10 and CIFAR-100 as MTT's reference does, off for the stand-ins), ZCA
whitening fitted on the whole (subset) training split (:mod:`fairdd.data._zca`).

Cells (:class:`ClasswiseCell`, :func:`cell_rows`): one distilled set (method × IPC × set seed)
or random real subset (IPC × subset seed) evaluated by every architecture, or one BLM run (the
whole set, one run index); through the run
store (study :data:`STUDY`). MTT's expert trajectories are trained once, before the cells, by
the study's ``prepare`` hook, and shared by every IPC and seed (:func:`fairdd.distill.train_experts`
caches them by data and expert settings).

Rows: tidy, **one row per trained model**, wide in the classes: ``dataset``, ``method``
(config column), ``architecture``, ``ipc`` (NaN for the BLM), ``seed`` (config column),
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
from fairdd.data import ZCA, Dataset, StudyData, denormalize, fit_zca, normalize_splits
from fairdd.distill import DMConfig, MTTConfig, distill_side_by_side, train_experts
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
#: The control: a class-stratified random real subset of IPC images per class (:func:`fairdd.evaluate.random_subset`).
CONTROL = "random"
METHODS: tuple[str, ...] = DISTILLERS + (CONTROL, "whole")
METHOD_LABELS = {"mtt": "MTT", "dm": "DM", CONTROL: "random real subset", "whole": "BLM (whole set)"}
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


def dataset_label(data: StudyData) -> str:
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


def check_data(data: StudyData) -> None:
    """``ValueError`` unless ``data`` is one of this study's data sets (:data:`SOURCES`, no
    attribute, no bias)."""
    if not isinstance(data, StudyData):
        raise ValueError(f"data={data!r} must be a fairdd.data.StudyData")
    check_choice("data.source", data.source, SOURCES)
    if data.attributes or data.bias is not None:
        raise ValueError(f"data={data!r}: the class-wise study reads no attribute and builds no bias")


@functools.lru_cache(maxsize=4)
def _prepared(data: StudyData) -> tuple[Dataset, Dataset, torch.Tensor, torch.Tensor, ZCA | None]:
    train, test, _ = data.load()
    train, test, (mean, std) = normalize_splits(train, test)
    zca = None
    if data.zca:
        zca = fit_zca(train.inputs)
        train = dataclasses.replace(train, inputs=zca.apply(train.inputs).contiguous())
        test = dataclasses.replace(test, inputs=zca.apply(test.inputs).contiguous())
    return train, test, mean, std, zca


def study_data(data: StudyData) -> tuple[Dataset, Dataset]:
    """Normalised (and, with ``zca``, whitened) ``(train, test)``; cached per process."""
    train, test, *_ = _prepared(data)
    return train, test


def to_display(data: StudyData, images: torch.Tensor) -> torch.Tensor:
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
    data : the data set and its pipeline (``zca``).
    method : ``"mtt"``, ``"dm"``, ``"random"`` (a random real subset, the control) or ``"whole"`` (the BLM).
    images_per_class : IPC; ``None`` for ``"whole"``.
    seed : distillation (subset) seed (BLM: the run index); classifier i is seeded from ``(seed, i)``.
    distill : the method config (``None`` for ``"random"`` and ``"whole"``).
    evaluations : one evaluation protocol per architecture (``num_networks`` classifiers each).
    side_by_side : (DM only) the set is distilled side by side with the other side-by-side DM
        sets of its IPC that one worker job computes (:func:`fairdd.distill.distill_side_by_side`,
        one seed each) — equal to distilling it alone within float tolerance, so it is part of
        the run id when set (and left out at its default, so the recorded runs keep their ids).
    """

    data: StudyData
    method: str
    images_per_class: int | None
    seed: int
    distill: MTTConfig | DMConfig | None
    evaluations: tuple[EvalConfig, ...]
    side_by_side: bool = dataclasses.field(default=False, metadata={"run_id": "unless_default"})

    def __post_init__(self) -> None:
        check_data(self.data)
        check_choice("method", self.method, METHODS)
        check_int("seed", self.seed, minimum=0)
        if not isinstance(self.side_by_side, bool):
            raise ValueError(f"side_by_side={self.side_by_side!r} must be True or False")
        if self.side_by_side and self.method != "dm":
            raise ValueError(f"side_by_side=True is for method 'dm' only (method={self.method!r})")
        if (self.method == "whole") != (self.images_per_class is None):
            raise ValueError(f"images_per_class={self.images_per_class!r}: None exactly for method 'whole'")
        if self.images_per_class is not None:
            check_int("images_per_class", self.images_per_class, minimum=1)
        if (self.method in DISTILLERS) == (self.distill is None):
            raise ValueError(f"distill={self.distill!r}: None exactly for methods {CONTROL!r} and 'whole'")
        if not self.evaluations or not all(isinstance(e, EvalConfig) for e in self.evaluations):
            raise ValueError(f"evaluations={self.evaluations!r} must be a non-empty tuple of EvalConfig")


@dataclass(frozen=True)
class ClasswiseStudyConfig:
    """The sweep: methods × IPC × distilled sets, classifiers per set, and the BLM. See :meth:`for_profile`.

    Attributes
    ----------
    profile : ``"smoke"``, ``"cpu"`` or ``"paper"``.
    data : the data set and pipeline (a :class:`fairdd.data.StudyData` of :data:`SOURCES`;
        ``zca`` whitens it).
    methods : distillation methods (``"mtt"``, ``"dm"``) and, as a control, ``"random"`` (a random
        real subset of the same IPC); the BLM always runs.
    ipcs : the IPC sweep (paper on CIFAR-10: 1, 5, 10, 15, 20, 25, 30).
    mtt_ipcs : MTT's sweep where it stops short of ``ipcs`` (its cost grows with IPC, DM's
        hardly); ``None``: ``ipcs``. Must be a subset of ``ipcs``.
    seeds : one distilled set per seed and IPC (paper: 10); also the BLM's run indices.
    architectures : classifier architectures (paper: ConvNet and AlexNet).
    mtt, dm : the method configs; the ConvNet classifier is MTT's distillation network.
    evaluation : the classifiers' protocol on a synthetic set (authors' fork: 1000 epochs, lr
        0.01 fixed rather than MTT's learned rate; DSA as MTT's evaluation, with MTT's DSA
        strategy), ``num_networks`` classifiers per set and architecture (paper: 10); its
        ``network`` is replaced by each architecture's classifier.
    whole : the BLM's protocol on the whole training split (likewise per architecture).
    fast_kernels : the classifiers (every architecture, on synthetic sets and on the whole set)
        use :attr:`fairdd.models.NetworkSpec.fast_kernels` (the same function, about twice as
        fast a training step on CPU; equal within float tolerance, so their run ids change).
    side_by_side : train each set's classifiers (and the BLM's) side by side
        (:attr:`fairdd.evaluate.EvalConfig.side_by_side`) and distil the DM sets of one IPC
        (one per seed) side by side (:attr:`ClasswiseCell.side_by_side`); equal to one-by-one
        training within float tolerance, so the cells' run ids change when it is on. Default
        off (the recorded runs); meant for a GPU.
    """

    profile: str
    data: StudyData = StudyData("cifar10", zca=True)
    methods: tuple[str, ...] = DISTILLERS
    ipcs: tuple[int, ...] = PAPER_IPCS[10]
    mtt_ipcs: tuple[int, ...] | None = None
    seeds: tuple[int, ...] = tuple(range(10))
    architectures: tuple[str, ...] = ARCHITECTURES
    mtt: MTTConfig = MTTConfig()
    dm: DMConfig = DMConfig()
    evaluation: EvalConfig = EvalConfig(epochs=1000, lr=0.01, dsa=True, num_networks=10)
    whole: EvalConfig = EvalConfig(epochs=50, lr=0.01, batch_size=256, num_networks=10)
    fast_kernels: bool = False
    side_by_side: bool = False

    def __post_init__(self) -> None:
        check_profile(self.profile)
        check_data(self.data)
        for name in ("side_by_side", "fast_kernels"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} must be True or False")
        check_sequence("methods", self.methods, lambda f, v: check_choice(f, v, DISTILLERS + (CONTROL,)))
        check_sequence("ipcs", self.ipcs, lambda f, v: check_int(f, v, minimum=1))
        if self.mtt_ipcs is not None:
            check_sequence("mtt_ipcs", self.mtt_ipcs, lambda f, v: check_choice(f, v, self.ipcs))
            if len(set(self.mtt_ipcs)) != len(self.mtt_ipcs):
                raise ValueError(f"mtt_ipcs={self.mtt_ipcs!r} must not repeat a value")
        if not set(self.methods) & set(DISTILLERS):
            raise ValueError(f"methods={self.methods!r} must name at least one of {DISTILLERS} (the control alone has no claim)")
        check_sequence("seeds", self.seeds, lambda f, v: check_int(f, v, minimum=0))
        check_sequence("architectures", self.architectures, lambda f, v: check_choice(f, v, ARCHITECTURES))
        for name in ("ipcs", "seeds", "methods", "architectures"):
            if len(set(getattr(self, name))) != len(getattr(self, name)):
                raise ValueError(f"{name}={getattr(self, name)!r} must not repeat a value")
        for name in ("evaluation", "whole"):
            if not isinstance(getattr(self, name), EvalConfig):
                raise ValueError(f"{name}={getattr(self, name)!r} must be a fairdd.evaluate.EvalConfig")
        if not isinstance(self.mtt, MTTConfig) or not isinstance(self.dm, DMConfig):
            raise ValueError("mtt and dm must be an MTTConfig and a DMConfig")

    @classmethod
    def for_profile(
        cls, profile: str, *, num_classes: int = 10, source: str | None = None, **overrides: Any
    ) -> "ClasswiseStudyConfig":
        """The page's protocols for the paper's 10-class or 100-class task, all stated here.

        ``num_classes`` picks the task (10: ConvNet and AlexNet, IPC 1…30; 100: ConvNet only,
        IPC 1…35, as the paper); ``source`` defaults to the task's CIFAR set when present, else
        its stand-in (:func:`default_source`).

        - ``"paper"``: the paper's — its IPC sweep, 10 sets per IPC, 10 classifiers per set and
          architecture, MTT and DM at the reference settings, 1000 epochs with DSA; ZCA on CIFAR.
        - ``"cpu"``: ≤ 15 minutes on 2 cores for both tasks together; :func:`describe_profile`
          states every reduction. Designed so the claims can be answered (issue 23): the DM
          sweep reaches the paper's IPC 30 (DM's cost hardly grows with IPC), MTT's stops at
          10 (its cost grows linearly); a random real subset at every IPC is the control; four
          sets per IPC of two classifiers each (the set is the experimental unit; eight models
          per group, so the authors' 2σ filter can fire); the classifiers on fast kernels. The
          100-class task runs MTT and the control only, at fewer IPCs and sets.
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
            base = dataclasses.replace(base, architectures=task["architectures"], methods=("mtt", CONTROL),
                                       mtt_ipcs=None,
                                       **({"ipcs": (1, 10), "seeds": (0, 1, 2)} if profile == "cpu" else {}))
        return dataclasses.replace(base, **overrides) if overrides else base

    @classmethod
    def _profile(cls, profile: str, source: str, zca: bool) -> "ClasswiseStudyConfig":
        """The 10-class task's protocol at ``profile``."""
        if profile == "paper":
            return cls(profile="paper", data=StudyData(source, zca=zca))
        if profile == "cpu":
            net = NetworkSpec(width=16)
            return cls(
                profile="cpu",
                data=StudyData(source, train_per_class=300, test_per_class=200, zca=zca),
                methods=DISTILLERS + (CONTROL,),
                ipcs=(1, 5, 10, 20, 30),
                # MTT's cost grows linearly with IPC (about 7 s per IPC per set here): IPC 20
                # would double the chapter. DM's hardly grows: its sweep reaches the paper's 30.
                mtt_ipcs=(1, 5, 10),
                seeds=(0, 1, 2, 3),
                # The DD references' AlexNet (128-256 channels, no width option) costs many times
                # this narrow ConvNet per step (benchmarks/bench_models.py times both), beyond a
                # quarter-hour for this sweep. It runs at "paper" and "smoke".
                architectures=("convnet",),
                mtt=MTTConfig(
                    network=net, num_experts=2, expert_train_epochs=4, expert_epoch_size=None, expert_batch=128,
                    max_start_epoch=2, expert_epochs=2, syn_steps=8, iterations=80, checkpoint_every=20,
                ),
                # fast_kernels for DM (about 1.2x, benchmarks/bench_flops.py) and the classifiers
                # (about 2x a training step); not for MTT's unrolled steps, where it is slower (0.9x).
                dm=DMConfig(network=dataclasses.replace(net, fast_kernels=True), batch_real=32, iterations=60,
                            lr_img=5.0),
                evaluation=EvalConfig(epochs=150, lr=0.01, num_networks=2),
                # Enough epochs for the BLM to converge on this subset: a BLM still rising is a
                # weak baseline, and "DD beats the BLM" would then be no finding.
                whole=EvalConfig(epochs=15, lr=0.01, batch_size=128, num_networks=2),
                fast_kernels=True,
            )
        net = NetworkSpec(width=8, depth=2)
        return cls(
            profile="smoke",
            data=StudyData(source, train_per_class=20, test_per_class=10, zca=zca),
            methods=DISTILLERS + (CONTROL,),
            ipcs=(1, 2),
            seeds=(0, 1),
            mtt=MTTConfig(
                network=net, num_experts=2, expert_train_epochs=3, expert_epoch_size=None, expert_batch=64,
                max_start_epoch=2, expert_epochs=1, syn_steps=3, iterations=2, checkpoint_every=1,
            ),
            dm=DMConfig(network=net, batch_real=16, iterations=2, checkpoint_every=1),
            evaluation=EvalConfig(epochs=2, lr=0.01, num_networks=1),
            whole=EvalConfig(epochs=1, lr=0.01, batch_size=64, num_networks=1),
        )

    def evaluations(self, *, whole: bool = False) -> tuple[EvalConfig, ...]:
        """The classifiers' protocol per architecture (synthetic set, or the whole set): the
        ``evaluation`` (``whole``) block with the architecture's network, MTT's DSA strategy
        when it augments, and :attr:`side_by_side`."""
        out = []
        for architecture in self.architectures:
            config = dataclasses.replace(self.whole if whole else self.evaluation,
                                         network=_classifier(self, architecture))
            if config.dsa:
                config = dataclasses.replace(config, dsa_strategy=self.mtt.dsa_strategy)
            if self.side_by_side:
                config = dataclasses.replace(config, side_by_side=True)
            out.append(config)
        return tuple(out)

    def method_ipcs(self, method: str) -> tuple[int, ...]:
        """The IPCs ``method`` runs at (MTT: :attr:`mtt_ipcs` where set)."""
        return self.mtt_ipcs if method == "mtt" and self.mtt_ipcs is not None else self.ipcs

    def cell(self, method: str, images_per_class: int | None, seed: int) -> ClasswiseCell:
        whole = method == "whole"
        return ClasswiseCell(
            data=self.data,
            method=method,
            images_per_class=None if whole else images_per_class,
            seed=seed,
            distill=getattr(self, method) if method in DISTILLERS else None,
            evaluations=self.evaluations(whole=whole),
            side_by_side=self.side_by_side and method == "dm",
        )

    def cells(self) -> list[ClasswiseCell]:
        """Every run: method × IPC (:meth:`method_ipcs`) × seed, then one BLM run per seed."""
        out = [self.cell(m, ipc, s) for m in self.methods for ipc in self.method_ipcs(m) for s in self.seeds]
        return out + [self.cell("whole", None, s) for s in self.seeds]


def _classifier(config: "ClasswiseStudyConfig", architecture: str) -> NetworkSpec:
    """The classifier network: MTT's distillation ConvNet, or the references' AlexNet (on fast
    kernels where :attr:`ClasswiseStudyConfig.fast_kernels`)."""
    if architecture == "convnet":
        return dataclasses.replace(config.mtt.network, fast_kernels=config.fast_kernels)
    return NetworkSpec(model=architecture, fast_kernels=config.fast_kernels)  # type: ignore[arg-type]


def _describe_network(spec: NetworkSpec) -> str:
    return f"width {spec.width}, depth {spec.depth}, {spec.norm}"


def task_classes(data: StudyData) -> int:
    """The paper's task a data set plays: 10 (CIFAR-10 or its stand-in) or 100 (CIFAR-100 or its)."""
    return 100 if data.source in (PAPER_SOURCE[100], STAND_IN[100]) else 10


def describe_profile(config: ClasswiseStudyConfig) -> pd.DataFrame:
    """Which protocol produced the numbers: one row per setting, ``setting``, ``this build``
    (read from ``config``) and ``paper`` (the paper's, :meth:`ClasswiseStudyConfig.for_profile`
    ``"paper"`` of the same task)."""
    d, mtt, dm = config.data, config.mtt, config.dm
    task = task_classes(d)
    paper = ClasswiseStudyConfig.for_profile("paper", num_classes=task, source=PAPER_SOURCE[task])
    pm, pd_ = paper.mtt, paper.dm

    def sizes(data: StudyData) -> str:
        return "all images" if data.train_per_class is None else (
            f"{data.train_per_class} training / {data.test_per_class} test per class")

    def evaluation(c: ClasswiseStudyConfig) -> str:
        e = c.evaluation
        return (f"{e.num_networks} per set and architecture, {e.epochs} epochs, lr {e.lr:g}, "
                f"{'DSA' if e.dsa else 'no augmentation'}" + (", fast kernels" if c.fast_kernels else ""))

    def ipcs(c: ClasswiseStudyConfig) -> str:
        text = ", ".join(map(str, c.ipcs))
        if "mtt" in c.methods and c.mtt_ipcs is not None and tuple(c.mtt_ipcs) != tuple(c.ipcs):
            text += f" (MTT: {', '.join(map(str, c.mtt_ipcs))})"
        return text

    def archs(c: ClasswiseStudyConfig) -> str:
        return ", ".join(ARCH_LABELS[a] for a in c.architectures)

    rows = [
        ("profile", config.profile, "paper"),
        ("data set", dataset_label(d), dataset_label(paper.data)),
        ("images", sizes(d), sizes(paper.data)),
        ("ZCA whitening", "on" if d.zca else "off", "on"),
        ("methods", ", ".join(METHOD_LABELS[m] for m in config.methods),
         ", ".join(METHOD_LABELS[m] for m in paper.methods)),
        ("IPC", ipcs(config), ipcs(paper)),
        ("distilled sets (random subsets) per IPC", str(len(config.seeds)), str(len(paper.seeds))),
        ("architectures", archs(config), archs(paper)),
        ("classifiers on a synthetic set", evaluation(config), evaluation(paper)),
        ("ConvNet", _describe_network(_classifier(config, "convnet")), _describe_network(_classifier(paper, "convnet"))),
        ("control", "a random real subset at every IPC" if CONTROL in config.methods else "none",
         "a random real subset at every IPC" if CONTROL in paper.methods else "none"),
    ]
    if "mtt" in config.methods:
        rows += [
            ("MTT experts (shared by every IPC and set)",
             f"{mtt.num_experts} × {mtt.expert_train_epochs} epochs"
             + (f" of {mtt.expert_epoch_size} images" if mtt.expert_epoch_size else ""),
             f"{pm.num_experts} × {pm.expert_train_epochs} epochs"),
            ("MTT iterations", str(mtt.iterations), str(pm.iterations)),
            ("MTT syn_steps / expert_epochs / max_start_epoch",
             f"{mtt.syn_steps} / {mtt.expert_epochs} / {mtt.max_start_epoch}",
             f"{pm.syn_steps} / {pm.expert_epochs} / {pm.max_start_epoch}"),
            ("MTT image learning rate", f"{mtt.lr_img:g}", f"{pm.lr_img:g}"),
        ]
    if "dm" in config.methods:
        rows += [
            ("DM iterations", str(dm.iterations), str(pd_.iterations)),
            ("DM network width", str(dm.network.width), str(pd_.network.width)),
            ("DM real images per class per iteration", str(dm.batch_real), str(pd_.batch_real)),
            ("DM image learning rate", f"{dm.lr_img:g}", f"{pd_.lr_img:g}"),
        ]
    rows.append(("BLM (whole training split)",
                 f"{len(config.seeds)} run(s) × {config.whole.num_networks} classifiers, {config.whole.epochs} "
                 f"epoch(s), batch {config.whole.batch_size}",
                 f"{len(paper.seeds)} runs × {paper.whole.num_networks} classifiers, {paper.whole.epochs} epochs, "
                 f"batch {paper.whole.batch_size}"))
    if config.side_by_side:
        rows.append(("side by side", "classifiers of a set and DM sets of an IPC (equal within float tolerance)",
                     "one by one"))
    return pd.DataFrame(rows, columns=["setting", "this build", "paper"])


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
        STUDY, cell, train.to(device), cell.method, images_per_class=cell.images_per_class, seed=cell.seed,
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
        seeds=[c.seed for c in cells], checkpoint_dir=checkpoint,
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
        evaluated = evaluate_synthetic(images.to(device), labels.to(device), test, evaluation, seed=cell.seed)
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
        device = default_device()
        if device != "cpu":
            train_experts(train.to(device), config, progress=False)
        else:
            workers = processes if processes is not None else (os.cpu_count() or 1)
            train_experts(train, config, progress=False, processes=min(workers, config.num_experts))


def cell_work(cell: ClasswiseCell) -> list[_work.Work]:
    """What the cell trains (:mod:`fairdd.studies._work`): its distillation (MTT's experts shared
    per data set) and each evaluation of its set, or the whole-set baselines."""
    n, shape, k = _work.train_size(cell.data)
    whole = cell.method == "whole"
    out = [] if cell.distill is None else _work.distillation(cell.method, cell.distill, n=n, shape=shape, classes=k,
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

