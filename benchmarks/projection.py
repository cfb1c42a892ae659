"""Projected training time of every study's ``"paper"`` profile, from its work and measured rates.

The issue "Throughput" asks for all studies at their full protocols (on the data available) in
at most a stated number of GPU-hours on one H100-class GPU, and for the projection, or its
inputs when no GPU was at hand, to be kept in ``benchmarks/``. This script computes both.

**1. Work inputs, derived from the code.** For every study in :data:`fairdd.studies.STUDIES` it
builds the config (``config_class(name).for_profile(profile, **variant)`` for each of the
module's ``BOOK_VARIANTS``, as :mod:`fairdd.records` does: the class-wise study runs its 10- and
its 100-class task), enumerates ``config.cells()`` and reads the work every cell declares
(``STUDY.work(cell)``: :class:`fairdd.studies._work.Work` items, built by the counting rules of
:mod:`fairdd.studies._work` — the same items the study skeleton orders the cells by) as work items
(:class:`WorkItem`): which network (:class:`Network`, a :class:`fairdd.models.NetworkSpec` or one
of the embedding study's own MLPs), which input shape, which minibatch, how many optimisation
steps, of which kind (``"train"``: forward, backward and optimiser step of a minibatch;
``"forward"``: a forward pass without gradients) and with which per-batch augmentation (``"none"``,
DSA, or KD's random crop). Set sizes come from the data the study reads (its data spec, loaded
from ``data/``: the stand-in data sets where the paper's are absent), the counts from the
configs the cells embed:

- evaluation (:class:`fairdd.evaluate.EvalConfig`): ``num_networks × epochs × ⌈n / batch⌉``
  steps at ``min(batch, n)``; the whole-set baselines likewise on the training set;
- DC/DSA (:mod:`fairdd.distill.dc`) per iteration: ``outer_loop × K`` real-gradient steps at
  ``batch_real``, ``2 × outer_loop × K`` synthetic steps at ``ipc`` and
  ``(outer_loop − 1) × inner_loop × ⌈K·ipc / batch_train⌉`` inner-loop steps;
- DM (:mod:`fairdd.distill.dm`) per iteration: ``K`` forward steps of ``batch_real`` real images
  and one step of the ``K·ipc`` synthetic images;
- MTT (:mod:`fairdd.distill.mtt`) per iteration: ``2 × syn_steps`` steps at ``batch_syn``; the
  expert trajectories ``num_experts × expert_train_epochs × ⌈epoch size / expert_batch⌉`` steps,
  counted **once** per distinct data set and expert settings (the cache key of
  :func:`fairdd.distill.expert_cache_dir`), however many cells read them;
- KD (:mod:`fairdd.kd`): teacher and students ``epochs × ⌈n / batch⌉`` steps; a teacher counted
  once per distinct :class:`fairdd.kd.TeacherSpec` and data set (per bias ratio in the comparison
  study); distilled students add a teacher forward per step with augmentation, or the teacher's
  cached logits once per teacher without;
- the bias study's attribute probe once per :class:`fairdd.probe.ProbeSpec`;
- embedding DD (:mod:`fairdd.distill.embedding`) per outer step: ``2 × size × distill_epochs``
  unrolled MLP steps at one vector per class and one outer step at the real minibatch;
  retraining ``size × distill_epochs`` steps; the STANDARD baselines ``epochs × ⌈n / batch⌉``.

Every item is also expressed in **sample-passes**: the forward and backward pass of one sample
is 1; a forward pass without gradients is weighted 1/3 (a backward costs about two forwards).
Items of one network, input shape and kind can be summed in either unit.

**2. Rates, measured on the device the script runs on.** For each distinct (kind, network,
input shape, classes, augmentation) group, a few steps are timed after a warm-up: ``"train"``
steps with :func:`fairdd.evaluate.train_network` (the evaluation protocol: SGD with momentum
and weight decay, DSA when the group has it) or, for KD's crop augmentation,
:func:`fairdd.kd.fit`; ``"forward"`` steps as a no-grad loop. Groups whose items can take a
batched path a study offers — an evaluation's networks (:func:`fairdd.evaluate.evaluate_synthetic`
``side_by_side=True``: :func:`fairdd.batched.train_networks`, which says why when it refuses a
network), the KD study's students of one data set and seed (its ``side_by_side`` option:
:func:`fairdd.kd.fit_many`) — are also timed batched, N networks side by side
(``--batched-networks``, default the items' own N, at most 4 on a CPU); the per-network seconds
of that are the batched rate. A batched KD step runs the teacher once over every student's
batch: its forward is priced at that larger batch, shared by the distilled students. Each group is
measured at its smallest and largest batch (``--batch-points ends``) or at every batch it uses
(``all``): the smallest first, then each larger one unless its step, predicted in proportion to
the batch, would take longer than ``--step-budget`` seconds, in which case it is measured at the
largest batch that fits (``--max-batch`` caps it outright). Between measured batches the seconds
per step are interpolated linearly, above the largest they scale in proportion to the batch
(constant seconds per sample), below the smallest they stay at the smallest's. A measurement is
``--warmup`` untimed steps, then at least ``--steps`` timed ones (more for fast steps, until
``--min-time`` seconds). Groups are measured in order of their work (largest first) until
``--max-seconds`` is spent; a group whose warm-up step takes longer than ``--skip-slower-than``
seconds, or that fails, is left unmeasured, and so are the hours of its items (the tables count
them in ``unmeasured_rows`` and ``unmeasured_sample_passes``).

**3. Projection.** ``hours = Σ steps × seconds per step ÷ 3600`` over the items: sequentially
(the studies' default: one network after another, one process), and with the batched rate for
the items that can take a batched path (the other items unchanged; DM's seeds side by side,
:func:`fairdd.distill.distill_side_by_side`, which the class-wise study's ``dm_side_by_side`` uses,
is priced sequentially: its batched rate is not measured here). ``gpu_hours`` (and
``gpu_hours_batched``) hold the number only when the device is CUDA; measured on a CPU they say
``"unmeasured"`` and the hours columns are that CPU's (one thread by default).

Run it::

    # the inputs only (seconds; no measurement), e.g. to review them or on a machine with no time
    .venv/bin/python benchmarks/projection.py --inputs-only
    # measured on this machine's CPU, one thread, within minutes
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/projection.py --device cpu --step-budget 2 --max-seconds 400
    # on a GPU: every batch as the studies use it, the batched path at the studies' N
    .venv/bin/python benchmarks/projection.py --device cuda --batch-points all --max-seconds 420
    # re-project (e.g. after a config change) from the rates of an earlier run, without measuring
    .venv/bin/python benchmarks/projection.py --rates-from benchmarks/results/projection.json

Each run prints its tables and writes them, with the provenance, to
``benchmarks/results/projection.json`` and ``.md`` (``--out``, ``--no-save``, ``--note`` as in
every benchmark): ``studies`` (per study, and ``all``), ``components`` (per study and component),
``inputs`` (the work items, aggregated over cells that give the same item), ``target`` (the
total against ``--target-gpu-hours``), ``rates`` (what was measured) and ``approximations``
(:data:`APPROXIMATIONS`, the counting rules that are not exact).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fairdd.models import NetworkSpec
from fairdd.studies import STUDIES, config_class, study_module
from fairdd.studies import _work

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_results.py
from _results import add_arguments, save_from_args  # noqa: E402

__all__ = [
    "APPROXIMATIONS",
    "Network",
    "Rates",
    "WorkItem",
    "aggregate",
    "measure_rates",
    "project",
    "study_configs",
    "work_items",
]

NAME = "projection"
KINDS = ("train", "forward")
#: Weight of a forward-only sample-pass against a training one (forward + backward).
FORWARD_WEIGHT = 1.0 / 3.0
UNMEASURED = "unmeasured"

#: The counting rules that are approximations (written into the results with the tables).
APPROXIMATIONS: tuple[str, ...] = (
    "A forward pass without gradients counts 1/3 of a training sample-pass (forward + backward); forward-only "
    "steps are timed separately (kind 'forward'), so the hours do not depend on this weight.",
    "A minibatch step is timed as forward, loss, backward and SGD step of the evaluation protocol; Adam (the "
    "embedding study), gradients taken with autograd.grad and the image-only updates of DC/DM/MTT are taken to "
    "cost the same per step.",
    "DC/DSA: the synthetic gradient with create_graph and the matching loss's backward through it count as 2 "
    "training steps at batch ipc per class and outer step; the real gradient as 1 training step at batch_real.",
    "FairDD's synchronized DC: every attribute group's gradient counts as a full training step at batch_real, "
    "for all NUM_ATTRIBUTES groups (an upper bound: the groups share one forward, and a batch may lack a group).",
    "MTT: each of the syn_steps unrolled student steps counts as 2 training steps at batch_syn (the step with "
    "create_graph, and its share of the backward through the unrolled graph).",
    "DM: the real images are embedded per class (K forward steps of batch_real); on CUDA the code embeds all "
    "classes in one pass, which this counts as K passes.",
    "Real batches are min(batch_real, n / K) images (balanced classes assumed).",
    "An epoch's last, smaller minibatch is counted as a full step at min(batch, n) (sample-passes are exact).",
    "Embedding DD: each unrolled step counts as 2 MLP training steps at one vector per class; the outer step "
    "as 1 at the real minibatch; ADV adds one discriminator training step and one discriminator forward per "
    "outer step (and per minibatch of a STANDARD + ADV baseline).",
    "STANDARD baselines: counted at their maximum epochs (early stopping, patience, ends them sooner), plus "
    "one validation forward per epoch; BTEO's balanced set is the full training split's balanced fraction "
    "of the rows left after the validation split.",
    "Per-batch augmentation (DSA, KD's crop and flip) is in the measured rate of its group; DSA strategies "
    "differ per data set (digits drop the flip), the rate uses the default strategy.",
    "Not counted: test-set predictions, the attribute probe's reading of the sets, metrics, data loading, "
    "bias construction, checkpoints and ZCA fitting.",
    "Rates between measured batches are interpolated linearly; above the largest measured batch the seconds "
    "per step scale with the batch (constant seconds per sample: pessimistic on a GPU, about right on a "
    "CPU); below the smallest they stay at the smallest's.",
    "Batched rate: the per-network seconds of N networks side by side, N = min(the item's networks, "
    "--batched-networks); items with more networks are taken to cost the same per network. KD students are "
    "timed batched with hard labels (fit_many at alpha 0); MLP students with the evaluation protocol's "
    "stacked step.",
)

# ------------------------------------------------------------------------------- networks


#: A network as the rates are keyed: the studies' work vocabulary's (a NetworkSpec, the embedding
#: study's MLP or adversary, or a text network), so that what a study declares is what is measured.
Network = _work.Network


def _shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(int(v)) for v in shape)


# ------------------------------------------------------------------------------ work items


@dataclass(frozen=True)
class WorkItem:
    """Training work of one kind on one network: ``steps`` minibatch steps of ``batch`` samples.

    Attributes
    ----------
    study, component : where it comes from (e.g. ``"dd_methods"``, ``"distillation:dm"``).
    network, input_shape, num_classes : what is trained (or run forward), on which inputs.
    kind : ``"train"`` (forward + backward + optimiser step) or ``"forward"`` (no gradients).
    aug : per-batch augmentation in the step: ``"none"``, ``"dsa"`` or ``"crop"`` (KD).
    batch : samples per step.
    steps : minibatch steps.
    sample_passes : the same work in training sample-passes (forward-only weighted 1/3).
    networks : networks the batched path stacks (an evaluation's networks; a KD data set and seed's
        students); for a batched teacher forward, the distilled students that share it.
    batchable : whether these steps can take a batched path the study offers
        (``evaluate_synthetic(side_by_side=True)``, the KD study's ``side_by_side``).
    batched_batch : the batch of this forward step on the batched path (the teacher runs once over
        every student's batch); 0: ``batch``.
    batched_note : why not, when not (``fairdd.batched``'s refusal, or "one network").
    cells : how many cells (or shared pieces of work) gave this item; summed by :func:`aggregate`.
    note : what the steps are.
    """

    study: str
    component: str
    network: Network
    input_shape: tuple[int, ...]
    num_classes: int
    kind: str
    aug: str
    batch: int
    steps: int
    sample_passes: float
    networks: int = 1
    batchable: bool = False
    batched_note: str = ""
    cells: int = 1
    note: str = ""
    batched_batch: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind={self.kind!r} must be one of {KINDS}")
        if self.batch < 1 or self.steps < 0 or self.sample_passes < 0:
            raise ValueError(f"batch={self.batch}, steps={self.steps}, sample_passes={self.sample_passes}: invalid")

    @property
    def rate_key(self) -> str:
        """The measured group this item's steps are priced by."""
        return rate_key(self.kind, self.network, self.input_shape, self.num_classes, self.aug)


def rate_key(kind: str, network: Network, input_shape: Sequence[int], num_classes: int, aug: str) -> str:
    return f"{kind}|{network.label}|{_shape_text(input_shape)}|{num_classes}|{aug}"


def _passes(kind: str, steps: int, batch: int) -> float:
    return steps * batch * (FORWARD_WEIGHT if kind == "forward" else 1.0)


def aggregate(items: Iterable[WorkItem]) -> list[WorkItem]:
    """Items that differ only in their counts merged: steps, sample-passes and cells summed."""
    merged: dict[tuple, WorkItem] = {}
    for item in items:
        key = dataclasses.replace(item, steps=0, sample_passes=0.0, cells=0)
        if key in merged:
            old = merged[key]
            merged[key] = dataclasses.replace(old, steps=old.steps + item.steps,
                                              sample_passes=old.sample_passes + item.sample_passes,
                                              cells=old.cells + item.cells)
        else:
            merged[key] = item
    return list(merged.values())


# --------------------------------------------------------------------------- batched path


@functools.lru_cache(maxsize=256)
def _batchability(network: Network, shape: tuple[int, ...], classes: int, compile_: bool, channels_last: bool,
                  precision: str) -> str:
    """``""`` when the evaluation's networks can be trained side by side, else fairdd.batched's reason."""
    from fairdd.batched import check_batchable, check_batchable_config
    from fairdd.evaluate import EvalConfig

    try:
        check_batchable_config(EvalConfig(network=network.spec or NetworkSpec(), compile=compile_,
                                          channels_last=channels_last, precision=precision))
        check_batchable([network.build(shape, classes)])
    except ValueError as exc:
        return str(exc)
    return ""


def study_configs(name: str, profile: str = "paper") -> list[Any]:
    """The configs the book runs for study ``name`` at ``profile``: ``for_profile(profile, **variant)``
    for each of the module's ``BOOK_VARIANTS`` (default: one, no overrides)."""
    variants = getattr(study_module(name), "BOOK_VARIANTS", ({},))
    cls = config_class(name)
    return [cls.for_profile(profile, **variant) for variant in variants]


class _Dedup:
    """A config whose ``cells()`` are the distinct cells of several configs (the book's variants)."""

    def __init__(self, configs: Sequence[Any]) -> None:
        self._configs = list(configs)

    def cells(self) -> list[Any]:
        return list(dict.fromkeys(cell for config in self._configs for cell in config.cells()))


def work_items(name: str, configs: Any = None, *, profile: str = "paper") -> list[WorkItem]:
    """The work items of study ``name``: of ``configs`` (one config or a list), by default the
    book's configs at ``profile`` (:func:`study_configs`). Not aggregated (see :func:`aggregate`).

    Every cell's work is what the study declares (``Study(work=...)``, :mod:`fairdd.studies._work`),
    the same items the skeleton orders the cells by (:func:`declared_items`)."""
    study = study_module(name).STUDY
    if study.work is None:
        raise KeyError(f"study {name!r} declares no work: give its Study a work=cell_work hook "
                       "(fairdd.studies._work builds the items)")
    if configs is None:
        configs = study_configs(name, profile)
    if not isinstance(configs, (list, tuple)):
        configs = [configs]
    return declared_items(name, [study.work(cell) for cell in _Dedup(configs).cells()])


def declared_items(study: str, works: Sequence[Sequence[_work.Work]]) -> list[WorkItem]:
    """The work items of the cells' declared ``works`` (one list per cell).

    Shared work is counted once per key: the largest (in sample-passes) any cell declares for
    it. Items with a :attr:`fairdd.studies._work.Work.together` key are priced side by side: a
    training item stacks the networks of its component and key; a forward item runs once over the
    batches of every training item of its key (its ``batched_batch``), shared by the forward
    items of the key, and takes the batched path when they can.
    """
    own: list[_work.Work] = []
    shared: dict[Any, list[_work.Work]] = {}
    for cell_works in works:
        by_key: dict[Any, list[_work.Work]] = {}
        for w in cell_works:
            if w.shared is None:
                own.append(w)
            else:
                by_key.setdefault(w.shared, []).append(w)
        for key, items in by_key.items():
            if key not in shared or sum(w.sample_passes for w in items) > sum(w.sample_passes for w in shared[key]):
                shared[key] = items
    trained: dict[Any, int] = {}
    stacked: dict[tuple[str, Any], int] = {}
    for w in own:
        if w.together is not None:
            stacked[(w.component, w.together)] = stacked.get((w.component, w.together), 0) + 1
            if w.kind == "train":
                trained[w.together] = trained.get(w.together, 0) + 1
    reasons: dict[Any, str] = {}
    out: list[WorkItem] = []
    for w in own + [w for items in shared.values() for w in items]:
        networks = stacked[(w.component, w.together)] if w.together is not None else w.networks
        if w.batched is None:
            reason = "one network at a time (no batched path)"
        elif w.together is not None and w.kind == "forward":
            reason = reasons.get(w.together, "")
        elif networks < 2 and w.together is None:
            reason = "one network"
        else:
            options = w.batched if len(w.batched) == 3 else (False, False, "fp32")
            reason = _batchability(w.network, w.input_shape, w.num_classes, *options)
            if w.together is not None:
                reasons.setdefault(w.together, reason)
        batched_batch = trained.get(w.together, 0) * w.batch if w.together is not None and w.kind == "forward" else 0
        out.append(WorkItem(
            study=study, component=w.component, network=w.network, input_shape=w.input_shape,
            num_classes=w.num_classes, kind=w.kind, aug=w.aug, batch=w.batch, steps=w.steps,
            sample_passes=float(w.sample_passes), networks=networks, batchable=not reason, batched_note=reason,
            note=w.note, batched_batch=batched_batch,
        ))
    return out


def cell_count(configs: Sequence[Any]) -> int:
    return len(_Dedup(configs).cells())


# ------------------------------------------------------------------------------- rates


class Rates:
    """Measured seconds per step: ``(rate key, path) → {batch: seconds}`` (path ``"sequential"``, or
    ``"batched"``: seconds per network and step with N networks side by side)."""

    def __init__(self, points: Mapping[tuple[str, str], Mapping[int, float]] | None = None) -> None:
        self.points: dict[tuple[str, str], dict[int, float]] = {
            k: {int(b): float(s) for b, s in v.items()} for k, v in (points or {}).items() if v
        }

    def add(self, key: str, path: str, batch: int, seconds: float) -> None:
        self.points.setdefault((key, path), {})[int(batch)] = float(seconds)

    def seconds(self, key: str, batch: int, path: str = "sequential") -> float | None:
        """Seconds per step at ``batch``: interpolated between measured batches, in proportion
        to the batch above the largest, the smallest's below it; ``None`` when not measured."""
        pts = self.points.get((key, path))
        if not pts:
            return None
        bs = sorted(pts)
        if batch in pts:
            return pts[batch]
        if batch < bs[0]:
            return pts[bs[0]]
        if batch > bs[-1]:
            return pts[bs[-1]] * batch / bs[-1]
        hi = next(b for b in bs if b > batch)
        lo = max(b for b in bs if b < batch)
        return pts[lo] + (pts[hi] - pts[lo]) * (batch - lo) / (hi - lo)

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]]) -> "Rates":
        """The rates of an earlier run's ``rates`` table (rows with a measured ``seconds_per_step``)."""
        out = cls()
        for row in rows:
            if row.get("seconds_per_step") is not None:
                out.add(row["key"], row["path"], row["batch"], row["seconds_per_step"])
        return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _toy_data(shape: Sequence[int], classes: int, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, *shape, generator=g).to(device)
    y = torch.randint(0, classes, (n,), generator=g).to(device)
    return x, y


def _run_steps(kind: str, aug: str, network: Network, shape: Sequence[int], classes: int, batch: int, steps: int,
               device: torch.device, *, networks: int = 1, models: list | None = None) -> tuple[float, list]:
    """Wall seconds of ``steps`` minibatch steps (one network, or ``networks`` batched) and the
    models (kept for the next call: the warm-up's models are the timed call's)."""
    from fairdd.augment import DEFAULT_STRATEGY, dsa
    from fairdd.evaluate import EvalConfig, train_network
    from fairdd.seeding import generator

    per_epoch = max(1, min(steps, 8))  # the data hold up to 8 batches; more steps run more epochs
    epochs = math.ceil(steps / per_epoch)
    x, y = _toy_data(shape, classes, batch * per_epoch, device)
    if models is None:
        models = [network.build(shape, classes, seed=i).to(device) for i in range(networks)]
    gens = [generator(i, device=device) for i in range(len(models))]
    _sync(device)
    start = time.perf_counter()
    if kind == "forward":
        model = models[0]
        with torch.no_grad():
            for _ in range(epochs):
                for i in range(per_epoch):
                    xb = x[i * batch:(i + 1) * batch]
                    if aug == "dsa":
                        xb = dsa(xb, DEFAULT_STRATEGY, generator=gens[0])
                    model(xb)
    elif aug == "crop":
        from fairdd.data import Dataset
        from fairdd.kd import KDConfig, fit

        spec = network.spec or NetworkSpec()
        cfg = KDConfig(teacher=spec, student=spec, alpha=0.0, epochs=epochs, milestones=(epochs,), batch_size=batch,
                       augment=True, flip=True)
        data = Dataset(name="projection", split="train", inputs=x, labels=y, classes=tuple(map(str, range(classes))))
        if len(models) > 1:
            from fairdd.kd import fit_many

            fit_many(models, data, [cfg] * len(models), generators=gens)
        else:
            fit(models[0], data, cfg, generator=gens[0])
    else:
        cfg = EvalConfig(network=network.spec or NetworkSpec(), epochs=epochs, batch_size=batch, dsa=aug == "dsa",
                         lr_decay_fraction=1.0, num_networks=len(models))
        if len(models) > 1:
            from fairdd.batched import train_networks

            train_networks(models, x, y, cfg, generators=gens)
        else:
            train_network(models[0], x, y, cfg, generator=gens[0])
    _sync(device)
    return time.perf_counter() - start, models


def _time_path(key: Any, batch: int, device: torch.device, args: argparse.Namespace, networks: int) -> dict[str, Any]:
    """Seconds per step (per network, when batched) of one group at one batch: a warm-up of
    ``--warmup`` steps, then at least ``--steps`` timed steps (more for fast steps, to fill
    ``--min-time``)."""
    kind, network, shape, classes, aug = key
    try:
        warm_s, models = _run_steps(kind, aug, network, shape, classes, batch, args.warmup, device, networks=networks)
        warm_step = warm_s / args.warmup
        if warm_step > args.skip_slower_than:
            return {"status": f"skipped: a warm-up step took {warm_step:.3g} s > --skip-slower-than "
                              f"{args.skip_slower_than:g} s", "warmup_s": warm_s}
        steps = max(args.steps, min(args.max_steps, math.ceil(args.min_time / max(warm_step, 1e-6))))
        seconds, _ = _run_steps(kind, aug, network, shape, classes, batch, steps, device, models=models)
    except (RuntimeError, ValueError, TypeError) as exc:  # OOM, a refused batched model, a changed API
        if device.type == "cuda":
            torch.cuda.empty_cache()
        return {"status": f"failed: {type(exc).__name__}: {str(exc)[:200]}"}
    per_step = seconds / steps / networks
    return {"status": "measured", "steps_timed": steps, "warmup_s": warm_s, "seconds_per_step": per_step}


def _groups_to_measure(items: Sequence[WorkItem]) -> list[dict[str, Any]]:
    """One entry per rate key: the key's parts, the batches its items use, whether any item is
    batchable (and the networks it stacks), and its work (sample-passes; the measuring order)."""
    groups: dict[str, dict[str, Any]] = {}
    for item in items:
        g = groups.setdefault(item.rate_key, {
            "key": item.rate_key, "parts": (item.kind, item.network, item.input_shape, item.num_classes, item.aug),
            "batches": set(), "batched_batches": set(), "batched_networks": 0, "sample_passes": 0.0,
        })
        g["batches"].add(item.batch)
        g["sample_passes"] += item.sample_passes
        if item.batchable and item.kind == "forward":
            g["batches"].add(item.batched_batch or item.batch)
        elif item.batchable:
            g["batched_batches"].add(item.batch)
            g["batched_networks"] = max(g["batched_networks"], item.networks)
    return sorted(groups.values(), key=lambda g: -g["sample_passes"])


def _wanted(batches: Iterable[int], args: argparse.Namespace) -> list[int]:
    """The batches to measure a group at (``--batch-points``), capped at ``--max-batch``."""
    capped = sorted({min(b, args.max_batch) if args.max_batch else b for b in batches})
    if args.batch_points == "ends" and len(capped) > 2:
        capped = [capped[0], capped[-1]]
    return capped


def _within_budget(batch: int, floor: int, per_sample: float, networks: int, args: argparse.Namespace) -> int:
    """``batch``, or a smaller one (not below ``floor``) whose predicted step of ``networks``
    networks stays within ``--step-budget`` seconds (predicted: in proportion to the batch)."""
    if per_sample <= 0:
        return batch
    fits = int(args.step_budget / (per_sample * networks))
    return max(floor, min(batch, fits))


def measure_rates(items: Sequence[WorkItem], args: argparse.Namespace) -> tuple[Rates, list[dict[str, Any]]]:
    """Time every group the items use (largest work first, within ``--max-seconds``); the rates and
    one row per measured (or skipped) group, batch and path.

    Per group, the smallest batch is measured first; a larger batch whose step is predicted (in
    proportion to the batch) to take longer than ``--step-budget`` seconds is measured at the
    largest batch that fits instead, and the rates scale in proportion above it."""
    device = torch.device(args.device)
    rates, rows = Rates(), []
    began = time.perf_counter()
    for g in _groups_to_measure(items):
        kind, network, shape, classes, aug = g["parts"]
        paths = [("sequential", 1, _wanted(g["batches"], args))]
        if g["batched_batches"] and not args.no_batched:
            n = g["batched_networks"] if args.batched_networks is None else min(g["batched_networks"], args.batched_networks)
            if n >= 2:
                paths.append(("batched", n, _wanted(g["batched_batches"], args)))
        stop = None
        for path, networks, wanted in paths:
            done: list[int] = []
            for want in wanted:
                row = {"key": g["key"], "kind": kind, "network": network.label, "input_shape": _shape_text(shape),
                       "num_classes": classes, "aug": aug, "path": path, "networks": networks, "wanted_batch": want,
                       "batch": want, "device": str(device)}
                if stop is None and time.perf_counter() - began > args.max_seconds:
                    stop = f"unmeasured: --max-seconds {args.max_seconds:g} spent"
                if stop is not None:
                    row["status"] = stop
                    rows.append(row)
                    continue
                # Seconds per sample (per network) to predict this step by: the path's largest
                # measured batch; for the first batched point, the sequential rate.
                ref_path, ref_batch = (path, done[-1]) if done else ("sequential", want)
                ref = rates.seconds(g["key"], ref_batch, ref_path) if (done or path == "batched") else None
                per_sample = 0.0 if ref is None else ref / ref_batch
                batch = _within_budget(want, 1, per_sample, networks, args)
                if done and batch <= done[-1]:
                    break  # the budget allows no larger batch than one already measured
                row["batch"] = batch
                row.update(_time_path(g["parts"], batch, device, args, networks))
                if row["status"] == "measured":
                    rates.add(g["key"], path, batch, row["seconds_per_step"])
                    row["seconds_per_sample"] = row["seconds_per_step"] / batch
                    done.append(batch)
                rows.append(row)
                text = f"{row['seconds_per_step']:.4g} s/step" if "seconds_per_step" in row else row["status"]
                print(f"  {kind:<7} {network.label:<28} {_shape_text(shape):<9} {aug:<5} {path:<10} N={networks:<3} "
                      f"batch {batch:<5} (wanted {want:<5}) {text}", flush=True)
                if row["status"].startswith("skipped") or batch < want:
                    break  # larger batches would be slower still, or cut down to this one again
    return rates, rows


# --------------------------------------------------------------------------- projection


def _hours(item: WorkItem, rates: Rates) -> tuple[float | None, float | None]:
    seq = rates.seconds(item.rate_key, item.batch, "sequential")
    hours_seq = None if seq is None else item.steps * seq / 3600
    hours_bat = hours_seq
    if item.batchable and item.kind == "train":
        bat = rates.seconds(item.rate_key, item.batch, "batched")  # per network and step
        if bat is not None:
            hours_bat = item.steps * bat / 3600
    elif item.batchable:  # one forward pass at batched_batch serves `networks` of these steps
        fwd = rates.seconds(item.rate_key, item.batched_batch or item.batch, "sequential")
        hours_bat = None if fwd is None else item.steps * fwd / item.networks / 3600
    return hours_seq, hours_bat


def project(items: Sequence[WorkItem], rates: Rates, *, device: str,
            cells: Mapping[str, int] | None = None) -> dict[str, list[dict[str, Any]]]:
    """The tables of a projection: ``inputs`` (aggregated items with their hours), ``components``
    and ``studies`` (sums). ``gpu_hours*`` hold numbers only when ``device`` is CUDA."""
    gpu = str(device).startswith("cuda")
    agg = aggregate(items)
    raw_counts: dict[tuple[str, str], int] = {}
    for item in items:
        raw_counts[(item.study, item.component)] = raw_counts.get((item.study, item.component), 0) + 1
    inputs = []
    for item in agg:
        seq, bat = _hours(item, rates)
        inputs.append({
            "study": item.study, "component": item.component, "network": item.network.label,
            "input_shape": _shape_text(item.input_shape), "num_classes": item.num_classes, "kind": item.kind,
            "aug": item.aug, "batch": item.batch, "steps": item.steps, "sample_passes": item.sample_passes,
            "cells": item.cells, "networks": item.networks, "batchable": item.batchable,
            "batched_note": item.batched_note, "note": item.note, "hours_sequential": seq, "hours_batched": bat,
        })

    def summary(rows: list[dict[str, Any]], **head: Any) -> dict[str, Any]:
        missing = [r for r in rows if r["hours_sequential"] is None]
        seq = sum(r["hours_sequential"] for r in rows if r["hours_sequential"] is not None)
        bat = sum(r["hours_batched"] for r in rows if r["hours_batched"] is not None)
        measured = len(missing) < len(rows)
        return {
            **head,
            "steps": sum(r["steps"] for r in rows),
            "sample_passes": sum(r["sample_passes"] for r in rows),
            "device": str(device),
            "rows": len(rows),
            "hours_sequential": seq if measured else None,
            "hours_batched": bat if measured else None,
            "gpu_hours": (seq if measured else None) if gpu else UNMEASURED,
            "gpu_hours_batched": (bat if measured else None) if gpu else UNMEASURED,
            "unmeasured_rows": len(missing),
            "unmeasured_sample_passes": sum(r["sample_passes"] for r in missing),
        }

    components = []
    for study, component in dict.fromkeys((r["study"], r["component"]) for r in inputs):
        rows = [r for r in inputs if r["study"] == study and r["component"] == component]
        components.append(summary(rows, study=study, component=component, items=raw_counts[(study, component)]))
    studies = []
    for study in dict.fromkeys(r["study"] for r in inputs):
        rows = [r for r in inputs if r["study"] == study]
        head = {"study": study}
        if cells is not None:
            head["cells"] = cells.get(study)
        head["items"] = sum(v for (s, _), v in raw_counts.items() if s == study)
        studies.append(summary(rows, **head))
    if studies:
        total = {"study": "all", **({"cells": sum(v or 0 for v in cells.values())} if cells is not None else {}),
                 "items": len(items)}
        studies.append(summary(inputs, **total))
    return {"studies": studies, "components": components, "inputs": inputs}


def target_row(total: Mapping[str, Any], target: float) -> dict[str, Any]:
    """The issue's target against the projected total (numbers only when measured on CUDA)."""
    row: dict[str, Any] = {"target_gpu_hours": target}
    for name in ("gpu_hours", "gpu_hours_batched"):
        value = total.get(name)
        row[name] = value
        row[f"within_target{name.removeprefix('gpu_hours')}"] = (
            value <= target if isinstance(value, float) and not total.get("unmeasured_rows") else UNMEASURED)
    return row


# ------------------------------------------------------------------------------- output


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def print_table(title: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    print(f"\n{title}")
    cells = [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", nargs="+", default=None, choices=sorted(STUDIES), help="default: every study")
    parser.add_argument("--profile", default="paper", help="the studies' profile (default paper)")
    parser.add_argument("--device", default="cpu", help="where the rates are measured: cpu (default) or cuda")
    parser.add_argument("--inputs-only", action="store_true", help="write the work inputs, measure nothing")
    parser.add_argument("--rates-from", default=None, metavar="JSON",
                        help="project with the rates table of an earlier projection.json instead of measuring")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per measurement, at least (default 2)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed steps before (default 1 on the CPU, 2 on CUDA: its first steps pay start-up)")
    parser.add_argument("--min-time", type=float, default=0.3,
                        help="time fast steps until this many seconds (more steps, up to --max-steps)")
    parser.add_argument("--max-steps", type=int, default=400)
    parser.add_argument("--max-batch", type=int, default=0,
                        help="measure at most this batch (larger batches scale in proportion); 0: no cap")
    parser.add_argument("--step-budget", type=float, default=None,
                        help="measure a larger batch only while one step is predicted to take at most this many "
                             "seconds, else the largest batch that fits (default 0.5 on the CPU, 5 on CUDA)")
    parser.add_argument("--batch-points", choices=("ends", "all"), default="ends",
                        help="measure each group at its smallest and largest batch, or at every batch it uses")
    parser.add_argument("--batched-networks", type=int, default=None,
                        help="networks side by side for the batched rate (default: the items' own, at most 4 on "
                             "the CPU)")
    parser.add_argument("--no-batched", action="store_true", help="do not time the batched path")
    parser.add_argument("--skip-slower-than", type=float, default=20.0,
                        help="leave a group unmeasured when a warm-up step takes longer (seconds)")
    parser.add_argument("--target-gpu-hours", type=float, default=4.0,
                        help="the issue's target for all studies on one H100-class GPU (default 4)")
    parser.add_argument("--max-seconds", type=float, default=300.0,
                        help="stop measuring after this many seconds; the groups left are unmeasured")
    add_arguments(parser)
    args = parser.parse_args(argv)
    cpu = not str(args.device).startswith("cuda")
    if args.warmup is None:
        args.warmup = 1 if cpu else 2
    if args.step_budget is None:
        args.step_budget = 0.5 if cpu else 5.0
    if args.batched_networks is None and cpu:
        args.batched_networks = 4
    torch.set_num_threads(args.threads)

    names = args.studies or list(STUDIES)
    missing = [n for n in STUDIES if study_module(n).STUDY.work is None]
    if missing:
        raise SystemExit(f"studies that declare no work (Study(work=...), fairdd.studies._work): {missing}")
    start = time.perf_counter()
    items: list[WorkItem] = []
    cells: dict[str, int] = {}
    for name in names:
        configs = study_configs(name, args.profile)
        cells[name] = cell_count(configs)
        items += work_items(name, configs)
    print(f"{len(items)} work items from {sum(cells.values())} cells of {len(names)} studies at profile "
          f"{args.profile!r} ({time.perf_counter() - start:.1f} s)", flush=True)

    rate_rows: list[dict[str, Any]] = []
    device = args.device
    if args.rates_from:
        from _results import load

        earlier = load(args.rates_from)
        rate_rows = earlier["tables"].get("rates", [])
        rates = Rates.from_rows(rate_rows)
        device = next((r["device"] for r in rate_rows if r.get("device")), device)
        args.device = device
    elif args.inputs_only:
        rates = Rates()
    else:
        print(f"measuring on {device} ({torch.get_num_threads()} thread(s) on the CPU), at most "
              f"{args.max_seconds:g} s:", flush=True)
        rates, rate_rows = measure_rates(items, args)
    tables = project(items, rates, device=device, cells=cells)
    tables["target"] = [target_row(tables["studies"][-1], args.target_gpu_hours)]
    tables["rates"] = rate_rows
    tables["approximations"] = [{"rule": text} for text in APPROXIMATIONS]

    cols = ["study", "cells", "items", "steps", "sample_passes", "hours_sequential", "hours_batched", "gpu_hours",
            "gpu_hours_batched", "unmeasured_rows"]
    print_table(f"per study (profile {args.profile}; hours on {device})", tables["studies"], cols)
    print_table("per component", tables["components"],
                ["study", "component", "items", "steps", "sample_passes", "hours_sequential", "hours_batched",
                 "gpu_hours", "unmeasured_rows"])
    print_table("target", tables["target"], list(tables["target"][0]))
    elapsed = time.perf_counter() - start
    print(f"\ntotal time {elapsed:.1f} s", flush=True)
    notes = (f"profile {args.profile}; "
             + ("inputs only, no rates measured" if args.inputs_only and not args.rates_from else
                f"rates {'from ' + args.rates_from if args.rates_from else 'measured on ' + str(device)}")
             + f"; hours are {device} hours" + ("" if not cpu else "; GPU hours unmeasured (no GPU)")
             + f"; run took {elapsed:.0f} s")
    save_from_args(args, NAME, tables, notes=notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
