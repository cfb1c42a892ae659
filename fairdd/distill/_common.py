"""Machinery shared by the image-distillation methods (DC, DSA, DM, MTT).

One call, :func:`distill`, turns a training :class:`~fairdd.data.Dataset` and a method config
into a :class:`SyntheticSet`. The pieces every method needs live here:

* :class:`DistillConfig` is the base of every method config: the network
  (:class:`~fairdd.models.NetworkSpec`) and the fields all methods share, validated once;
* :func:`make_sampler` builds the :class:`fairdd.data.RealSampler` (real images per class,
  uniformly as the reference, balanced over the protected-attribute groups of each class, or by
  caller-given per-sample weights) a config's ``real_sampling`` asks for;
* :func:`seeded_model` builds a freshly initialised network from a seed drawn from the run's
  generator, so network inits are reproducible;
* :func:`optimise` runs the iteration loop with tqdm progress and atomic checkpoints from which
  a killed run resumes to bit-identical results on CPU; it keeps the losses on the device and
  reads them back only at checkpoint boundaries (no host sync per iteration);
  :func:`optimise_runs` is the same loop for several runs computed side by side (DM's seeds).

Randomness: every draw (initial images, real batches, network inits, augmentation, expert
choice) goes through one ``torch.Generator`` on the CPU seeded with ``seed``
(:func:`fairdd.seeding.generator`); its state is part of every checkpoint.

The table of methods (name → config class, run function, profile configs) and the one call
:func:`~fairdd.distill.distill` are in ``fairdd.distill._methods``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from tqdm import tqdm  # plain text bars: the notebooks have no ipywidgets

from fairdd.augment import DEFAULT_STRATEGY, DSAParams, check_dsa
from fairdd.config import check_choice, check_int, check_number
from fairdd.data import REAL_SAMPLINGS, Dataset, RealSampler, RealSampling
from fairdd.models import IMAGE_MODELS, NetworkSpec
from fairdd.results import canonical_config, load_cache, save_checkpoint
from fairdd.seeding import draw_seed
from fairdd.training import to_device

__all__ = [
    "DistillConfig",
    "Init",
    "SyntheticSet",
    "evaluation_config",
    "optimise",
    "optimise_runs",
    "seeded_model",
    "study_profile",
]

Init = Literal["real", "noise"]
INITS: tuple[str, ...] = ("real", "noise")

# Callback invoked after every finished iteration: (iterations done, that iteration's loss).
Callback = Callable[[int, float], None]


@dataclass(frozen=True)
class SyntheticSet:
    """The result of a distillation.

    Attributes
    ----------
    images : ``(N, C, H, W)`` float32 synthetic images, in the (normalised) space of the input,
        on the CPU; ``N = num_classes * images_per_class``, class-major order.
    labels : ``(N,)`` int64 class of each image: ``[0]*ipc + [1]*ipc + ...``.
    learning_rate : the learned synthetic step size (MTT), to train evaluation networks with;
        ``None`` for methods that do not learn one.
    losses : the matching loss of every distillation iteration, in order.
    method : ``"dc"``, ``"dsa"``, ``"dm"`` or ``"mtt"``.
    images_per_class, seed : what the run was asked for.
    config : the method config that produced the set.
    """

    images: torch.Tensor
    labels: torch.Tensor
    learning_rate: float | None
    losses: tuple[float, ...]
    method: str
    images_per_class: int
    seed: int
    config: Any

    @property
    def network(self) -> NetworkSpec:
        """The distillation network (``config.network``)."""
        return self.config.network

    def evaluation_config(self, **overrides: Any) -> Any:
        """:func:`evaluation_config` of the config that produced this set."""
        return evaluation_config(self.config, **overrides)


# --------------------------------------------------------------------------- validation


@dataclass(frozen=True, kw_only=True)
class DistillConfig:
    """What every image-distillation method config has; DC/DSA, DM and MTT extend it.

    Each method sets its own defaults (the reference's) and validates its own fields after
    calling ``super().__post_init__()``; a bad value raises ``ValueError`` naming the field.

    Attributes
    ----------
    network : the network distilled through (reference ConvNet-128-3, instance norm), see
        :class:`fairdd.models.NetworkSpec`; an image network (not the MLP).
    iterations : distillation iterations (image updates or outer steps; per method).
    lr_img : SGD learning rate of the synthetic images.
    momentum_img : its momentum (reference 0.5, hard-coded in every reference script).
    init : initial synthetic images, ``"real"`` (random real images of the class) or
        ``"noise"`` (N(0, 1)).
    real_sampling : how real images are drawn per class, see :class:`fairdd.data.RealSampler`
        (``"uniform"`` as the references, or ``"group_balanced"``).
    augment : differentiable siamese augmentation (DSA) on (per method: DSA/DM/MTT yes, DC no).
    dsa_strategy : DSA families, ``_``-joined (reference ``color_crop_cutout_flip_scale_rotate``;
        ``fairdd.augment.DIGITS_STRATEGY`` for digits). Used only with ``augment`` (and by
        MTT's experts with ``expert_augment``).
    dsa_params : the DSA constants (reference ``ParamDiffAug``).
    checkpoint_every : iterations between checkpoints (when a ``checkpoint_dir`` is given).
    """

    network: NetworkSpec = field(default_factory=NetworkSpec)
    iterations: int
    lr_img: float
    momentum_img: float = 0.5
    init: Init
    real_sampling: RealSampling = "uniform"
    augment: bool
    dsa_strategy: str = DEFAULT_STRATEGY
    dsa_params: DSAParams = field(default_factory=DSAParams)
    checkpoint_every: int

    def __post_init__(self) -> None:
        if not isinstance(self.network, NetworkSpec):
            raise ValueError(f"network={self.network!r} must be a fairdd.models.NetworkSpec")
        check_choice("network.model", self.network.model, IMAGE_MODELS)
        check_int("iterations", self.iterations, minimum=1)
        check_number("lr_img", self.lr_img, minimum=0.0, strict_minimum=True)
        check_number("momentum_img", self.momentum_img, minimum=0.0, maximum=1.0)
        check_choice("init", self.init, INITS)
        check_choice("real_sampling", self.real_sampling, REAL_SAMPLINGS)
        check_int("checkpoint_every", self.checkpoint_every, minimum=1)
        if not isinstance(self.augment, bool):
            raise ValueError(f"augment={self.augment!r} must be a bool")
        check_dsa(self.dsa_strategy, self.dsa_params)

    @property
    def method(self) -> str:
        """The method's name in :data:`fairdd.distill.METHODS`."""
        raise NotImplementedError


def check_images_per_class(value: Any) -> None:
    check_int("images_per_class", value, minimum=1)


# --------------------------------------------------------------------------- real sampling


def make_sampler(train: Dataset, cfg: DistillConfig, sample_weights: torch.Tensor | None) -> RealSampler:
    return RealSampler(
        train.labels,
        train.num_classes,
        mode=cfg.real_sampling,
        attributes=train.attributes,
        weights=sample_weights,
    )


def initial_images(
    train: Dataset,
    sampler: RealSampler,
    init: str,
    images_per_class: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """``(K*ipc, C, H, W)`` starting images: random real ones per class, or N(0, 1) noise."""
    k = train.num_classes
    shape = (k * images_per_class, *train.inputs.shape[1:])
    if init == "noise":
        return torch.randn(shape, generator=generator)
    too_small = [c for c in range(k) if sampler.class_size(c) < images_per_class]
    if too_small and sampler.mode != "group_balanced":
        raise ValueError(
            f"init='real' needs images_per_class={images_per_class} real images per class; "
            f"classes {too_small} have fewer"
        )
    idx = torch.cat([sampler.sample(c, images_per_class, generator) for c in range(k)])
    return train.inputs[idx.to(train.inputs.device)].detach().cpu().float().clone()


def synthetic_labels(num_classes: int, images_per_class: int) -> torch.Tensor:
    """``(K*ipc,)`` labels in class-major order ``[0,..,0, 1,..,1, ...]``."""
    return torch.arange(num_classes).repeat_interleave(images_per_class)


# --------------------------------------------------------------------------- models


def seeded_model(cfg: DistillConfig, train: Dataset, generator: torch.Generator, device: torch.device) -> nn.Module:
    """A freshly initialised ``cfg.network`` for ``train``'s shape, its init seed drawn from
    ``generator`` (:func:`fairdd.seeding.draw_seed`).

    :func:`fairdd.models.build_model` initialises under that seed inside ``fork_rng``, so the
    network is reproducible and the global RNG is left untouched. On CUDA the parameters travel
    through pinned memory without a host sync (:func:`to_device`); on the CPU this is
    ``net.to(device)``.
    """
    seed = draw_seed(generator)
    net = cfg.network.build(train.inputs.shape[1], train.num_classes, train.inputs.shape[-1], seed=seed)
    if torch.device(device).type == "cuda":
        # What Module.to does (``_apply`` of a tensor conversion), with the non-blocking copy.
        return net._apply(lambda t: to_device(t, device))
    return net.to(device)


def has_batchnorm(net: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


def resolve_device(device: torch.device | str | None, train: Dataset) -> torch.device:
    if device is None:
        return train.inputs.device
    return torch.device(device)


# --------------------------------------------------------------------------- checkpoints


def fingerprint(cfg: DistillConfig, train: Dataset, images_per_class: int, seed: int) -> str:
    """A short hash naming what a checkpoint belongs to; resuming a different run is refused."""
    payload = {
        "config": canonical_config(cfg),
        "data": [train.name, train.split, len(train), list(train.inputs.shape[1:]), train.num_classes],
        "ipc": images_per_class,
        "seed": seed,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def runs_fingerprint(cfg: DistillConfig, train: Dataset, images_per_class: int, seeds: Sequence[int]) -> str:
    """:func:`fingerprint` of several runs computed side by side (one per seed, in order): a
    checkpoint of other seeds, another order, or of a single run is refused."""
    payload = ["side by side", [fingerprint(cfg, train, images_per_class, s) for s in seeds]]
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:16]


def _checkpoint_file(checkpoint_dir: str | Path) -> Path:
    return Path(checkpoint_dir) / "distill.pt"


def check_checkpoint_dir(checkpoint_dir: str | Path) -> Path:
    """Create ``checkpoint_dir`` and make sure a checkpoint can be written there, before any work.

    Raises ``ValueError`` for a path that is a file, ``PermissionError`` for a folder that
    cannot be written.
    """
    path = Path(checkpoint_dir)
    if path.exists() and not path.is_dir():
        raise ValueError(f"checkpoint_dir={str(checkpoint_dir)!r} is a file, not a folder; pass a folder path")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise PermissionError(
            f"checkpoint_dir={str(checkpoint_dir)!r} cannot be written ({type(exc).__name__}: {exc}); "
            "pass a writable folder"
        ) from exc
    return path


LossValue = float | torch.Tensor


def _as_floats(values: Sequence[LossValue], divisor: int) -> list[float]:
    """The pending losses as Python floats, each ``float(value) / divisor``.

    0-dim tensors are stacked and copied to the host in one transfer; ``tolist`` gives the same
    Python float as ``.item()`` (the float32 value widened exactly), and the division happens
    afterwards in double precision, so the result is ``loss.item() / divisor`` bit for bit.
    """
    if not values:
        return []
    if all(isinstance(v, torch.Tensor) for v in values):
        floats = torch.stack([v.detach().reshape(()) for v in values]).cpu().tolist()  # type: ignore[union-attr]
    else:
        floats = [float(v) for v in values]
    return [f / divisor for f in floats]


def _restore(
    checkpoint_dir: str | Path,
    run_id: str,
    tensors: Mapping[str, torch.Tensor],
    optimizers: Mapping[str, torch.optim.Optimizer],
) -> dict[str, Any] | None:
    """Load the checkpoint in ``checkpoint_dir`` (``None``: there is none, or it was damaged —
    then it is moved aside with a warning naming it, and the run starts again) into ``tensors``
    and ``optimizers``; refuse one of another run. The caller restores its generators and losses."""
    saved = load_cache(_checkpoint_file(checkpoint_dir))
    if saved is None:
        return None
    if saved["run_id"] != run_id:
        raise ValueError(
            f"checkpoint_dir={str(checkpoint_dir)!r} holds a checkpoint of another run "
            f"({saved['run_id']}, this run is {run_id}); use a fresh folder"
        )
    with torch.no_grad():
        for name, t in tensors.items():
            t.copy_(saved["tensors"][name])
    for name, opt in optimizers.items():
        opt.load_state_dict(saved["optimizers"][name])
    return saved


def _save(
    checkpoint_dir: str | Path | None,
    run_id: str,
    done: int,
    tensors: Mapping[str, torch.Tensor],
    optimizers: Mapping[str, torch.optim.Optimizer],
    **state: Any,
) -> None:
    """Write the checkpoint of a run (or of runs side by side) after ``done`` iterations: the
    ``tensors`` and ``optimizers`` :func:`_restore` reads back, and the caller's ``state``
    (generator states, loss logs)."""
    save_checkpoint(
        _checkpoint_file(checkpoint_dir),  # type: ignore[arg-type]
        {
            "run_id": run_id,
            "iteration": done,
            "tensors": {k: v.detach().cpu().clone() for k, v in tensors.items()},
            "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
            **state,
        },
    )


def optimise(
    step: Callable[[int], LossValue],
    *,
    tensors: Mapping[str, torch.Tensor],
    optimizers: Mapping[str, torch.optim.Optimizer],
    generator: torch.Generator,
    iterations: int,
    checkpoint_dir: str | Path | None,
    checkpoint_every: int,
    run_id: str,
    progress: bool,
    callback: Callback | None,
    desc: str,
    loss_divisor: int = 1,
) -> list[float]:
    """Run ``step(iteration) -> loss`` for ``iterations`` iterations, resumably.

    The checkpoint holds ``tensors`` (the learned synthetic images and, for MTT, the step size),
    the ``optimizers``' states, the generator state, the iteration count and the loss log. It is
    written every ``checkpoint_every`` iterations and at the end; a finished checkpoint makes a
    rerun return at once. Each method draws everything an iteration needs (fresh network, real
    batches, augmentation) from ``generator`` inside ``step``, so the state at an iteration
    boundary is exactly what is saved, and a resumed run continues bit for bit (CPU).

    No host synchronisation per iteration: ``step`` may return its loss as a 0-dim tensor
    (possibly on the GPU), which is kept pending and turned into a Python float only every
    ``checkpoint_every`` iterations (whether or not checkpoints are written) and at the end, all
    pending ones in one transfer. Only with a ``callback`` or with ``progress`` on is every
    iteration's loss converted at once (the callback and the bar need it; that synchronises).
    A step may also return a float (DC, DSA, MTT do).

    Parameters
    ----------
    loss_divisor : the logged loss is ``float(loss) / loss_divisor``, divided after the
        conversion, in double precision: ``loss.item() / k`` exactly, as DM logs it (dividing the
        float32 tensor first, ``(loss / k).item()``, would round differently).

    Returns
    -------
    The loss of every iteration (restored ones included).
    """
    losses: list[float] = []
    start = 0
    if checkpoint_dir is not None:
        saved = _restore(checkpoint_dir, run_id, tensors, optimizers)
        if saved is not None:
            generator.set_state(saved["generator"])
            losses = list(saved["losses"])
            start = int(saved["iteration"])

    def checkpoint(done: int) -> None:
        _save(checkpoint_dir, run_id, done, tensors, optimizers, generator=generator.get_state(), losses=losses)

    eager = callback is not None or progress
    pending: list[LossValue] = []
    with tqdm(total=iterations, initial=start, disable=not progress, desc=desc, leave=False) as bar:
        for it in range(start, iterations):
            value = step(it)
            pending.append(value.detach() if isinstance(value, torch.Tensor) else value)
            done = it + 1
            boundary = done % checkpoint_every == 0 or done == iterations
            if eager or boundary:
                losses.extend(_as_floats(pending, loss_divisor))
                pending.clear()
            if checkpoint_dir is not None and boundary:
                checkpoint(done)
            bar.update(1)
            if eager:
                bar.set_postfix(loss=f"{losses[-1]:.4g}", refresh=False)
            if callback is not None:
                callback(done, losses[-1])
    return losses


# Callback of runs side by side: (iterations done, that iteration's loss of every run, in order).
RunsCallback = Callable[[int, tuple[float, ...]], None]


def optimise_runs(
    step: Callable[[int], torch.Tensor],
    *,
    tensors: Mapping[str, torch.Tensor],
    optimizers: Mapping[str, torch.optim.Optimizer],
    generators: Sequence[torch.Generator],
    iterations: int,
    checkpoint_dir: str | Path | None,
    checkpoint_every: int,
    run_id: str,
    progress: bool,
    callback: RunsCallback | None,
    desc: str,
    loss_divisor: int = 1,
) -> list[list[float]]:
    """:func:`optimise` for ``R`` runs computed side by side in one ``step``.

    ``step(iteration)`` returns an ``(R,)`` tensor, the loss of every run; run r's log gets
    ``float(loss[r]) / loss_divisor`` (``loss[r].item() / loss_divisor`` exactly). Each run has
    its own generator (``generators[r]``); the checkpoint holds ``tensors`` (stacked over the
    runs), the ``optimizers``' states, every generator's state, the iteration count and every
    run's loss log, written every ``checkpoint_every`` iterations and at the end, atomically. A
    resumed run continues bit for bit (CPU); a checkpoint of another ``run_id`` is refused. As
    in :func:`optimise`, losses stay pending device tensors until a multiple of
    ``checkpoint_every`` or the end, unless a ``callback`` or ``progress`` needs them each
    iteration.

    Returns
    -------
    Per run, the loss of every iteration (restored ones included).
    """
    generators = list(generators)
    losses: list[list[float]] = [[] for _ in generators]
    start = 0
    if checkpoint_dir is not None:
        saved = _restore(checkpoint_dir, run_id, tensors, optimizers)
        if saved is not None:
            for g, state in zip(generators, saved["generators"], strict=True):
                g.set_state(state)
            losses = [list(log) for log in saved["losses"]]
            start = int(saved["iteration"])

    def checkpoint(done: int) -> None:
        _save(checkpoint_dir, run_id, done, tensors, optimizers, generators=[g.get_state() for g in generators],
              losses=losses)

    def flush() -> None:
        if pending:
            rows = torch.stack(pending).cpu().tolist()  # (iterations, R), one transfer
            pending.clear()
            for row in rows:
                for log, value in zip(losses, row, strict=True):
                    log.append(value / loss_divisor)

    eager = callback is not None or progress
    pending: list[torch.Tensor] = []
    with tqdm(total=iterations, initial=start, disable=not progress, desc=desc, leave=False) as bar:
        for it in range(start, iterations):
            pending.append(step(it).detach())
            done = it + 1
            boundary = done % checkpoint_every == 0 or done == iterations
            if eager or boundary:
                flush()
            if checkpoint_dir is not None and boundary:
                checkpoint(done)
            bar.update(1)
            if eager:
                last = tuple(log[-1] for log in losses)
                bar.set_postfix(loss=f"{sum(last) / len(last):.4g}", refresh=False)
                if callback is not None:
                    callback(done, last)
    return losses


LoopTable = tuple[tuple[int, int, int], ...]


def loop_table(value: Mapping[int, tuple[int, int]] | LoopTable) -> LoopTable:
    """Validate a loop table; return it as sorted ``((ipc, outer_loop, inner_loop), ...)``.

    Accepts the mapping ``{ipc: (outer_loop, inner_loop)}`` or the triples themselves. The
    triples are what the config stores: hashable, and JSON with no integer keys (the run
    store's config hash needs string keys in mappings).
    """
    if isinstance(value, Mapping):
        items = [(ipc, *pair) if isinstance(pair, (tuple, list)) else (ipc, pair) for ipc, pair in value.items()]
    elif isinstance(value, (tuple, list)):
        items = [tuple(t) if isinstance(t, (tuple, list)) else (t,) for t in value]
    else:
        raise ValueError(f"loops={value!r} must be a mapping {{ipc: (outer_loop, inner_loop)}}")
    if not items:
        raise ValueError("loops must not be empty")
    out: dict[int, tuple[int, int]] = {}
    for item in items:
        if len(item) != 3:
            raise ValueError(f"loops entry {item!r} must be (ipc, outer_loop, inner_loop)")
        ipc, outer, inner = item
        check_int("loops ipc", ipc, minimum=1)
        check_int(f"loops[{ipc}] outer_loop", outer, minimum=1)
        check_int(f"loops[{ipc}] inner_loop", inner, minimum=0)
        if ipc in out:
            raise ValueError(f"loops lists images_per_class={ipc} twice")
        out[ipc] = (outer, inner)
    return tuple((ipc, *out[ipc]) for ipc in sorted(out))


def study_profile(profile: str, method: str) -> ValueError:
    """The error of a method config asked for a reduced profile (``"cpu"``): a reduced protocol
    is a study's, which states its own configs (issue 21: profiles live in the studies); the
    method configs keep the reference (``"paper"``) and ``"smoke"`` (their unit tests)."""
    return ValueError(
        f"profile={profile!r}: a reduced protocol is a study's, not the method's; each study states its own "
        f"{method} config (e.g. fairdd.studies.methods.MethodsStudyConfig.for_profile({profile!r}).{method}). "
        "The method configs have 'paper' (the reference) and 'smoke' (their unit tests)"
    )


def evaluation_config(config: DistillConfig, **overrides: Any) -> Any:
    """The reference evaluation protocol for sets distilled with ``config``:
    :class:`fairdd.evaluate.EvalConfig` with the distillation network, and DSA during training
    exactly when the method used it (DSA, DM, MTT: on, 1000 epochs; DC: off, 300 epochs).
    ``overrides`` replace fields (e.g. ``epochs``, ``num_networks`` for a CPU profile;
    ``network=NetworkSpec(...)`` for another evaluation network). Known before distilling, so a
    study's cell can embed it."""
    from fairdd.evaluate import EvalConfig

    if not isinstance(config, DistillConfig):
        raise ValueError(f"config={config!r} must be a distillation config (fairdd.distill.DistillConfig)")
    fields: dict[str, Any] = {
        "network": config.network,
        "dsa": config.augment,
        "dsa_strategy": config.dsa_strategy,
        "dsa_params": config.dsa_params,
    }
    fields.update(overrides)
    return EvalConfig(**fields)
