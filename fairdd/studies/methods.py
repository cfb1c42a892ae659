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
from fairdd.data import Dataset, denormalize, load_dataset, normalize_splits
from fairdd.distill import config_for, evaluation_config
from fairdd.evaluate import EvalConfig, evaluate_synthetic
from fairdd.models import NetworkSpec
from fairdd.studies._dd import load_synthetic, training_set
from fairdd.studies import _work
from fairdd.studies._study import Root, Study

__all__ = [
    "paper_comparison",
    "BASELINES",
    "DISTILLATION_METHODS",
    "MethodsCell",
    "MethodsStudyConfig",
    "PAPER_FASHION_MNIST",
    "protocol_table",
    "STUDY",
    "cell_rows",
    "cell_work",
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
    dataset : an image data set of :func:`fairdd.data.load_dataset`.
    train_limit, test_limit : use only the first this many training / test images (``None``: all).
    """

    method: str
    images_per_class: int | None
    seed: int
    distill: Any
    evaluation: EvalConfig
    dataset: str = "fashion_mnist"
    train_limit: int | None = None
    test_limit: int | None = None

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
        for name in ("train_limit", "test_limit"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), minimum=10)


@dataclass(frozen=True)
class MethodsStudyConfig:
    """The whole sweep: methods × sizes × seeds, and how each cell is evaluated.

    Use :meth:`for_profile` for the page's three protocols; override fields with
    ``dataclasses.replace`` or ``for_profile(profile, **overrides)``.

    Attributes
    ----------
    profile : which :func:`fairdd.distill.config_for` profile sets the methods' configs.
    methods, images_per_class, seeds : the grid.
    dataset, train_limit, test_limit : see :class:`MethodsCell`.
    eval_epochs : epochs per evaluation network (``None``: the reference's 300, 1000 with DSA).
    eval_networks : networks trained per synthetic set.
    eval_width : ConvNet width of the evaluation networks (a distilled set keeps its
        distillation network's depth and norm; only the width is taken from here).
    whole_epochs : epochs of the whole-training-set baseline (one network per seed).
    dc_loops : ``(images_per_class, outer_loop, inner_loop)`` triples that replace the DC and DSA
        profile's loops at those sizes (a smaller stated budget for the costliest cells); empty:
        the methods' own profile.
    mtt_iterations : ``(images_per_class, iterations)`` pairs that replace MTT's profile iteration
        count at those sizes; empty: the profile's.
    eval_batched : train each set's evaluation networks side by side
        (:attr:`fairdd.evaluate.EvalConfig.batched`; equal to one-by-one training within float
        tolerance, so the cells' run ids change when it is on). Default off (the recorded runs);
        meant for a GPU.
    """

    profile: Profile
    methods: tuple[str, ...] = DISTILLATION_METHODS + BASELINES
    images_per_class: tuple[int, ...] = (1, 10, 50)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    dataset: str = "fashion_mnist"
    eval_epochs: int | None = None
    eval_networks: int = 20
    eval_width: int = 128
    whole_epochs: int = 20
    train_limit: int | None = None
    test_limit: int | None = None
    dc_loops: tuple[tuple[int, int, int], ...] = ()
    mtt_iterations: tuple[tuple[int, int], ...] = ()
    eval_batched: bool = False

    def __post_init__(self) -> None:
        check_profile(self.profile)
        if not isinstance(self.eval_batched, bool):
            raise ValueError(f"eval_batched={self.eval_batched!r} must be True or False")
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
        if self.eval_epochs is not None:
            check_int("eval_epochs", self.eval_epochs, minimum=1)
        check_int("eval_networks", self.eval_networks, minimum=1)
        check_int("eval_width", self.eval_width, minimum=1)
        check_int("whole_epochs", self.whole_epochs, minimum=1)
        self.cells()  # validates the per-cell fields

    @classmethod
    def for_profile(cls, profile: str, **overrides: Any) -> "MethodsStudyConfig":
        """The page's protocols (``overrides`` replace fields).

        - ``"paper"``: IPC 1/10/50, 5 seeds, 20 evaluation networks of width 128 trained for
          the reference's 300 epochs (1000 with DSA); whole set 20 epochs.
        - ``"cpu"``: IPC 1 and 10, 2 seeds, 1 evaluation network of width 32 (the width the
          ``cpu`` distillation profiles use) per set, trained for 300 epochs whatever the method;
          the whole-set baseline 1 network × 2 epochs. The methods' own ``cpu`` reductions are
          documented in :mod:`fairdd.distill`; at IPC 10, the page's costliest cells, DC and DSA
          run 1 outer / 1 inner loop instead of that profile's 5 / 5 (the reference's 10 / 50)
          and MTT 50 iterations instead of 100, so that the page fits its quarter of an hour.
        - ``"smoke"``: IPC 1, 1 seed, 1 network × 2 epochs, 600 training / 500 test images.
        """
        check_profile(profile)
        fields: dict[str, Any] = {}
        if profile == "cpu":
            fields = dict(images_per_class=(1, 10), seeds=(0, 1), eval_epochs=300, eval_networks=1,
                          eval_width=32, whole_epochs=2, dc_loops=((10, 1, 1),), mtt_iterations=((10, 50),))
        elif profile == "smoke":
            fields = dict(images_per_class=(1,), seeds=(0,), eval_epochs=2, eval_networks=1, eval_width=8,
                          whole_epochs=1, train_limit=600, test_limit=500)
        return cls(profile=profile, **{**fields, **overrides})

    def evaluation(self, method: str) -> EvalConfig:
        """How the sets of ``method`` are evaluated: the method's own protocol (DSA on for
        DSA/DM/MTT) at this study's width and epochs; the baselines on the plain protocol."""
        batched = self.eval_batched
        if method == "whole":
            return EvalConfig(network=NetworkSpec(width=self.eval_width), epochs=self.whole_epochs, num_networks=1,
                              batched=batched)
        if method == "random":
            return EvalConfig(network=NetworkSpec(width=self.eval_width), epochs=self.eval_epochs,
                              num_networks=self.eval_networks, batched=batched)
        method_config = config_for(method, self.profile)
        network = dataclasses.replace(method_config.network, width=self.eval_width)
        return evaluation_config(method_config, network=network, epochs=self.eval_epochs, num_networks=self.eval_networks,
                                 batched=batched)

    def cells(self) -> list[MethodsCell]:
        """Every run of the sweep (the whole-set baseline once per seed, not per size)."""
        shared = {"dataset": self.dataset, "train_limit": self.train_limit, "test_limit": self.test_limit}
        out = []
        for method in self.methods:
            evaluation = self.evaluation(method)
            sizes: tuple[int | None, ...] = (None,) if method == "whole" else self.images_per_class
            for ipc in sizes:
                distill_config = None if method in BASELINES else config_for(method, self.profile)
                if method in ("dc", "dsa") and self.dc_loops:
                    loops = {i: (outer, inner) for i, outer, inner in distill_config.loops + self.dc_loops}
                    distill_config = dataclasses.replace(distill_config, loops=loops)
                if method == "mtt" and ipc in dict(self.mtt_iterations):
                    distill_config = dataclasses.replace(distill_config, iterations=dict(self.mtt_iterations)[ipc])
                out += [
                    MethodsCell(method=method, images_per_class=ipc, seed=s, distill=distill_config,
                                evaluation=evaluation, **shared)
                    for s in self.seeds
                ]
        return out


def _data(cell: MethodsCell) -> tuple[Dataset, Dataset, tuple[torch.Tensor, torch.Tensor]]:
    """Train and test splits normalised with the training split's statistics, and those statistics."""
    train = load_dataset(cell.dataset, "train")
    test = load_dataset(cell.dataset, "test")
    if cell.train_limit is not None:
        train = train.subset(torch.arange(min(cell.train_limit, len(train))))
    if cell.test_limit is not None:
        test = test.subset(torch.arange(min(cell.test_limit, len(test))))
    return normalize_splits(train, test)


def cell_rows(cell: MethodsCell, root: Root = None) -> list[dict[str, Any]]:
    """Distil (or pick the baseline set), evaluate, and return one row per evaluation network."""
    train, test, _ = _data(cell)
    extra: dict[str, Any] = {"distill_time_s": 0.0, "learning_rate": None, "first_loss": None, "last_loss": None}
    images, labels, synthetic, seconds = training_set(
        STUDY, cell, train, cell.method, images_per_class=cell.images_per_class, seed=cell.seed, distill_config=cell.distill, root=root
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


def protocol_table(config: MethodsStudyConfig) -> pd.DataFrame:
    """The distillation configs this sweep's cells run, one row per method and size (the
    ``cpu`` profile's smaller DC/DSA budget at IPC 10 shows as its own row)."""
    seen: dict[tuple[str, int], str] = {}
    for cell in config.cells():
        if cell.distill is not None:
            seen.setdefault((cell.method, cell.images_per_class), repr(cell.distill))
    return pd.DataFrame(
        [{"method": m, "images_per_class": ipc, "config": text} for (m, ipc), text in seen.items()]
    )


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
