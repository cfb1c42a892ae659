"""The work of a cell, declared once: what the skeleton orders cells by and what the projection prices.

A study says what one cell trains with ``Study(work=...)``: ``work(cell) -> [Work, ...]``, one
:class:`Work` per kind of minibatch step (evaluation networks × epochs × batches, a
distillation's real and synthetic steps, a KD teacher's or student's epochs, the attribute probe,
the embedding study's unrolled steps). Two readers use it:

* :class:`fairdd.studies.Study` orders unfinished cells most expensive first by
  :func:`cell_cost`, the sum of :func:`price` over the cell's own (not shared) work: a rough
  count of multiply-accumulates (steps × batch × the network's multiply-accumulates per sample,
  forward-only steps a third of a training step), enough to start the long cells first;
* ``benchmarks/projection.py`` turns the same items into its work inputs and prices them with
  rates measured on a device.

Work that several cells share (MTT's expert trajectories, a KD teacher, the attribute probe) is
marked with a :attr:`Work.shared` key: a reader counts it once per key (the largest, when cells
ask for different amounts of it, e.g. more experts), and the skeleton leaves it out of a cell's
cost (the study's ``prepare`` hook computes it before the cells). Items of cells that a study
trains side by side carry a :attr:`Work.together` key, so a reader knows how many networks share a
batched step.

The builders below are the counting rules of the package's methods, in one place:
:func:`evaluation` (:class:`fairdd.evaluate.EvalConfig`), :func:`distillation` (DC/DSA, DM, MTT and
its experts), :func:`probe`, :func:`kd` (:mod:`fairdd.kd`), :func:`standard` and
:func:`embedding_dd` (:mod:`fairdd.debias`, :mod:`fairdd.distill.embedding`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "FORWARD_WEIGHT",
    "KINDS",
    "Network",
    "Work",
    "cell_cost",
    "distillation",
    "embedding_dd",
    "evaluation",
    "kd",
    "attribute_groups",
    "price",
    "probe",
    "standard",
    "train_size",
]

KINDS = ("train", "forward")
#: Weight of a forward-only sample-pass against a training one (forward + backward).
FORWARD_WEIGHT = 1.0 / 3.0


@dataclass(frozen=True)
class Network:
    """A network as work is counted: a :class:`fairdd.models.NetworkSpec` (``spec``), the embedding
    study's MLP (``hidden`` widths, :class:`fairdd.models.MLP`), its adversary
    (``discriminator_units``, :class:`fairdd.debias.Discriminator`) or a text network (``text``, a
    :class:`fairdd.kd.TextNetworkSpec`)."""

    spec: Any = None
    hidden: tuple[int, ...] | None = None
    discriminator_units: int | None = None
    text: Any = None

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.spec, self.hidden, self.discriminator_units, self.text)) != 1:
            raise ValueError("a Network is exactly one of spec=, hidden=, discriminator_units= or text=")

    @property
    def label(self) -> str:
        if self.text is not None:
            layers = "all" if self.text.layers is None else "-".join(map(str, self.text.layers))
            return f"text-{Path(self.text.source).name}-layers-{layers}"
        if self.spec is not None:
            s = self.spec
            if s.model != "convnet":
                return s.model
            extra = "".join(f"-{v}" for v, d in ((s.activation, "relu"), (s.pooling, "avgpooling")) if v != d)
            return f"convnet-{s.width}x{s.depth}-{s.norm}{extra}"
        if self.hidden is not None:
            return "mlp-" + "-".join(map(str, self.hidden)) + "-tanh"
        return f"discriminator-{self.discriminator_units}"

    def build(self, input_shape: Sequence[int], num_classes: int, *, seed: int = 0) -> torch.nn.Module:
        """A fresh network for ``input_shape`` (``(C, H, W)`` or ``(D,)``) and ``num_classes`` outputs."""
        if self.text is not None:
            return self.text.build(int(input_shape[0]), num_classes, seed=seed)
        if self.spec is not None:
            if len(input_shape) == 3:
                return self.spec.build(input_shape[0], num_classes, input_shape[-1], seed=seed)
            return self.spec.build(int(math.prod(input_shape)), num_classes, None, seed=seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if self.hidden is not None:
                from fairdd.models import MLP

                return MLP(int(math.prod(input_shape)), num_classes, hidden=self.hidden)
            from fairdd.debias import Discriminator

            return Discriminator(int(math.prod(input_shape)), num_classes, units=self.discriminator_units)


@dataclass(frozen=True)
class Work:
    """Minibatch steps of one kind on one network: ``steps`` steps of ``batch`` samples.

    Attributes
    ----------
    component : what the steps are part of (``"evaluation"``, ``"distillation:dm"``,
        ``"mtt:experts"``, ``"kd:student"``, ``"standard"``, ...).
    network, input_shape, num_classes : what is trained (or run forward), on which inputs.
    steps, batch : minibatch steps and samples per step.
    kind : ``"train"`` (forward, backward and optimiser step) or ``"forward"`` (no gradients).
    aug : per-batch augmentation in the step: ``"none"``, ``"dsa"`` or ``"crop"`` (KD).
    passes : the samples the steps see when that is not ``steps × batch`` (an epoch's last,
        smaller minibatch); ``None``: ``steps × batch``. :attr:`sample_passes` weighs it.
    networks : networks a batched path may stack (an evaluation's networks).
    batched : the options of the batched path the study offers for these steps
        (``(compile, channels_last, precision)`` of the evaluation, or ``()`` for KD's
        students); ``None``: none offered.
    together : cells whose items of one component and key the study trains side by side;
        ``None``: none.
    shared : work several cells share, counted once per key (see the module notes); ``None``: the
        cell's own.
    note : how the steps are counted.
    """

    component: str
    network: Network
    input_shape: tuple[int, ...]
    num_classes: int
    steps: int
    batch: int
    kind: str = "train"
    aug: str = "none"
    passes: float | None = None
    networks: int = 1
    batched: tuple | None = None
    together: Hashable | None = None
    shared: Hashable | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind={self.kind!r} must be one of {KINDS}")
        if self.batch < 1 or self.steps < 0 or (self.passes is not None and self.passes < 0):
            raise ValueError(f"batch={self.batch}, steps={self.steps}, passes={self.passes}: invalid")
        object.__setattr__(self, "input_shape", tuple(int(v) for v in self.input_shape))

    @property
    def sample_passes(self) -> float:
        """The work in training sample-passes: a forward-only pass weighs :data:`FORWARD_WEIGHT`."""
        seen = self.steps * self.batch if self.passes is None else self.passes
        return float(seen) * (FORWARD_WEIGHT if self.kind == "forward" else 1.0)


def _work(component: str, network: Network, shape: Sequence[int], classes: int, *, batch: int, steps: int,
          **options: Any) -> Work:
    return Work(component, network, tuple(shape), int(classes), steps=int(steps), batch=max(1, int(batch)), **options)


# ----------------------------------------------------------------------------- the price


@functools.lru_cache(maxsize=256)
def _macs(network: Network, shape: tuple[int, ...], classes: int) -> float:
    """Multiply-accumulates of one sample's forward pass, counted on the built network (its
    ``Conv2d`` and ``Linear`` layers). A text network is not built (it may need a download): its
    price is a fixed 2·10⁷ per sample (a small transformer on a short text)."""
    if network.text is not None:
        return 2e7
    model = network.build(shape, classes)
    total = [0.0]

    def hook(module: torch.nn.Module, inputs: Any, output: torch.Tensor) -> None:
        if isinstance(module, torch.nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            total[0] += output[0].numel() * k
        elif isinstance(module, torch.nn.Linear):
            total[0] += module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    try:
        with torch.no_grad():
            model.eval()
            model(torch.zeros(1, *shape))
    finally:
        for h in handles:
            h.remove()
    return max(total[0], 1.0)


def price(work: Work) -> float:
    """A rough relative price of ``work``: its sample-passes × the network's multiply-accumulates
    per sample (a training pass costs about three forwards: :data:`FORWARD_WEIGHT` is in the
    sample-passes). Only for ordering cells; the projection measures seconds instead."""
    return float(work.sample_passes) * 3.0 * _macs(work.network, work.input_shape, work.num_classes)


def cell_cost(works: Iterable[Work]) -> float:
    """The skeleton's cost of a cell: the :func:`price` of its own work (shared work, computed by
    the study's ``prepare`` before the cells, left out)."""
    return sum(price(w) for w in works if w.shared is None)


# -------------------------------------------------------------------------------- data


@functools.lru_cache(maxsize=32)
def train_size(data: Any) -> tuple[int, tuple[int, ...], int]:
    """``(n, per-sample shape, classes)`` of a :class:`fairdd.data.StudyData`'s training split as
    the studies read it: :meth:`~fairdd.data.StudyData.load`'s, or for a spec with a bias the
    source's (subset) size and the shape :func:`fairdd.data.make_biased` gives (built on 20 images).
    Cached per process."""
    if data.bias is None:
        train = data.load()[0]
        return len(train), tuple(train.inputs.shape[1:]), train.num_classes
    from fairdd.data import make_biased, source_images

    train, _ = source_images(data)
    few = train.subset(torch.arange(min(20, len(train))))
    shape = tuple(make_biased(few, kind=data.bias.kind, bias_ratio=0.5, severity=data.bias.severity, seed=0).inputs.shape[1:])
    return len(train), shape, train.num_classes


def attribute_groups() -> int:
    """The attribute groups of a biased data set (:data:`fairdd.data.NUM_ATTRIBUTES`): FairDD's
    synchronized matching takes one real gradient per group."""
    from fairdd.data import NUM_ATTRIBUTES

    return int(NUM_ATTRIBUTES)


# ------------------------------------------------------------------------------ builders


def evaluation(evaluation: Any, n: int, shape: Sequence[int], classes: int, *, component: str = "evaluation",
               networks: int | None = None, note: str = "") -> list[Work]:
    """``num_networks`` (or ``networks``) fresh networks trained on a set of ``n`` by ``evaluation``
    (a :class:`fairdd.evaluate.EvalConfig`): ``networks × epochs × ⌈n / batch_size⌉`` steps."""
    networks = evaluation.num_networks if networks is None else networks
    bs = evaluation.batch_size
    return [_work(component, Network(spec=evaluation.network), shape, classes, aug="dsa" if evaluation.dsa else "none",
                  batch=min(bs, n), steps=networks * evaluation.epochs * math.ceil(n / bs),
                  passes=float(networks * evaluation.epochs * n), networks=networks,
                  batched=(evaluation.compile, evaluation.channels_last, evaluation.precision),
                  note=note or "num_networks × epochs × ⌈n / batch_size⌉")]


def distillation(method: str, cfg: Any, *, n: int, shape: Sequence[int], classes: int, ipc: int, data_key: Any,
                 groups: int | None = None) -> list[Work]:
    """One distillation of ``ipc`` images per class with ``cfg`` (DC/DSA, DM or MTT) from a training
    set of ``n``; MTT's expert trajectories are shared per ``data_key`` and expert settings.

    - DC/DSA per iteration: ``outer_loop × K`` real-gradient steps at ``batch_real`` (× the
      attribute groups for FairDD's synchronized matching), ``2 × outer_loop × K`` synthetic
      steps at ``ipc``, ``(outer_loop − 1) × inner_loop × ⌈K·ipc / batch_train⌉`` inner steps;
    - DM per iteration: ``K`` forward steps of the real batch and one step of ``K·ipc`` images;
    - MTT per iteration: ``2 × syn_steps`` steps at ``batch_syn``, plus the experts.
    """
    from fairdd.distill import DCConfig, DMConfig, MTTConfig

    k, it = classes, cfg.iterations
    net = Network(spec=cfg.network)
    aug = "dsa" if cfg.augment else "none"
    real = min(getattr(cfg, "batch_real", 1), max(1, n // k))
    component = f"distillation:{method}"
    out: list[Work] = []
    if isinstance(cfg, DCConfig):
        outer, inner = cfg.loops_for(ipc)
        per_group = groups if cfg.matching == "synchronized" else 1
        out.append(_work(component, net, shape, classes, aug=aug, batch=real, steps=it * outer * k * per_group,
                         note="real gradients: iterations × outer_loop × K"
                         + (" × attribute groups (synchronized)" if per_group > 1 else "")))
        out.append(_work(component, net, shape, classes, aug=aug, batch=ipc, steps=2 * it * outer * k,
                         note="synthetic gradients (create_graph) and the image backward: 2 × iterations × outer_loop × K"))
        inner_steps = it * (outer - 1) * inner * math.ceil(k * ipc / cfg.batch_train)
        if inner_steps:
            out.append(_work(component, net, shape, classes, aug=aug, batch=min(cfg.batch_train, k * ipc),
                             steps=inner_steps, passes=float(it * (outer - 1) * inner * k * ipc),
                             note="inner loop: iterations × (outer_loop − 1) × inner_loop × ⌈K·ipc / batch_train⌉"))
        if cfg.network.norm == "batchnorm":
            out.append(_work(component, net, shape, classes, kind="forward", batch=k * cfg.bn_images_per_class,
                             steps=it * outer, note="BatchNorm statistics: iterations × outer_loop"))
    elif isinstance(cfg, DMConfig):
        out.append(_work(component, net, shape, classes, kind="forward", aug=aug, batch=real, steps=it * k,
                         note="real embeddings: iterations × K"))
        out.append(_work(component, net, shape, classes, aug=aug, batch=k * ipc, steps=it,
                         note="synthetic embeddings and the image backward: iterations"))
    elif isinstance(cfg, MTTConfig):
        batch_syn = k * ipc if cfg.batch_syn is None else min(cfg.batch_syn, k * ipc)
        out.append(_work(component, net, shape, classes, aug=aug, batch=batch_syn, steps=2 * it * cfg.syn_steps,
                         note="unrolled student: 2 × iterations × syn_steps"))
        out += _experts(cfg, n=n, shape=shape, classes=classes, data_key=data_key)
    else:
        raise TypeError(f"no work rule for distillation config {type(cfg).__name__}")
    return out


def _experts(cfg: Any, *, n: int, shape: Sequence[int], classes: int, data_key: Any) -> list[Work]:
    """MTT's expert trajectories: ``num_experts × expert_train_epochs × ⌈epoch size /
    expert_batch⌉`` steps, shared per data set and expert settings (the expert cache's key)."""
    from fairdd.distill import mtt

    fields = getattr(mtt, "_EXPERT_FIELDS", ("network", "expert_train_epochs", "expert_lr", "expert_batch",
                                             "expert_epoch_size", "expert_augment", "expert_seed"))
    key = ("mtt:experts", data_key, tuple(getattr(cfg, f) for f in fields))
    count = cfg.num_experts
    per_epoch = n if cfg.expert_epoch_size is None else min(n, cfg.expert_epoch_size)
    return [_work("mtt:experts", Network(spec=cfg.network), shape, classes, aug="dsa" if cfg.expert_augment else "none",
                  batch=min(cfg.expert_batch, per_epoch),
                  steps=count * cfg.expert_train_epochs * math.ceil(per_epoch / cfg.expert_batch),
                  passes=float(count * cfg.expert_train_epochs * per_epoch), shared=key,
                  note="num_experts × expert_train_epochs × ⌈epoch size / expert_batch⌉, once per expert set")]


def probe(spec: Any, n: int, shape: Sequence[int], classes: int) -> list[Work]:
    """The attribute probe of a :class:`fairdd.probe.ProbeSpec`: one network × epochs ×
    ⌈n / batch_size⌉, shared by every cell that reads it."""
    t = spec.training
    return [_work("probe", Network(spec=t.network), shape, classes, aug="dsa" if t.dsa else "none",
                  batch=min(t.batch_size, n), steps=t.epochs * math.ceil(n / t.batch_size),
                  passes=float(t.epochs * n), shared=("probe", spec),
                  note="attribute probe: 1 network × epochs × ⌈n / batch_size⌉, once per probe")]


def kd(role: str, cfg: Any, seed: int, *, n: int, shape: Sequence[int], classes: int, data_key: Any,
       together: Hashable | None = None) -> list[Work]:
    """One KD cell (:mod:`fairdd.kd`): its teacher (shared per data set and
    :meth:`fairdd.kd.KDConfig.teacher_spec`), the student (``epochs × ⌈n / batch_size⌉``) and the
    teacher's outputs it reads — a forward per augmented student batch, or the teacher's logits
    once per teacher without augmentation. ``together``: the key of the students the study trains
    side by side (:func:`fairdd.kd.fit_many`: one stacked step, one teacher pass over every
    student's batch)."""
    from fairdd.models import NetworkSpec

    def network(spec: Any) -> Network:
        return Network(spec=spec) if isinstance(spec, NetworkSpec) else Network(text=spec)

    images = len(shape) == 3
    aug = "crop" if (cfg.augment and images) else "none"
    steps, batch = cfg.epochs * math.ceil(n / cfg.batch_size), min(cfg.batch_size, n)
    spec = cfg.teacher_spec(seed)
    teacher = network(cfg.teacher)
    out = [_work("kd:teacher", teacher, shape, classes, aug=aug, batch=batch, steps=steps,
                 passes=float(cfg.epochs * n), shared=("kd:teacher", data_key, spec),
                 note="epochs × ⌈n / batch_size⌉, once per teacher")]
    if role == "teacher":
        return out
    batched = () if together is not None else None
    out.append(_work("kd:student", network(cfg.student), shape, classes, aug=aug, batch=batch, steps=steps,
                     passes=float(cfg.epochs * n), batched=batched, together=together,
                     note=f"{'distilled' if cfg.alpha > 0 else 'hard-label'} student: epochs × ⌈n / batch_size⌉"))
    if cfg.alpha > 0 and cfg.augment and images:
        out.append(_work("kd:teacher-forward", teacher, shape, classes, kind="forward", batch=batch, steps=steps,
                         batched=batched, together=together,
                         note="the teacher on each augmented student batch: the student's steps; side by side one "
                              "pass over all students' batches"))
    elif cfg.alpha > 0:
        eb = cfg.eval_batch_size
        out.append(_work("kd:teacher-logits", teacher, shape, classes, kind="forward", batch=min(eb, n),
                         steps=math.ceil(n / eb), shared=("kd:teacher-logits", data_key, spec),
                         note="the teacher's logits on the training set: ⌈n / eval_batch_size⌉, once per teacher"))
    return out


def standard(cfg: Any, *, n: int, shape: Sequence[int], classes: int, groups: int, bteo_share: float) -> list[Work]:
    """A STANDARD baseline (:func:`fairdd.debias.train_standard`): at most ``epochs × ⌈n_fit /
    batch_size⌉`` steps on the rows left after the validation split (BTEO: their balanced share),
    one validation forward per epoch, ADV's discriminator step and forward per minibatch."""
    mlp = Network(hidden=tuple(cfg.hidden))
    disc = Network(discriminator_units=cfg.adv_units)
    hidden_shape = (cfg.hidden[-1],)
    fit, val = n, 0
    if cfg.patience is not None:
        val = max(1, int(round(cfg.validation_fraction * n)))
        fit = n - val
    if cfg.debias == "bteo":
        fit = max(1, int(fit * bteo_share))
    steps = cfg.epochs * math.ceil(fit / cfg.batch_size)
    batch = min(cfg.batch_size, fit)
    out = [_work("standard", mlp, shape, classes, batch=batch, steps=steps, passes=float(cfg.epochs * fit),
                 note="at most epochs × ⌈n_fit / batch_size⌉")]
    if val:
        out.append(_work("standard", mlp, shape, classes, kind="forward", batch=val, steps=cfg.epochs,
                         note="validation loss: one per epoch"))
    if cfg.debias == "adv":
        out.append(_work("standard", disc, hidden_shape, groups, batch=batch, steps=steps,
                         passes=float(cfg.epochs * fit), note="ADV discriminator step: one per minibatch"))
        out.append(_work("standard", disc, hidden_shape, groups, kind="forward", batch=batch, steps=steps,
                         note="ADV discriminator in the classifier's loss: one per minibatch"))
    return out


def embedding_dd(cfg: Any, *, n: int, shape: Sequence[int], classes: int, groups: int, bteo_share: float) -> list[Work]:
    """Embedding DD (:func:`fairdd.distill.embedding.distill_embeddings`) and the retraining: per
    outer step ``2 × size × distill_epochs`` unrolled MLP steps at one vector per class and one
    step at the real minibatch (ADV: a discriminator step and forward); the replay ``size ×
    distill_epochs`` steps."""
    mlp = Network(hidden=tuple(cfg.hidden))
    disc = Network(discriminator_units=cfg.adv_units)
    hidden_shape = (cfg.hidden[-1],)
    t = cfg.unrolled_steps
    real = min(cfg.batch_size, int(n * bteo_share) if cfg.debias == "bteo" else n)
    out = [
        _work("distillation:embedding", mlp, shape, classes, batch=classes, steps=2 * t * cfg.iterations,
              note="unroll: 2 × iterations × size·distill_epochs, one vector per class"),
        _work("distillation:embedding", mlp, shape, classes, batch=real, steps=cfg.iterations,
              note="outer loss on the real minibatch: iterations"),
    ]
    if cfg.debias == "adv":
        out.append(_work("distillation:embedding", disc, hidden_shape, groups, batch=real, steps=cfg.iterations,
                         note="ADV discriminator step: iterations"))
        out.append(_work("distillation:embedding", disc, hidden_shape, groups, kind="forward", batch=real,
                         steps=cfg.iterations, note="ADV discriminator in the outer loss: iterations"))
    out.append(_work("retrain", mlp, shape, classes, batch=classes, steps=t, note="replay: size·distill_epochs"))
    return out
