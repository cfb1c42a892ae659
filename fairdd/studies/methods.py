"""The methods page: DC, DSA, DM and MTT against a random real subset, on one protocol.

Each cell of the study (method × images per class × seed) distils Fashion-MNIST (or another
image set) with :func:`fairdd.distill.distill`, then trains fresh networks on the synthetic set
with :func:`fairdd.evaluate.evaluate_synthetic` and tests them on the real test split. The
study runs on the shared skeleton (:class:`fairdd.studies.Study`, run store folder
``"dd_methods"``), so a re-run computes only what is new; synthetic sets are kept beside the
run store for the page's image grids.

Methods: Zhao, Mopuri & Bilen (2021), *Dataset Condensation with Gradient Matching* (DC);
Zhao & Bilen (2021), *Dataset Condensation with Differentiable Siamese Augmentation* (DSA);
Zhao & Bilen (2023), *Dataset Condensation with Distribution Matching* (DM); Cazenavette et al.
(2022), *Dataset Distillation by Matching Training Trajectories* (MTT).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from fairdd.config import Profile, check_choice, check_int, check_profile, check_sequence
from fairdd.data import Dataset, StudyData, denormalize, normalize_splits
from fairdd.distill import DCConfig, DMConfig, MTTConfig, dsa_config
from fairdd.distill.dc import REFERENCE_LOOPS
from fairdd.evaluate import EvalConfig, evaluate_synthetic
from fairdd.models import NetworkSpec
from fairdd.studies._dd import load_synthetic, training_set
from fairdd.studies import _work
from fairdd.studies._study import Root, Study
from fairdd.training import default_device

__all__ = [
    "paper_comparison",
    "COLUMN_LABELS",
    "readable",
    "BASELINES",
    "DISTILLATION_METHODS",
    "MethodsCell",
    "MethodsStudyConfig",
    "PAPER_FASHION_MNIST",
    "STUDY",
    "cell_rows",
    "cell_work",
    "describe_profile",
    "plot_accuracy",
    "run_study",
    "summary_table",
    "synthetic_images",
    "versus_random",
]

DISTILLATION_METHODS: tuple[str, ...] = ("dc", "dsa", "dm", "mtt")
# "random": a class-stratified random real subset of the same size, on the same protocol.
# "whole": the whole training set (its epochs are set separately: 60k images per epoch).
BASELINES: tuple[str, ...] = ("random", "whole")

#: Published ConvNet accuracy on Fashion-MNIST (%), IPC 1 / 10 / 50 (Zhao et al. 2021, DC, Table 1;
#: Zhao & Bilen 2021, DSA, Table 1). The papers' numbers, shown beside ours; none exist for DM or
#: MTT on Fashion-MNIST.
PAPER_FASHION_MNIST = pd.DataFrame(
    [("dc", 1, 70.5), ("dc", 10, 82.3), ("dc", 50, 83.6), ("dsa", 1, 70.6), ("dsa", 10, 84.6), ("dsa", 50, 88.7)],
    columns=["method", "images_per_class", "paper_accuracy"],
)


@dataclass(frozen=True)
class MethodsCell:
    """One run of the study: a method, a size and a seed, with everything that sets its result.

    Attributes
    ----------
    method : one of :data:`DISTILLATION_METHODS` or :data:`BASELINES`.
    images_per_class : synthetic (or random real) images per class; ``None`` for ``"whole"``.
    seed : distillation / subset seed; the evaluation networks derive their seeds from it.
    distill : the method's config (``None`` for the baselines).
    evaluation : how the set is evaluated (the method's own DSA setting included).
    data : the image data set (:class:`fairdd.data.StudyData`: class-stratified subsets, ``None``: all).
    """

    method: str
    images_per_class: int | None
    seed: int
    distill: Any
    evaluation: EvalConfig
    data: StudyData = StudyData("fashion_mnist")

    def __post_init__(self) -> None:
        check_choice("method", self.method, DISTILLATION_METHODS + BASELINES)
        if (self.method == "whole") != (self.images_per_class is None):
            raise ValueError(f"images_per_class={self.images_per_class!r}: None exactly for method 'whole'")
        if self.images_per_class is not None:
            check_int("images_per_class", self.images_per_class, minimum=1)
        check_int("seed", self.seed, minimum=0)
        if (self.method in BASELINES) != (self.distill is None):
            raise ValueError(f"distill={self.distill!r}: None exactly for the baselines {BASELINES}")
        if not isinstance(self.evaluation, EvalConfig):
            raise ValueError(f"evaluation={self.evaluation!r} must be a fairdd.evaluate.EvalConfig")
        if not isinstance(self.data, StudyData) or self.data.attributes or self.data.bias is not None:
            raise ValueError(f"data={self.data!r} must be a fairdd.data.StudyData without attributes or bias")


def _capped_loops(outer: int, inner: int) -> dict[int, tuple[int, int]]:
    """The reference DC/DSA loop table (:data:`fairdd.distill.dc.REFERENCE_LOOPS`) capped at
    ``outer`` / ``inner`` loops."""
    return {ipc: (min(o, outer), min(i, inner)) for ipc, (o, i) in REFERENCE_LOOPS.items()}


@dataclass(frozen=True)
class MethodsStudyConfig:
    """The whole sweep: methods × sizes × seeds, and how each cell is evaluated.

    Use :meth:`for_profile` for the page's three protocols; override fields with
    ``dataclasses.replace`` or ``for_profile(profile, **overrides)``.

    Attributes
    ----------
    profile : the protocol the page names (``"smoke"``, ``"cpu"``, ``"paper"``).
    methods, images_per_class, seeds : the grid.
    data : the image data set (:class:`fairdd.data.StudyData`).
    dc, dsa, dm, mtt : the methods' configs (paper: the references' settings).
    evaluation : how a set is evaluated (the random subset, DC's sets): network width, epochs,
        networks per set. A distilled set keeps its distillation network's depth and norm (only
        the width is taken from here) and its method's DSA setting.
    evaluation_dsa : the same for sets distilled with DSA augmentation (DSA, DM, MTT), as the
        references evaluate them (1000 epochs); ``None``: ``evaluation``'s epochs for them too.
    whole : the whole-training-set baseline (one network per seed).
    dc_loops : ``(images_per_class, outer_loop, inner_loop)`` triples that replace the DC and DSA
        loops at those sizes (a smaller stated budget for the costliest cells); empty: their own.
    mtt_iterations : ``(images_per_class, iterations)`` pairs that replace MTT's iteration count
        at those sizes; empty: its own.
    side_by_side : train each set's evaluation networks side by side
        (:attr:`fairdd.evaluate.EvalConfig.side_by_side`; equal to one-by-one training within
        float tolerance, so the cells' run ids change when it is on). Default off (the recorded
        runs); meant for a GPU.
    """

    profile: Profile
    methods: tuple[str, ...] = DISTILLATION_METHODS + BASELINES
    images_per_class: tuple[int, ...] = (1, 10, 50)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    data: StudyData = StudyData("fashion_mnist")
    dc: DCConfig = DCConfig()
    dsa: DCConfig = dsa_config()
    dm: DMConfig = DMConfig()
    mtt: MTTConfig = MTTConfig()
    evaluation: EvalConfig = EvalConfig(network=NetworkSpec(width=128), num_networks=20)
    evaluation_dsa: EvalConfig | None = EvalConfig(network=NetworkSpec(width=128), num_networks=20, dsa=True)
    whole: EvalConfig = EvalConfig(network=NetworkSpec(width=128), epochs=20, num_networks=1)
    dc_loops: tuple[tuple[int, int, int], ...] = ()
    mtt_iterations: tuple[tuple[int, int], ...] = ()
    side_by_side: bool = False

    def __post_init__(self) -> None:
        check_profile(self.profile)
        if not isinstance(self.side_by_side, bool):
            raise ValueError(f"side_by_side={self.side_by_side!r} must be True or False")
        if not isinstance(self.data, StudyData):
            raise ValueError(f"data={self.data!r} must be a fairdd.data.StudyData")
        for name, cls, augment in (("dc", DCConfig, False), ("dsa", DCConfig, True), ("dm", DMConfig, None),
                                   ("mtt", MTTConfig, None)):
            value = getattr(self, name)
            if not isinstance(value, cls) or (augment is not None and value.augment != augment):
                wanted = cls.__name__ + (f" with augment={augment}" if augment is not None else "")
                raise ValueError(f"{name}={value!r} must be a {wanted}")
        for name in ("evaluation", "whole"):
            if not isinstance(getattr(self, name), EvalConfig):
                raise ValueError(f"{name}={getattr(self, name)!r} must be a fairdd.evaluate.EvalConfig")
        if self.evaluation_dsa is not None and not isinstance(self.evaluation_dsa, EvalConfig):
            raise ValueError(f"evaluation_dsa={self.evaluation_dsa!r} must be an EvalConfig or None")
        if not isinstance(self.dc_loops, tuple) or not all(
            isinstance(t, tuple) and len(t) == 3 and all(isinstance(v, int) and not isinstance(v, bool) for v in t)
            and t[0] >= 1 and t[1] >= 1 and t[2] >= 0
            for t in self.dc_loops
        ):
            raise ValueError(
                f"dc_loops={self.dc_loops!r} must be a tuple of (images_per_class >= 1, outer_loop >= 1, inner_loop >= 0) int triples"
            )
        if len({t[0] for t in self.dc_loops}) != len(self.dc_loops):
            raise ValueError(f"dc_loops={self.dc_loops!r} names an images_per_class twice")
        if not isinstance(self.mtt_iterations, tuple) or not all(
            isinstance(t, tuple) and len(t) == 2 and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in t)
            for t in self.mtt_iterations
        ) or len({t[0] for t in self.mtt_iterations}) != len(self.mtt_iterations):
            raise ValueError(
                f"mtt_iterations={self.mtt_iterations!r} must be a tuple of (images_per_class >= 1, iterations >= 1) "
                "int pairs, one per size"
            )
        check_sequence("methods", self.methods, lambda f, v: check_choice(f, v, DISTILLATION_METHODS + BASELINES))
        check_sequence("images_per_class", self.images_per_class, lambda f, v: check_int(f, v, minimum=1))
        check_sequence("seeds", self.seeds, lambda f, v: check_int(f, v, minimum=0))
        for name in ("methods", "images_per_class", "seeds"):
            if len(set(getattr(self, name))) != len(getattr(self, name)):
                raise ValueError(f"{name}={getattr(self, name)!r} must not repeat a value")
        for cell in self.cells():  # validates the per-cell fields
            if cell.method in ("dc", "dsa"):
                cell.distill.loops_for(cell.images_per_class)  # a missing IPC is a ValueError now

    @classmethod
    def for_profile(cls, profile: str, **overrides: Any) -> "MethodsStudyConfig":
        """The page's protocols, all stated here (``overrides`` replace fields).

        - ``"paper"``: IPC 1/10/50, 5 seeds, the methods at the references' settings, 20
          evaluation networks of width 128 trained for the reference's 300 epochs (1000 with
          DSA); whole set 20 epochs.
        - ``"cpu"``: IPC 1 and 10, 2 seeds, ConvNets of width 32 (about 16× fewer convolution
          FLOPs than 128; ``benchmarks/bench_distill.py --profiles cpu`` times each method's
          iterations), 1 evaluation network per set trained for 300 epochs whatever the method,
          the whole-set baseline 1 network × 2 epochs. DC/DSA: 40 iterations, 64 real images per
          class, ``init="real"`` (a short run starts from a sensible set), loops capped at 5
          outer / 5 inner (IPC 10: 1 / 1, the page's costliest cells); DM: 300 iterations, 64
          real images; MTT: 4 experts × 6 "epochs" of 10,000 random real images (a sixth of
          Fashion-MNIST), ``max_start_epoch`` 4, ``expert_epochs`` 2, ``syn_steps`` 8, 100
          iterations (50 at IPC 10). :func:`describe_profile` sets each beside the paper's.
        - ``"smoke"``: IPC 1, 1 seed, width 8 / depth 2, 2-3 iterations, 1 network × 2 epochs,
          60 training / 50 test images per class.
        """
        check_profile(profile)
        fields: dict[str, Any] = {}
        if profile == "cpu":
            net = NetworkSpec(width=32)
            dc = {"init": "real", "network": net, "iterations": 40, "batch_real": 64, "loops": _capped_loops(5, 5)}
            fields = dict(
                images_per_class=(1, 10), seeds=(0, 1),
                dc=DCConfig(**dc), dsa=dsa_config(**dc),
                dm=DMConfig(network=net, batch_real=64, iterations=300),
                mtt=MTTConfig(network=net, num_experts=4, expert_train_epochs=6, expert_epoch_size=10_000,
                              max_start_epoch=4, expert_epochs=2, syn_steps=8, iterations=100),
                evaluation=EvalConfig(network=net, epochs=300, num_networks=1),
                evaluation_dsa=None,
                whole=EvalConfig(network=net, epochs=2, num_networks=1),
                dc_loops=((10, 1, 1),), mtt_iterations=((10, 50),),
            )
        elif profile == "smoke":
            net = NetworkSpec(width=8, depth=2)
            loops = {**_capped_loops(2, 2), **{ipc: (2, 2) for ipc in (2, 3, 4, 5)}}
            dc = {"init": "real", "network": net, "iterations": 3, "batch_real": 16, "loops": loops, "checkpoint_every": 1}
            fields = dict(
                images_per_class=(1,), seeds=(0,),
                data=StudyData("fashion_mnist", train_per_class=60, test_per_class=50),
                dc=DCConfig(**dc), dsa=dsa_config(**dc),
                dm=DMConfig(network=net, batch_real=16, iterations=3, checkpoint_every=1),
                mtt=MTTConfig(network=net, num_experts=2, expert_train_epochs=3, expert_epoch_size=256,
                              expert_batch=64, max_start_epoch=2, expert_epochs=1, syn_steps=3, iterations=3,
                              checkpoint_every=1),
                evaluation=EvalConfig(network=NetworkSpec(width=8), epochs=2, num_networks=1),
                evaluation_dsa=None,
                whole=EvalConfig(network=NetworkSpec(width=8), epochs=1, num_networks=1),
            )
        return cls(profile=profile, **{**fields, **overrides})

    def distill_config(self, method: str, images_per_class: int) -> Any:
        """The config ``method`` distils with at ``images_per_class`` (the size overrides applied)."""
        config = getattr(self, method)
        if method in ("dc", "dsa") and self.dc_loops:
            loops = {i: (outer, inner) for i, outer, inner in config.loops + self.dc_loops}
            config = dataclasses.replace(config, loops=loops)
        if method == "mtt" and images_per_class in dict(self.mtt_iterations):
            config = dataclasses.replace(config, iterations=dict(self.mtt_iterations)[images_per_class])
        return config

    def evaluation_for(self, method: str) -> EvalConfig:
        """How the sets of ``method`` are evaluated: the baselines on :attr:`evaluation`
        (:attr:`whole`); a distilled set on :attr:`evaluation` (:attr:`evaluation_dsa` when its
        method augments) with its distillation network at that width and its method's DSA."""
        if method == "whole":
            config = self.whole
        elif method == "random":
            config = self.evaluation
        else:
            method_config = getattr(self, method)
            protocol = self.evaluation_dsa if method_config.augment and self.evaluation_dsa is not None \
                else self.evaluation
            config = dataclasses.replace(
                protocol, network=dataclasses.replace(method_config.network, width=protocol.network.width),
                dsa=method_config.augment, dsa_strategy=method_config.dsa_strategy,
                dsa_params=method_config.dsa_params,
            )
        return dataclasses.replace(config, side_by_side=True) if self.side_by_side else config

    def cells(self) -> list[MethodsCell]:
        """Every run of the sweep (the whole-set baseline once per seed, not per size)."""
        out = []
        for method in self.methods:
            evaluation = self.evaluation_for(method)
            sizes: tuple[int | None, ...] = (None,) if method == "whole" else self.images_per_class
            for ipc in sizes:
                distill_config = None if method in BASELINES else self.distill_config(method, ipc)
                out += [
                    MethodsCell(method=method, images_per_class=ipc, seed=s, distill=distill_config,
                                evaluation=evaluation, data=self.data)
                    for s in self.seeds
                ]
        return out


def describe_profile(config: MethodsStudyConfig) -> pd.DataFrame:
    """Which protocol produced the numbers: one row per setting, ``setting``, ``this build``
    (read from ``config``: each method's config at each size it runs) and ``paper`` (the
    references', :meth:`MethodsStudyConfig.for_profile` ``"paper"``)."""
    paper = MethodsStudyConfig.for_profile("paper")

    def sizes(d: StudyData) -> str:
        return "all images" if d.train_per_class is None else (
            f"{d.train_per_class} training / {d.test_per_class} test per class")

    def evaluation(c: MethodsStudyConfig) -> str:
        e, d = c.evaluation, c.evaluation_dsa
        return (f"{e.num_networks} network(s) of width {e.network.width} per set, {e.epochs} epochs"
                + (f" ({d.epochs} with DSA)" if d is not None else " (also with DSA)"))

    def method(c: MethodsStudyConfig, name: str, ipc: int) -> str:
        m = c.distill_config(name, ipc)
        text = f"{m.iterations} iterations, width {m.network.width}"
        if name in ("dc", "dsa"):
            outer, inner = m.loops_for(ipc)
            text += f", {m.batch_real} real/class, loops {outer}/{inner}, init {m.init}"
        elif name == "dm":
            text += f", {m.batch_real} real/class"
        else:
            text += (f", {m.num_experts} experts × {m.expert_train_epochs} epochs"
                     + (f" of {m.expert_epoch_size} images" if m.expert_epoch_size else "")
                     + f", syn_steps {m.syn_steps}, expert_epochs {m.expert_epochs}, max_start_epoch {m.max_start_epoch}")
        return text

    rows = [
        ("profile", config.profile, "paper"),
        ("data set", config.data.source, paper.data.source),
        ("images", sizes(config.data), sizes(paper.data)),
        ("images per class", ", ".join(map(str, config.images_per_class)), ", ".join(map(str, paper.images_per_class))),
        ("seeds", str(len(config.seeds)), str(len(paper.seeds))),
        ("evaluation", evaluation(config), evaluation(paper)),
        ("whole-set baseline", f"{config.whole.epochs} epoch(s), width {config.whole.network.width}",
         f"{paper.whole.epochs} epochs, width {paper.whole.network.width}"),
    ]
    for name in (m for m in config.methods if m in DISTILLATION_METHODS):
        for ipc in config.images_per_class:
            rows.append((f"{name.upper()} at IPC {ipc}", method(config, name, ipc),
                         method(paper, name, ipc) if ipc in paper.images_per_class else "–"))
    if config.side_by_side:
        rows.append(("evaluation networks", "side by side (equal within float tolerance)", "one by one"))
    fast = sorted(name.upper() for name in ("dc", "dsa", "dm", "mtt")
                  if name in config.methods and getattr(config, name).network.fast_kernels)
    if fast or config.evaluation.network.fast_kernels:
        rows.append(("CPU kernels", "fast_kernels (the same networks; equal within float tolerance) for "
                     + ", ".join([*fast, *(["the evaluation"] if config.evaluation.network.fast_kernels else [])]),
                     "default"))
    return pd.DataFrame(rows, columns=["setting", "this build", "paper"])


def _data(cell: MethodsCell) -> tuple[Dataset, Dataset, tuple[torch.Tensor, torch.Tensor]]:
    """Train and test splits normalised with the training split's statistics, and those statistics."""
    train, test, _ = cell.data.load()
    return normalize_splits(train, test)


def cell_rows(cell: MethodsCell, root: Root = None) -> list[dict[str, Any]]:
    """Distil (or pick the baseline set), evaluate, and return one row per evaluation network."""
    device = default_device()
    train, test, _ = _data(cell)
    extra: dict[str, Any] = {"distill_time_s": 0.0, "learning_rate": None, "first_loss": None, "last_loss": None}
    images, labels, synthetic, seconds = training_set(
        STUDY, cell, train.to(device), cell.method, images_per_class=cell.images_per_class, seed=cell.seed,
        distill_config=cell.distill, root=root,
    )
    if synthetic is not None:
        extra.update(
            distill_time_s=seconds,
            learning_rate=synthetic.learning_rate,
            first_loss=synthetic.losses[0],
            last_loss=synthetic.losses[-1],
            distill_iterations=len(synthetic.losses),
        )
    rows = evaluate_synthetic(images, labels, test, cell.evaluation, seed=cell.seed, learning_rate=extra["learning_rate"])
    return [{**row, **extra} for row in rows]


def cell_work(cell: MethodsCell) -> list[_work.Work]:
    """What the cell trains (:mod:`fairdd.studies._work`): its distillation (MTT's experts shared
    per data set) and the evaluation of its set, or the whole-set baseline."""
    n, shape, k = _work.train_size(cell.data)
    if cell.method == "whole":
        return _work.evaluation(cell.evaluation, n, shape, k, component="whole-set")
    out = []
    if cell.distill is not None:
        out += _work.distillation(cell.method, cell.distill, n=n, shape=shape, classes=k, ipc=cell.images_per_class,
                                  data_key=cell.data)
    return out + _work.evaluation(cell.evaluation, k * cell.images_per_class, shape, k)


STUDY = Study(name="dd_methods", compute=cell_rows, work=cell_work)


def run_study(config: MethodsStudyConfig, *, processes: int | None = None, root: Root = None) -> pd.DataFrame:
    """Every cell of ``config`` through the run store (see :class:`fairdd.studies.Study`); all rows."""
    return STUDY.run(config.cells(), processes=processes, root=root)


def synthetic_images(cell: MethodsCell, root: Root = None) -> torch.Tensor:
    """The synthetic images of a distillation cell mapped back to [0, 1] for display
    (``(N, C, H, W)``, class-major); ``FileNotFoundError`` if the cell has not been run."""
    saved = load_synthetic(STUDY, cell, root)
    _, _, (mean, std) = _data(cell)
    return denormalize(saved["images"], mean, std).clamp(0, 1)


# ------------------------------------------------------------------------------ tables


#: The tables' column names as the page shows them (units in the headers).
COLUMN_LABELS: dict[str, str] = {
    "images_per_class": "images per class",
    "accuracy_mean": "accuracy (%), mean",
    "accuracy_std": "accuracy (%), std",
    "distill_time_s": "distillation time (s)",
    "paper_accuracy": "paper's accuracy (%)",
    "gain_points": "gain over random (points)",
    "seeds_ahead": "seeds ahead",
    "beats_random_on_every_seed": "ahead on every seed",
    "eval_time_per_network_s": "evaluation time per network (s)",
    "seconds_per_iteration": "time per iteration (s)",
}


def readable(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the column names of :data:`COLUMN_LABELS`."""
    return table.rename(columns=COLUMN_LABELS)


def _per_seed(rows: pd.DataFrame) -> pd.DataFrame:
    """Accuracy of each (method, size, seed): the mean over its evaluation networks."""
    rows = rows.assign(images_per_class=rows["images_per_class"].astype("Int64"))
    return rows.groupby(["method", "images_per_class", "seed"], as_index=False, dropna=False).agg(
        accuracy=("accuracy", "mean"), distill_time_s=("distill_time_s", "first")
    )


def summary_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Accuracy (%) mean ± std over seeds (each seed the mean of its networks), per method and
    size, with the distillation time and the paper's number beside ours where one exists."""
    per_seed = _per_seed(rows)
    table = per_seed.groupby(["method", "images_per_class"], as_index=False, dropna=False).agg(
        accuracy_mean=("accuracy", lambda a: 100 * a.mean()),
        accuracy_std=("accuracy", lambda a: 100 * a.std(ddof=1) if len(a) > 1 else float("nan")),
        seeds=("seed", "nunique"),
        distill_time_s=("distill_time_s", "mean"),
    )
    paper = PAPER_FASHION_MNIST.assign(images_per_class=PAPER_FASHION_MNIST["images_per_class"].astype("Int64"))
    return table.merge(paper, on=["method", "images_per_class"], how="left")


def paper_comparison(rows: pd.DataFrame) -> str:
    """One generated sentence per method and size with a published number: ours against the
    paper's (``PAPER_FASHION_MNIST``), or a sentence saying that none of this run's cells has one."""
    table = summary_table(rows).dropna(subset=["paper_accuracy"])
    if table.empty:
        return "None of this run's methods and sizes has a published Fashion-MNIST number to compare with."
    parts = [
        f"{r.method.upper()} at IPC {int(r.images_per_class)}: ours {r.accuracy_mean:.1f} %, the paper's {r.paper_accuracy:.1f} % "
        f"({r.accuracy_mean - r.paper_accuracy:+.1f} points)"
        for r in table.itertuples()
    ]
    return "Against the published full-protocol numbers: " + "; ".join(parts) + "."


def versus_random(rows: pd.DataFrame) -> pd.DataFrame:
    """Each distillation method against the random real subset of the same size and seed.

    Columns: the mean gain in accuracy points (method − random, paired by seed), the number of
    seeds on which the method is ahead, and whether it is ahead on every seed.
    """
    per_seed = _per_seed(rows).drop(columns="distill_time_s")
    random = per_seed[per_seed["method"] == "random"].rename(columns={"accuracy": "random"}).drop(columns="method")
    paired = per_seed[per_seed["method"].isin(DISTILLATION_METHODS)].merge(random, on=["images_per_class", "seed"])
    paired["gain"] = 100 * (paired["accuracy"] - paired["random"])
    out = paired.groupby(["method", "images_per_class"], as_index=False).agg(
        gain_points=("gain", "mean"),
        seeds_ahead=("gain", lambda g: int((g > 0).sum())),
        seeds=("gain", "size"),
    )
    out["beats_random_on_every_seed"] = out["seeds_ahead"] == out["seeds"]
    return out


def plot_accuracy(rows: pd.DataFrame):  # noqa: ANN201  (matplotlib Figure)
    """Test accuracy against images per class, one line per method (mean ± std over seeds),
    the whole-set baseline as a horizontal band."""
    import matplotlib.pyplot as plt

    per_seed = _per_seed(rows)
    fig, ax = plt.subplots(figsize=(6, 4))
    for method, group in per_seed[per_seed["method"] != "whole"].groupby("method"):
        stats = group.groupby("images_per_class")["accuracy"].agg(["mean", "std"]).fillna(0.0)
        ax.errorbar(stats.index.astype(int), 100 * stats["mean"], yerr=100 * stats["std"], marker="o", capsize=3,
                    label=method.upper() if method != "random" else "random real", ls="--" if method == "random" else "-")
    whole = per_seed.loc[per_seed["method"] == "whole", "accuracy"]
    if len(whole):
        spread = whole.std(ddof=1) if len(whole) > 1 else 0.0
        ax.axhspan(100 * (whole.mean() - spread), 100 * (whole.mean() + spread), color="grey", alpha=0.3)
        ax.axhline(100 * whole.mean(), color="grey", label="whole training set")
    ax.set_xscale("log")
    ax.set_xlabel("images per class")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
