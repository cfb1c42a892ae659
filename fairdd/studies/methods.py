"""The methods page: DC, DSA, DM and MTT against a random real subset, on one protocol.

Each cell of the study (method × images per class × seed) distils Fashion-MNIST (or another
image set) with :func:`fairdd.distill.distill`, then trains fresh networks on the synthetic set
with :func:`fairdd.evaluate.evaluate_synthetic` and tests them on the real test split. Cells
go through the run store (study ``"dd_methods"``), so a re-run computes only what is new, and
run as one-thread worker processes (:func:`fairdd.parallel.map_processes`).

The synthetic sets themselves are kept beside the run store
(``results/dd_methods/synthetic/<run_id>.pt``) for the page's image grids.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from fairdd import results
from fairdd.config import Profile, check_choice, check_int, check_profile, check_sequence
from fairdd.data import Dataset, channel_stats, denormalize, load_dataset, normalize
from fairdd.distill import config_for, distill
from fairdd.evaluate import EvalConfig, evaluate_synthetic, random_subset
from fairdd.parallel import map_processes
from fairdd.paths import results_root

__all__ = [
    "BASELINES",
    "DISTILLATION_METHODS",
    "MethodsCell",
    "MethodsStudyConfig",
    "PAPER_FASHION_MNIST",
    "STUDY",
    "load_synthetic",
    "plot_accuracy",
    "run_cell",
    "run_study",
    "summary_table",
    "synthetic_images",
    "versus_random",
]

STUDY = "dd_methods"
DISTILLATION_METHODS: tuple[str, ...] = ("dc", "dsa", "dm", "mtt")
# "random": a class-stratified random real subset of the same size, on the same protocol.
# "whole": the whole training set (its epochs are set separately: 60k images per epoch).
BASELINES: tuple[str, ...] = ("random", "whole")

#: Published ConvNet accuracy on Fashion-MNIST (%), IPC 1 / 10 (Zhao et al. 2021, DC; Zhao &
#: Bilen 2021, DSA). The paper's numbers, shown beside ours; none exist for DM or MTT.
PAPER_FASHION_MNIST = pd.DataFrame(
    [("dc", 1, 70.5), ("dc", 10, 82.3), ("dsa", 1, 70.6), ("dsa", 10, 84.6)],
    columns=["method", "images_per_class", "paper_accuracy"],
)


@dataclass(frozen=True)
class MethodsCell:
    """One finished run of the study: a method, a size and a seed, under a profile.

    Attributes
    ----------
    method : one of :data:`DISTILLATION_METHODS` or :data:`BASELINES`.
    images_per_class : synthetic (or random real) images per class; ignored by ``"whole"``.
    seed : distillation / subset seed; the evaluation networks derive their seeds from it.
    profile : which :func:`fairdd.distill.config_for` profile sets the method's config.
    dataset : an image data set of :func:`fairdd.data.load_dataset`.
    eval_epochs : epochs per evaluation network (``None``: the reference's 300, 1000 with DSA).
    eval_networks : networks trained per synthetic set.
    eval_width : ConvNet width of the evaluation networks.
    whole_epochs : epochs of the whole-training-set baseline.
    train_limit : use only the first ``train_limit`` training images (``None``: all); smoke runs.
    test_limit : use only the first ``test_limit`` test images (``None``: all).
    """

    method: str
    images_per_class: int
    seed: int
    profile: Profile
    dataset: str = "fashion_mnist"
    eval_epochs: int | None = None
    eval_networks: int = 20
    eval_width: int = 128
    whole_epochs: int = 20
    train_limit: int | None = None
    test_limit: int | None = None

    def __post_init__(self) -> None:
        check_choice("method", self.method, DISTILLATION_METHODS + BASELINES)
        check_int("images_per_class", self.images_per_class, minimum=1)
        check_int("seed", self.seed, minimum=0)
        check_profile(self.profile)
        if self.eval_epochs is not None:
            check_int("eval_epochs", self.eval_epochs, minimum=1)
        check_int("eval_networks", self.eval_networks, minimum=1)
        check_int("eval_width", self.eval_width, minimum=1)
        check_int("whole_epochs", self.whole_epochs, minimum=1)
        for name in ("train_limit", "test_limit"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), minimum=10)


@dataclass(frozen=True)
class MethodsStudyConfig:
    """The whole sweep: methods × sizes × seeds, and how each cell is evaluated.

    Use :meth:`for_profile` for the page's three protocols; override fields with
    ``dataclasses.replace``.
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
    processes: int | None = None

    def __post_init__(self) -> None:
        check_profile(self.profile)
        check_sequence("methods", self.methods, lambda f, v: check_choice(f, v, DISTILLATION_METHODS + BASELINES))
        check_sequence("images_per_class", self.images_per_class, lambda f, v: check_int(f, v, minimum=1))
        check_sequence("seeds", self.seeds, lambda f, v: check_int(f, v, minimum=0))
        if self.processes is not None:
            check_int("processes", self.processes, minimum=1)
        self.cells()  # validates the per-cell fields

    @classmethod
    def for_profile(cls, profile: str) -> "MethodsStudyConfig":
        """The page's protocols.

        - ``"paper"``: IPC 1/10/50, 5 seeds, 20 evaluation networks of width 128 trained for
          the reference's 300 epochs (1000 with DSA); whole set 20 epochs.
        - ``"cpu"``: IPC 1 and 10, 3 seeds, 2 evaluation networks of width 32 (the width the
          ``cpu`` distillation profiles use) trained for 300 epochs whatever the method; the
          whole-set baseline 1 network × 2 epochs. The methods' own ``cpu`` reductions are
          documented in :mod:`fairdd.distill`.
        - ``"smoke"``: IPC 1, 1 seed, 1 network × 2 epochs, 600 training / 500 test images.
        """
        check_profile(profile)
        if profile == "paper":
            return cls(profile="paper")
        if profile == "cpu":
            return cls(
                profile="cpu", images_per_class=(1, 10), seeds=(0, 1, 2), eval_epochs=300,
                eval_networks=2, eval_width=32, whole_epochs=2,
            )
        return cls(
            profile="smoke", images_per_class=(1,), seeds=(0,), eval_epochs=2, eval_networks=1,
            eval_width=8, whole_epochs=1, train_limit=600, test_limit=500, processes=1,
        )

    def cells(self) -> list[MethodsCell]:
        """Every run of the sweep (the whole-set baseline once per seed, not per size)."""
        shared = {
            "profile": self.profile, "dataset": self.dataset, "eval_epochs": self.eval_epochs,
            "eval_networks": self.eval_networks, "eval_width": self.eval_width,
            "whole_epochs": self.whole_epochs, "train_limit": self.train_limit, "test_limit": self.test_limit,
        }
        out = []
        for method in self.methods:
            sizes = (1,) if method == "whole" else self.images_per_class
            out += [MethodsCell(method=method, images_per_class=ipc, seed=s, **shared) for ipc in sizes for s in self.seeds]
        return out


def _data(cell: MethodsCell) -> tuple[Dataset, Dataset]:
    """Normalised train and test splits (statistics from the training split)."""
    train = load_dataset(cell.dataset, "train")
    test = load_dataset(cell.dataset, "test")
    if cell.train_limit is not None:
        train = train.subset(torch.arange(min(cell.train_limit, len(train))))
    if cell.test_limit is not None:
        test = test.subset(torch.arange(min(cell.test_limit, len(test))))
    mean, std = channel_stats(train.inputs)
    train = dataclasses.replace(train, inputs=normalize(train.inputs, mean, std))
    test = dataclasses.replace(test, inputs=normalize(test.inputs, mean, std))
    return train, test


def _synthetic_file(cell: MethodsCell, root: str | None) -> Path:
    return (Path(root) if root is not None else results_root()) / STUDY / "synthetic" / f"{results.run_id(cell)}.pt"


def run_cell(cell: MethodsCell, root: str | None = None) -> list[dict[str, Any]]:
    """Distil (or pick the baseline set), evaluate, and return one row per evaluation network."""
    train, test = _data(cell)
    eval_config = EvalConfig(
        model_kwargs={"width": cell.eval_width}, epochs=cell.eval_epochs, num_networks=cell.eval_networks
    )
    extra: dict[str, Any] = {"distill_time_s": 0.0, "learning_rate": None, "first_loss": None, "last_loss": None}
    if cell.method == "whole":
        eval_config = dataclasses.replace(eval_config, epochs=cell.whole_epochs, num_networks=1)
        images, labels = train.inputs, train.labels
    elif cell.method == "random":
        subset = random_subset(train, cell.images_per_class, seed=cell.seed)
        images, labels = subset.inputs, subset.labels
    else:
        method_config = config_for(cell.method, cell.profile)
        start = time.perf_counter()
        synthetic = distill(
            train,
            method_config,
            images_per_class=cell.images_per_class,
            seed=cell.seed,
            checkpoint_dir=results.checkpoint_dir(STUDY, cell, root=root),
            progress=False,
        )
        extra.update(
            distill_time_s=time.perf_counter() - start,
            learning_rate=synthetic.learning_rate,
            first_loss=synthetic.losses[0],
            last_loss=synthetic.losses[-1],
            distill_iterations=len(synthetic.losses),
        )
        # The method's own protocol (DSA on for DSA/DM/MTT), at this study's width and epochs.
        eval_config = synthetic.evaluation_config(
            model_kwargs={**synthetic.model_kwargs, "width": cell.eval_width},
            epochs=cell.eval_epochs,
            num_networks=cell.eval_networks,
        )
        images, labels = synthetic.images, synthetic.labels
        results.save_checkpoint(_synthetic_file(cell, root), {"images": images, "labels": labels})
    rows = evaluate_synthetic(images, labels, test, eval_config, seed=cell.seed, learning_rate=extra["learning_rate"])
    return [{**row, **extra, "eval_dsa": eval_config.dsa} for row in rows]


def _run_one(cell: MethodsCell, root: str | None = None) -> pd.DataFrame:
    return results.run(STUDY, cell, lambda: run_cell(cell, root), root=root)


def run_study(config: MethodsStudyConfig, *, root: str | None = None) -> pd.DataFrame:
    """Every cell of ``config`` through the run store, in parallel processes; all rows."""
    cells = config.cells()
    todo = [c for c in cells if not results.is_finished(STUDY, c, root=root)]
    if todo:
        # Most expensive first, so the two workers finish together.
        order = {"dc": 0, "dsa": 1, "mtt": 2, "dm": 3, "whole": 4, "random": 5}
        todo.sort(key=lambda c: (order[c.method], -c.images_per_class))
        map_processes(functools.partial(_run_one, root=root), todo, processes=config.processes)
    return pd.concat([_run_one(c, root) for c in cells], ignore_index=True)


def load_synthetic(cell: MethodsCell, root: str | None = None) -> dict[str, torch.Tensor] | None:
    """The synthetic set a distillation cell produced, or ``None`` if it was not run."""
    return results.load_checkpoint(_synthetic_file(cell, root))


def summary_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Accuracy (%) mean ± std over seeds (each seed the mean of its networks), per method and
    size, with the distillation time and the paper's number beside ours where one exists."""
    per_seed = (
        rows.groupby(["method", "images_per_class", "seed"], as_index=False)
        .agg(accuracy=("accuracy", "mean"), distill_time_s=("distill_time_s", "first"))
    )
    table = per_seed.groupby(["method", "images_per_class"], as_index=False).agg(
        accuracy_mean=("accuracy", lambda a: 100 * a.mean()),
        accuracy_std=("accuracy", lambda a: 100 * a.std(ddof=1) if len(a) > 1 else float("nan")),
        seeds=("seed", "nunique"),
        distill_time_s=("distill_time_s", "mean"),
    )
    table.loc[table["method"] == "whole", "images_per_class"] = pd.NA
    return table.merge(PAPER_FASHION_MNIST, on=["method", "images_per_class"], how="left")


def synthetic_images(cell: MethodsCell, root: str | None = None) -> torch.Tensor | None:
    """The synthetic images of a distillation cell mapped back to [0, 1] for display
    (``(N, C, H, W)``, class-major), or ``None`` if the cell was not run."""
    saved = load_synthetic(cell, root)
    if saved is None:
        return None
    train = load_dataset(cell.dataset, "train")
    if cell.train_limit is not None:
        train = train.subset(torch.arange(min(cell.train_limit, len(train))))
    mean, std = channel_stats(train.inputs)
    return denormalize(saved["images"], mean, std).clamp(0, 1)


def _per_seed(rows: pd.DataFrame) -> pd.DataFrame:
    """Accuracy of each (method, size, seed): the mean over its evaluation networks."""
    return rows.groupby(["method", "images_per_class", "seed"], as_index=False)["accuracy"].mean()


def versus_random(rows: pd.DataFrame) -> pd.DataFrame:
    """Each distillation method against the random real subset of the same size and seed.

    Columns: the mean gain in accuracy points (method − random, paired by seed), the number of
    seeds on which the method is ahead, and whether it is ahead on every seed.
    """
    per_seed = _per_seed(rows)
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
        ax.errorbar(stats.index, 100 * stats["mean"], yerr=100 * stats["std"], marker="o", capsize=3,
                    label=method.upper() if method != "random" else "random real", ls="--" if method == "random" else "-")
    whole = per_seed.loc[per_seed["method"] == "whole", "accuracy"]
    if len(whole):
        ax.axhspan(100 * (whole.mean() - whole.std(ddof=1) if len(whole) > 1 else whole.mean()),
                   100 * (whole.mean() + whole.std(ddof=1) if len(whole) > 1 else whole.mean()), color="grey", alpha=0.3)
        ax.axhline(100 * whole.mean(), color="grey", label="whole training set")
    ax.set_xscale("log")
    ax.set_xlabel("images per class")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
