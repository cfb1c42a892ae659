"""Dataset bias in dataset distillation (Lu et al. 2024), and a debiased variant.

Lu et al. 2024, "Exploring the Impact of Dataset Bias on Dataset Distillation": the study
distils biased training sets and asks how much of the bias the synthetic sets carry.

Data (:class:`fairdd.data.StudyData` with a :class:`fairdd.data.BiasSpec`, :func:`fairdd.data.make_splits`,
:func:`fairdd.data.study_data`).
From a grey image set, Lu et al.'s construction (:func:`fairdd.data.make_biased`): every image
gets a bias attribute ``a`` in 0–9, a colour of the digit (``kind="colour"``, CMNIST-DD) or a CIFAR-10-C corruption (``kind="corruption"``,
CCIFAR10-DD; on Fashion-MNIST when CIFAR-10 is absent, a stand-in). The bias ratio ``r`` is
the fraction of each class whose attribute equals its label (0.1 unbiased, 0 fully conflicting).
Two test splits of the same test images: *bias-conflicting* (``r = 0``, the paper's test set)
and *bias-aligned* (``r = 1``). All splits are normalised with one fixed per-channel statistic
per data set, that of the unbiased (``r = 0.1``) colouring of the training images — with
balanced classes the attribute marginal is uniform at every ratio, so the statistic is the
same up to jitter, and one fixed input space lets one attribute probe read every synthetic set.

Cells (:class:`BiasCell`, :func:`cell_rows`): one method × bias ratio × seed, through the run
store (study :data:`STUDY`). Methods: ``"dc"``, ``"dsa"``, ``"dm"``, the debiased
``"dm_balanced"`` / ``"dc_balanced"`` / ``"dsa_balanced"`` (the same method with
group-balanced real sampling, :class:`fairdd.data.RealSampler`: within each class every
attribute group gets the same share of the real batches and of the initial images — BTEO for
images; the attribute is used only while distilling), and the baselines ``"random"`` (a random
real subset of the same size: exactly the set DC/DSA/DM start from, as their real
initialisation draws with the same seed), ``"random_balanced"`` (a group-balanced random real
subset: exactly the set the ``*_balanced`` methods start from) and ``"whole"`` (the whole
biased training set).

Measures of a (synthetic) set (:func:`fairdd.probe.set_measures`), read with an *attribute probe*
(:func:`fairdd.probe.attribute_probe`: a small ConvNet trained to predict the attribute on the unbiased
``r = 0.1`` colouring of the training images, so it never saw attribute and label together):

* ``aligned_fraction`` (:func:`fairdd.metrics.attribute_alignment`): per class c, the fraction of c's images
  the probe assigns attribute c — how much of the class's set carries its bias; averaged over
  classes. A random real subset at ratio r gives about r (times the probe's accuracy).
* ``attribute_entropy`` (:func:`fairdd.metrics.attribute_entropy`): per class, the entropy of the probe's
  attribute predictions over the class's images divided by ``log(10)`` (0: one attribute
  only, 1: uniform); averaged over classes. A diversity measure.
* ``pairwise_distance`` (:func:`fairdd.metrics.pairwise_distance`): per class, the mean RMS pixel distance
  between two of its images (normalised space); averaged over classes. A second diversity
  measure, blind to the attribute.

Tables, claims and figures live in :mod:`fairdd.studies.bias_report` (re-exported here).
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from fairdd import seeding, stats
from fairdd.augment import DIGITS_STRATEGY
from fairdd.config import check_choice, check_int, check_number, check_profile, check_sequence
from fairdd.data import (
    BIAS_KINDS,
    BIAS_RATIOS,
    BIAS_SOURCES,
    BiasSpec,
    RealSampler,
    StudyData,
    dataset_label,
    default_corruption_source,
    denormalize,
    normalization_stats,
    study_data,
)
from fairdd.distill import DCConfig, DMConfig, dsa_config
from fairdd.evaluate import EvalConfig, evaluate_synthetic, random_subset
from fairdd.models import NetworkSpec
from fairdd.parallel import job_progress, map_processes
from fairdd.probe import ProbeSpec, attribute_probe, set_measures
from fairdd.studies._dd import load_synthetic, training_set
from fairdd.studies import _work
from fairdd.studies._study import Root, Study
from fairdd.training import default_device

__all__ = [
    "BASELINES",
    "BiasCell",
    "BiasStudyConfig",
    "DEBIASED",
    "DISTILLERS",
    "METHODS",
    "METHOD_LABELS",
    "STUDY",
    "bias_data",
    "cell_rows",
    "describe_profile",
    "probe_table",
    "run_study",
    "synthetic_images",
]

KINDS = BIAS_KINDS
SOURCES = BIAS_SOURCES
WHOLE_MEASURE_PER_CLASS = 100  # images per class the whole set's measures are computed on
DISTILLERS: tuple[str, ...] = ("dc", "dsa", "dm")
DEBIASED: tuple[str, ...] = ("dc_balanced", "dsa_balanced", "dm_balanced")
BASELINES: tuple[str, ...] = ("random", "random_balanced", "whole")
METHODS: tuple[str, ...] = DISTILLERS + DEBIASED + BASELINES
METHOD_LABELS = {
    "dc": "DC", "dsa": "DSA", "dm": "DM", "dc_balanced": "DC + balanced", "dsa_balanced": "DSA + balanced",
    "dm_balanced": "DM + balanced", "random": "random real", "random_balanced": "balanced random real",
    "whole": "whole set",
}

# ----------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class BiasCell:
    """One run of the study: a method on one biased training set, one seed.

    Attributes
    ----------
    data : the biased data set (a :class:`fairdd.data.StudyData` with a ``bias``);
        ``bias_ratio`` its ratio.
    method : one of :data:`METHODS`.
    seed : distillation / random-subset seed; evaluation network i is seeded from ``(seed, i)``.
    images_per_class : synthetic (or random real) images per class; ``None`` for ``"whole"``.
    distill : the method config (``None`` for the baselines).
    evaluation : how the set is evaluated (the study's ``whole`` protocol for the whole set).
    probe : the attribute probe that measures the set.
    """

    data: StudyData
    bias_ratio: float
    method: str
    seed: int
    images_per_class: int | None
    distill: DCConfig | DMConfig | None
    evaluation: EvalConfig
    probe: ProbeSpec

    def __post_init__(self) -> None:
        if not isinstance(self.data, StudyData) or self.data.bias is None:
            raise ValueError(f"data={self.data!r} must be a fairdd.data.StudyData with a bias")
        check_number("bias_ratio", self.bias_ratio, minimum=0.0, maximum=1.0)
        check_choice("method", self.method, METHODS)
        check_int("seed", self.seed, minimum=0)
        if (self.method == "whole") != (self.images_per_class is None):
            raise ValueError(f"images_per_class={self.images_per_class!r}: None exactly for method 'whole'")
        if self.images_per_class is not None:
            check_int("images_per_class", self.images_per_class, minimum=1)
        if (self.method in BASELINES) != (self.distill is None):
            raise ValueError(f"distill={self.distill!r}: None exactly for the baselines {BASELINES}")


def bias_data(
    source: str, kind: str, severity: int, *, train_per_class: int | None = None, test_per_class: int | None = None,
    data_seed: int = 0,
) -> StudyData:
    """The :class:`fairdd.data.StudyData` of one biased data set (Lu et al.'s construction)."""
    return StudyData(source=source, train_per_class=train_per_class, test_per_class=test_per_class,
                     data_seed=data_seed, bias=BiasSpec(kind, severity))


@dataclass(frozen=True)
class BiasStudyConfig:
    """The whole sweep: two biased data sets × ratios × methods × seeds. See :meth:`for_profile`.

    Attributes
    ----------
    profile : ``"smoke"``, ``"cpu"`` or ``"paper"`` (what the page says its numbers come from).
    data : the two biased data sets, ``(colour, corruption)``: CMNIST-DD (MNIST digits, colour
        bias) and the corruption-biased set (CIFAR-10, or Fashion-MNIST as a stand-in), each a
        :class:`fairdd.data.StudyData` with its :class:`fairdd.data.BiasSpec` (kind, severity),
        subset sizes (``None``: all images) and data seed (which also seeds its probe).
    bias_ratios : training bias ratios (Lu et al.: 0, 0.1, 0.5, 0.8, 0.95, 1).
    seeds : one distillation + evaluation per seed; tables give mean ± std over seeds.
    images_per_class : IPC of the synthetic sets and of the random real subset (paper 50).
    colour_methods, corruption_methods : the methods run on each data set (the baselines
        :data:`BASELINES` always run).
    dc, dsa, dm : the method configs (DSA: ``augment=True``); on digits the DSA strategy drops
        the flip (:data:`fairdd.augment.DIGITS_STRATEGY`). The ``*_balanced`` methods are these
        with ``real_sampling="group_balanced"``.
    evaluation : protocol for every set; ``evaluation_dsa``, when given, replaces it for sets
        distilled with DSA augmentation (DSA, DM), as the reference evaluates them.
    whole : the whole-set baseline's protocol.
    probe_training : the attribute probe's network and protocol.
    side_by_side : train each set's evaluation networks side by side
        (:attr:`fairdd.evaluate.EvalConfig.side_by_side`; equal to one-by-one training within
        float tolerance, so the cells' run ids change when it is on). Default off (the recorded
        runs); meant for a GPU.
    """

    profile: str
    data: tuple[StudyData, ...] = (bias_data("mnist", "colour", 4), bias_data("fashion_mnist", "corruption", 4))
    bias_ratios: tuple[float, ...] = BIAS_RATIOS
    seeds: tuple[int, ...] = (0, 1, 2)
    images_per_class: int = 50
    colour_methods: tuple[str, ...] = DISTILLERS + ("dm_balanced",)
    corruption_methods: tuple[str, ...] = DISTILLERS + ("dm_balanced",)
    dc: DCConfig = DCConfig()
    dsa: DCConfig = dsa_config()
    dm: DMConfig = DMConfig()
    evaluation: EvalConfig = EvalConfig()
    evaluation_dsa: EvalConfig | None = EvalConfig(dsa=True)
    whole: EvalConfig = EvalConfig(epochs=150)
    probe_training: EvalConfig = EvalConfig(network=NetworkSpec(width=32), epochs=5, batch_size=128, num_networks=1)
    side_by_side: bool = False

    def __post_init__(self) -> None:
        check_profile(self.profile)
        if (not isinstance(self.data, tuple) or len(self.data) != len(KINDS)
                or not all(isinstance(d, StudyData) and d.bias is not None for d in self.data)
                or tuple(d.bias.kind for d in self.data) != KINDS):
            raise ValueError(
                f"data={self.data!r} must be a tuple of two fairdd.data.StudyData with a bias, of kinds {KINDS} in order"
            )
        check_sequence("bias_ratios", self.bias_ratios, lambda f, v: check_number(f, v, minimum=0.0, maximum=1.0))
        if len(set(self.bias_ratios)) != len(self.bias_ratios):
            raise ValueError(f"bias_ratios={self.bias_ratios!r} must not repeat a ratio")
        check_sequence("seeds", self.seeds, lambda f, v: check_int(f, v, minimum=0))
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds={self.seeds!r} must not repeat a seed")
        check_int("images_per_class", self.images_per_class, minimum=1)
        for name in ("colour_methods", "corruption_methods"):
            check_sequence(name, getattr(self, name), lambda f, v: check_choice(f, v, DISTILLERS + DEBIASED))
        for name, cls, augment in (("dc", DCConfig, False), ("dsa", DCConfig, True), ("dm", DMConfig, None)):
            value = getattr(self, name)
            if not isinstance(value, cls) or (augment is not None and value.augment != augment):
                wanted = cls.__name__ + (f" with augment={augment}" if augment is not None else "")
                raise ValueError(f"{name}={value!r} must be a {wanted}")
            used = set(self.colour_methods + self.corruption_methods)
            if isinstance(value, DCConfig) and used & {name, f"{name}_balanced"}:
                value.loops_for(self.images_per_class)  # a missing IPC is a ValueError now, not mid-sweep
        for name in ("evaluation", "whole", "probe_training"):
            if not isinstance(getattr(self, name), EvalConfig):
                raise ValueError(f"{name}={getattr(self, name)!r} must be a fairdd.evaluate.EvalConfig")
        if self.evaluation_dsa is not None and not isinstance(self.evaluation_dsa, EvalConfig):
            raise ValueError(f"evaluation_dsa={self.evaluation_dsa!r} must be an EvalConfig or None")
        for d in self.data:
            if d.train_per_class is not None and d.train_per_class < self.images_per_class:
                raise ValueError(
                    f"data {d.source!r}: train_per_class={d.train_per_class!r} must be >= "
                    f"images_per_class={self.images_per_class!r}"
                )
        if not isinstance(self.side_by_side, bool):
            raise ValueError(f"side_by_side={self.side_by_side!r} must be True or False")

    @classmethod
    def for_profile(
        cls, profile: str, *, corruption_source: str | None = None, colour_severity: int = 4,
        corruption_severity: int = 4,
    ) -> "BiasStudyConfig":
        """The page's three protocols, all stated here.

        ``corruption_source`` defaults to :func:`default_corruption_source` (CIFAR-10 when its
        files are present, else Fashion-MNIST as a stand-in); ``colour_severity`` and
        ``corruption_severity`` are the two data sets' bias severities (Lu et al.: 1–4).

        - ``"paper"``: Lu et al.'s protocol — IPC 50, DC/DSA/DM at the reference settings
          (the configs' defaults), all images, 3 seeds, 20 evaluation ConvNets (width 128) of
          300 epochs (1000 with DSA for DSA/DM sets), the whole set 150 epochs (the paper's
          training setting); the debiased DM on both data sets.
        - ``"cpu"``: a stated reduction that runs in about a quarter of an hour on 2 CPU
          cores (5 seeds, networks on the ``fast_kernels`` path); :func:`describe_profile`
          lists it against the paper.
        - ``"smoke"``: seconds per cell, for CI: ratios 0.1, 0.8, 1, 20 training / 10 test
          images per class, IPC 2, 2–3 iterations, networks of width 8, 2 seeds.
        """
        check_profile(profile)
        source = default_corruption_source() if corruption_source is None else corruption_source
        check_choice("corruption_source", source, BIAS_SOURCES["corruption"])

        def datasets(**sizes: Any) -> tuple[StudyData, StudyData]:
            return (bias_data("mnist", "colour", colour_severity, **sizes),
                    bias_data(source, "corruption", corruption_severity, **sizes))

        if profile == "paper":
            return cls(profile="paper", data=datasets())
        if profile == "cpu":
            # Width 16 everywhere: about half the convolution FLOPs of width 32 per image
            # (benchmarks/bench_models.py measures the cost); fast_kernels: the same networks on
            # the faster CPU path (results equal within float tolerance; benchmarks/bench_flops.py
            # measured training steps about 2.1x and DM iterations about 1.2x faster), which pays
            # for 5 seeds instead of 3: with 3 sets per cell claim 3's tests could not detect an
            # effect below about 14 points (fairdd.stats.minimum_detectable_effect on the 3-seed
            # record of commit f7bcc25, where DM beat the whole set by 7.8 points at r = 1, p = 0.054).
            net = NetworkSpec(width=16, fast_kernels=True)
            # DC and DSA are left out at cpu: the budget here allows about 15 iterations of one
            # matching step each (benchmarks/bench_distill.py measures their cost per iteration
            # at the reference IPC-10 loops, 10 outer / 50 inner), too few to move the images from the real images they
            # start from, so their rows would be a random real subset under another name. They
            # run at paper and smoke; the methods page runs them at cpu on their own protocol.
            return cls(
                profile="cpu",
                data=datasets(train_per_class=600, test_per_class=100),
                seeds=(0, 1, 2, 3, 4),
                images_per_class=10,
                colour_methods=("dm", "dm_balanced"),
                corruption_methods=("dm", "dm_balanced"),
                # lr_img 5 (reference 1): with 60 instead of 20000 updates the images hardly move
                # from their initial real images at the reference rate.
                dm=DMConfig(network=net, batch_real=32, iterations=60, lr_img=5.0),
                evaluation=EvalConfig(network=net, epochs=50, num_networks=1),
                evaluation_dsa=None,
                whole=EvalConfig(network=net, epochs=2, batch_size=128, num_networks=1),
                # 6 epochs: the probe's held-out accuracy is on the page (with fewer the
                # corruption probe is close to chance).
                probe_training=EvalConfig(network=net, epochs=6, batch_size=128, num_networks=1),
            )
        net = NetworkSpec(width=8, depth=2)
        tiny = {"network": net, "batch_real": 8, "checkpoint_every": 1}
        return cls(
            profile="smoke",
            data=datasets(train_per_class=20, test_per_class=10),
            bias_ratios=(0.1, 0.8, 1.0),
            seeds=(0, 1),
            images_per_class=2,
            colour_methods=DISTILLERS + ("dm_balanced",),
            corruption_methods=("dm", "dm_balanced"),
            dc=DCConfig(init="real", iterations=2, loops={2: (1, 0)}, **tiny),
            dsa=dsa_config(iterations=2, loops={2: (1, 0)}, **tiny),
            dm=DMConfig(iterations=3, **tiny),
            evaluation=EvalConfig(network=net, epochs=3, num_networks=1),
            evaluation_dsa=None,
            whole=EvalConfig(network=net, epochs=1, batch_size=64, num_networks=1),
            probe_training=EvalConfig(network=net, epochs=2, batch_size=64, num_networks=1),
        )

    def dataset(self, kind: str) -> StudyData:
        """The :class:`fairdd.data.StudyData` of the ``"colour"`` or ``"corruption"`` data set."""
        check_choice("kind", kind, KINDS)
        return self.data[KINDS.index(kind)]

    def probe(self, kind: str) -> ProbeSpec:
        data = self.dataset(kind)
        return ProbeSpec(data=data, training=self.probe_training, seed=data.data_seed)

    def methods(self, kind: str) -> tuple[str, ...]:
        """Distillation methods on a data set, then the two baselines."""
        return (self.colour_methods if kind == "colour" else self.corruption_methods) + BASELINES

    def cell(self, kind: str, bias_ratio: float, method: str, seed: int) -> BiasCell:
        """The run of one method × ratio × seed on one data set."""
        data = self.dataset(kind)
        distill_config: DCConfig | DMConfig | None = None
        evaluation = self.evaluation
        if method not in BASELINES:
            base = method.removesuffix("_balanced")
            distill_config = getattr(self, base)
            if data.source == "mnist":
                distill_config = dataclasses.replace(distill_config, dsa_strategy=DIGITS_STRATEGY)
            if method.endswith("_balanced"):
                distill_config = dataclasses.replace(distill_config, real_sampling="group_balanced")
            if distill_config.augment and self.evaluation_dsa is not None:
                evaluation = self.evaluation_dsa
                if data.source == "mnist":
                    evaluation = dataclasses.replace(evaluation, dsa_strategy=DIGITS_STRATEGY)
        elif method == "whole":
            evaluation = self.whole
        if self.side_by_side:
            evaluation = dataclasses.replace(evaluation, side_by_side=True)
        return BiasCell(
            data=data,
            bias_ratio=float(bias_ratio),
            method=method,
            seed=seed,
            images_per_class=None if method == "whole" else self.images_per_class,
            distill=distill_config,
            evaluation=evaluation,
            probe=self.probe(kind),
        )

    def cells(self, kind: str | None = None, bias_ratio: float | None = None) -> list[BiasCell]:
        """Every cell (of one data set / ratio when given), data set, ratio, seed, method order."""
        kinds = KINDS if kind is None else (kind,)
        ratios = self.bias_ratios if bias_ratio is None else (bias_ratio,)
        return [self.cell(k, r, m, s) for k in kinds for r in ratios for s in self.seeds for m in self.methods(k)]


def describe_profile(config: BiasStudyConfig) -> pd.DataFrame:
    """Which protocol produced the numbers: one row per setting, ``setting``, ``this build``
    (read from ``config``) and ``paper`` (Lu et al.'s, :meth:`BiasStudyConfig.for_profile` ``"paper"``)."""
    paper = BiasStudyConfig.for_profile("paper", corruption_source="cifar10")
    dm, dc, pdm, pdc = config.dm, config.dc, paper.dm, paper.dc
    used = set(config.methods("colour") + config.methods("corruption"))
    uses_dc = bool({"dc", "dsa", "dc_balanced", "dsa_balanced"} & used)

    def sizes(c: BiasStudyConfig) -> str:
        d = c.data[0]
        return "all images" if d.train_per_class is None else (
            f"{d.train_per_class} training / {d.test_per_class} test per class")

    def evaluation(c: BiasStudyConfig) -> str:
        ev, ev_dsa = c.evaluation, c.evaluation_dsa
        return (f"{ev.num_networks} {ev.network.model}(s) of width {ev.network.width}, {ev.epochs} epochs"
                + (f" ({ev_dsa.epochs} with DSA for DSA/DM sets)" if ev_dsa else ", no augmentation"))

    def methods(c: BiasStudyConfig, kind: str) -> str:
        return ", ".join(METHOD_LABELS[m] for m in c.methods(kind))

    def loops(c: DCConfig, ipc: int) -> str:
        return "/".join(map(str, c.loops_for(ipc))) if ipc in {i for i, *_ in c.loops} else "–"

    rows = [
        ("profile", config.profile, "paper"),
        ("data sets", f"{dataset_label(config.dataset('colour'))}; {dataset_label(config.dataset('corruption'))}",
         "CMNIST-DD; CCIFAR10-DD"),
        ("images", sizes(config), sizes(paper)),
        ("bias severity (colour, corruption)",
         f"{config.dataset('colour').bias.severity}, {config.dataset('corruption').bias.severity}",
         "1–4 (CIFAR-10-C levels 2–5)"),
        ("bias ratios", ", ".join(f"{r:g}" for r in config.bias_ratios), ", ".join(f"{r:g}" for r in paper.bias_ratios)),
        ("images per class", str(config.images_per_class), str(paper.images_per_class)),
        ("seeds", str(len(config.seeds)), str(len(paper.seeds))),
        (f"methods on {dataset_label(config.dataset('colour'))}", methods(config, "colour"), methods(paper, "colour")),
        (f"methods on {dataset_label(config.dataset('corruption'))}", methods(config, "corruption"),
         methods(paper, "corruption")),
        ("DM iterations", str(dm.iterations), str(pdm.iterations)),
        ("DM network width", str(dm.network.width), str(pdm.network.width)),
        ("DM real images per class per iteration", str(dm.batch_real), str(pdm.batch_real)),
        ("DM image learning rate", f"{dm.lr_img:g}", f"{pdm.lr_img:g}"),
        ("DC/DSA", (f"{dc.iterations} iterations, width {dc.network.width}, {dc.batch_real} real images per class, "
                    f"loops {loops(dc, config.images_per_class)} outer/inner") if uses_dc else
         "not run at this profile: the 15 one-step iterations its budget allows left the synthetic images the "
         "real images they start from (build of commit b13f160: their rows equalled the random real subset's); "
         "they run at paper and smoke, and the methods page runs them on its own cpu protocol",
         f"{pdc.iterations} iterations, width {pdc.network.width}, {pdc.batch_real} real images per class, "
         f"loops {loops(pdc, paper.images_per_class)} outer/inner"),
        ("evaluation", evaluation(config), evaluation(paper)),
        ("whole-set baseline", f"{config.whole.epochs} epoch(s), batch {config.whole.batch_size}",
         f"{paper.whole.epochs} epochs, batch {paper.whole.batch_size}"),
        ("attribute probe", f"width {config.probe_training.network.width}, {config.probe_training.epochs} epochs",
         "– (ours: the paper measures no synthetic set's attribute)"),
    ]
    if config.dm.network.fast_kernels or config.evaluation.network.fast_kernels:
        rows.append(("CPU kernels", "fast_kernels (the same networks; equal within float tolerance)", "default"))
    if config.side_by_side:
        rows.append(("evaluation networks", "side by side (equal within float tolerance)", "one by one"))
    return pd.DataFrame(rows, columns=["setting", "this build", "paper"])


# ------------------------------------------------------------------------------- cells


def cell_rows(cell: BiasCell, root: Root = None) -> list[dict[str, Any]]:
    """Compute one cell: distil (or take the baseline set), evaluate, measure.

    The synthetic set is saved beside the run store (``<results>/bias_dd/synthetic/<run_id>.pt``)
    for the image grids; distillation checkpoints go to the run store's checkpoint folder, so a
    killed cell resumes.

    Returns
    -------
    One row per evaluation network: ``dataset`` (its page name), ``network``,
    ``acc_conflicting`` and ``acc_aligned`` (accuracy on the two test splits),
    ``worst_group_accuracy``, ``train_time_s``, ``distill_time_s``, ``num_train``, the set's
    ``aligned_fraction``, ``attribute_entropy``, ``pairwise_distance`` (:func:`set_measures`), and
    ``group_counts``: the network's predictions on both test splits as a
    :func:`fairdd.stats.group_counts` table over the bias attribute (JSON), from which
    :mod:`fairdd.studies.bias_report` computes the aligned gap with its interval and noise floor.
    """
    device = default_device()
    train, test = study_data(cell.data, cell.bias_ratio)
    probe, _ = attribute_probe(cell.probe, root=root)
    if cell.method == "random_balanced":
        # The draw the balanced distillations start from (same sampler, seed and order).
        sampler = RealSampler(train.labels, train.num_classes, mode="group_balanced", attributes=train.attributes)
        generator = seeding.generator(cell.seed)
        index = torch.cat([sampler.sample(c, cell.images_per_class, generator) for c in range(train.num_classes)])
        images, labels, distill_time = train.inputs[index], train.labels[index], 0.0
    else:
        images, labels, _, distill_time = training_set(
            STUDY, cell, train.to(device) if cell.distill is not None else train, cell.method,
            images_per_class=cell.images_per_class, seed=cell.seed, distill_config=cell.distill, root=root,
        )
    if cell.method == "whole":
        # The measures on the whole set: a random 100 per class (pairwise distances grow as n²).
        per_class = min(WHOLE_MEASURE_PER_CLASS, int(torch.bincount(train.labels).min()))
        sample = random_subset(train, per_class, seed=cell.seed)
        measures = set_measures(sample.inputs, sample.labels, probe, num_classes=train.num_classes)
    else:
        measures = set_measures(images, labels, probe, num_classes=train.num_classes)
    evaluated = evaluate_synthetic(images.to(device), labels.to(device), test, cell.evaluation, seed=cell.seed,
                                   keep_predictions=True)
    groups = len(test.attribute_values) if test.attribute_values else train.num_classes
    return [
        {
            "dataset": dataset_label(cell.data),
            "network": row["network"],
            "acc_conflicting": row["acc_bias_conflicting"],
            "acc_aligned": row["acc_bias_aligned"],
            "worst_group_accuracy": row["worst_group_accuracy"],
            "train_time_s": row["train_time_s"],
            "distill_time_s": distill_time,
            "num_train": row["num_train"],
            **measures,
            # Both test splits' predictions as a count table over the bias attribute (its 10
            # values are the groups): enough for the aligned gap, its bootstrap interval and its
            # noise floor (fairdd.stats.check_measure).
            "group_counts": stats.counts_to_json(stats.group_counts(
                test.labels, row["predictions"], test.attributes, num_classes=test.num_classes, num_groups=groups)),
        }
        for row in evaluated
    ]


def _prepare_probes(cells: list[BiasCell], root: Root, processes: int | None) -> None:
    """Train the attribute probes the unfinished cells read, in parallel, before the cells."""
    probes = list(dict.fromkeys(c.probe for c in cells))
    map_processes(functools.partial(_train_probe, root=root), probes, processes=processes,
                  on_done=job_progress("attribute probes (trained, or read from the cache)", len(probes), unit="probe"))


def _train_probe(spec: ProbeSpec, *, root: Root) -> None:
    attribute_probe(spec, root=root)  # stored by the probe itself; nothing travels back


def _data_group(cell: BiasCell) -> tuple[str, float]:
    """One worker job per data set × ratio: the biased set is built once per job."""
    return cell.data.bias.kind, cell.bias_ratio


def cell_work(cell: BiasCell) -> list[_work.Work]:
    """What the cell trains (:mod:`fairdd.studies._work`): the attribute probe (shared), its
    distillation and the evaluation of its set, or the whole-set baseline."""
    n, shape, k = _work.train_size(cell.data)
    out = _work.probe(cell.probe, n, shape, k)
    if cell.method == "whole":
        return out + _work.evaluation(cell.evaluation, n, shape, k, component="whole-set")
    if cell.distill is not None:
        out += _work.distillation(cell.method, cell.distill, n=n, shape=shape, classes=k, ipc=cell.images_per_class,
                                  data_key=(cell.data, cell.bias_ratio), groups=_work.attribute_groups())
    return out + _work.evaluation(cell.evaluation, k * cell.images_per_class, shape, k)


STUDY = Study(name="bias_dd", compute=cell_rows, work=cell_work, group=_data_group, prepare=_prepare_probes)


def run_study(config: BiasStudyConfig, *, processes: int | None = None, root: Root = None) -> pd.DataFrame:
    """Every cell of ``config`` through the run store; all rows (finished cells are only read).

    The two attribute probes are trained first (in parallel), then one worker job per data set
    × ratio (one torch thread each), the data set with more methods first so the workers
    finish together. Use ``processes=1`` on a GPU.
    """
    return STUDY.run(config.cells(), processes=processes, root=root)


def probe_table(config: BiasStudyConfig, *, root: Root = None) -> pd.DataFrame:
    """Held-out accuracy of each data set's attribute probe on unbiased test images."""
    frames = [attribute_probe(config.probe(kind), root=root)[1] for kind in KINDS]
    return pd.concat(frames, ignore_index=True)[["dataset", "probe_accuracy", "num_train", "num_test"]]


def synthetic_images(cell: BiasCell, *, root: Root = None) -> torch.Tensor:
    """The synthetic images of a distillation cell mapped back to [0, 1] for display,
    ``(N, C, H, W)`` class-major; ``FileNotFoundError`` if the cell has not been run."""
    saved = load_synthetic(STUDY, cell, root)
    mean, std = normalization_stats(cell.data)
    return denormalize(saved["images"], mean, std).clamp(0, 1)
