"""Machinery shared by the image-distillation methods (DC, DSA, DM, MTT).

One call, :func:`distill`, turns a training :class:`~fairdd.data.Dataset` and a method config
into a :class:`SyntheticSet`. The pieces every method needs live here:

* :class:`RealSampler` draws real images per class, uniformly (the reference), balanced over
  the protected-attribute groups of each class, or by caller-given per-sample weights;
* :func:`seeded_model` builds a freshly initialised network from a seed drawn from the run's
  generator, so network inits are reproducible;
* :func:`optimise` runs the iteration loop with tqdm progress and atomic checkpoints from which
  a killed run resumes to bit-identical results on CPU.

Randomness: every draw (initial images, real batches, network inits, augmentation, expert
choice) goes through one ``torch.Generator`` on the CPU seeded with ``seed``; its state is part
of every checkpoint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from tqdm import tqdm  # plain text bars: the notebooks have no ipywidgets

from fairdd.augment import DSAParams, parse_strategy
from fairdd.config import check_choice, check_int, check_number, check_profile
from fairdd.data import Dataset
from fairdd.models import build_model
from fairdd.results import canonical_config, load_checkpoint, save_checkpoint

__all__ = [
    "Init",
    "RealSampling",
    "RealSampler",
    "SyntheticSet",
    "config_for",
    "distill",
    "optimise",
    "seeded_model",
]

Init = Literal["real", "noise"]
RealSampling = Literal["uniform", "group_balanced"]
INITS: tuple[str, ...] = ("real", "noise")
REAL_SAMPLINGS: tuple[str, ...] = ("uniform", "group_balanced")
METHODS: tuple[str, ...] = ("dc", "dsa", "dm", "mtt")
# The networks of fairdd.models that take images (all but the MLP).
IMAGE_MODELS: tuple[str, ...] = ("convnet", "alexnet", "lenet", "resnet20", "resnet56")

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
    def model_kwargs(self) -> dict[str, Any]:
        """Constructor arguments of the distillation network (for ``build_model``)."""
        if self.config.model == "convnet":
            return {"width": self.config.width, "depth": self.config.depth, "norm": self.config.norm}
        return {}

    def evaluation_config(self, **overrides: Any) -> Any:
        """The reference evaluation protocol for this set: :class:`fairdd.evaluate.EvalConfig`
        with the distillation network, and DSA during training exactly when the method used it
        (DSA, DM, MTT: on, 1000 epochs; DC: off, 300 epochs). ``overrides`` replace fields
        (e.g. ``epochs``, ``num_networks`` for a CPU profile)."""
        from fairdd.evaluate import EvalConfig

        fields: dict[str, Any] = {
            "model": self.config.model,
            "model_kwargs": self.model_kwargs,
            "dsa": self.config.augment,
            "dsa_strategy": self.config.dsa_strategy,
            "dsa_params": self.config.dsa_params,
        }
        fields.update(overrides)
        return EvalConfig(**fields)

    def as_dataset(self, like: Dataset) -> Dataset:
        """The synthetic set as a :class:`Dataset` with ``like``'s classes (no attributes)."""
        return Dataset(
            name=f"{like.name}-{self.method}-ipc{self.images_per_class}",
            split="train",
            inputs=self.images,
            labels=self.labels,
            classes=like.classes,
        )


# --------------------------------------------------------------------------- validation


def check_common(cfg: Any) -> None:
    """Validate the fields every method config shares; raise ``ValueError`` naming the field."""
    check_int("iterations", cfg.iterations, minimum=1)
    check_number("lr_img", cfg.lr_img, minimum=0.0, strict_minimum=True)
    check_number("momentum_img", cfg.momentum_img, minimum=0.0, maximum=1.0)
    check_choice("init", cfg.init, INITS)
    check_choice("real_sampling", cfg.real_sampling, REAL_SAMPLINGS)
    check_int("checkpoint_every", cfg.checkpoint_every, minimum=1)
    if not isinstance(cfg.augment, bool):
        raise ValueError(f"augment={cfg.augment!r} must be a bool")
    check_choice("model", cfg.model, IMAGE_MODELS)
    check_int("width", cfg.width, minimum=1)
    check_int("depth", cfg.depth, minimum=1)
    check_choice("norm", cfg.norm, ("instancenorm", "batchnorm", "layernorm", "groupnorm", "none"))


def check_dsa(cfg: Any) -> None:
    """Validate ``dsa_strategy`` and ``dsa_params`` (used when ``augment`` is on)."""
    try:
        parse_strategy(cfg.dsa_strategy)
    except ValueError as err:
        raise ValueError(f"dsa_strategy={cfg.dsa_strategy!r} is not allowed: {err}") from None
    if not isinstance(cfg.dsa_params, DSAParams):
        raise ValueError(f"dsa_params={cfg.dsa_params!r} must be a fairdd.augment.DSAParams")


def check_images_per_class(value: Any) -> None:
    check_int("images_per_class", value, minimum=1)


# --------------------------------------------------------------------------- real sampling


class RealSampler:
    """Draws real training images per class with an explicit generator.

    The class index lists are computed once; every draw is a handful of tensor ops per class
    (no per-sample Python).

    Parameters
    ----------
    labels : ``(N,)`` int64 class labels.
    num_classes : number of classes; every class must have at least one image.
    mode : ``"uniform"`` — per class, ``n`` images without replacement (all of them if the
        class has fewer), as the reference ``get_images``.
        ``"group_balanced"`` — per class, each protected-attribute group present in that class
        gets an equal share of the ``n`` draws (the remainder ``n mod G`` goes to randomly
        chosen groups); a group's share is drawn without replacement, and where the group has
        fewer images than its share the deficit is drawn with replacement (duplicates act as
        up-weighting). The image-data analogue of BTEO (balanced training by equal
        opportunity: per class, the same count from every group). Needs ``attributes``.
    attributes : ``(N,)`` int64 protected attribute; required by ``"group_balanced"``.
    weights : ``(N,)`` non-negative per-sample weights; overrides ``mode``. Per class, ``n``
        images are drawn without replacement with probability proportional to the weight
        (``torch.multinomial``); zero weight excludes an image (restriction), and a class draws
        at most as many images as it has positive weights. Every class needs one positive
        weight.
    """

    def __init__(
        self,
        labels: torch.Tensor,
        num_classes: int,
        *,
        mode: RealSampling = "uniform",
        attributes: torch.Tensor | None = None,
        weights: torch.Tensor | None = None,
    ) -> None:
        check_choice("real_sampling", mode, REAL_SAMPLINGS)
        labels = labels.detach().cpu().long()
        counts = torch.bincount(labels, minlength=num_classes)
        if counts.numel() > num_classes:
            raise ValueError(f"labels hold class {int(labels.max())}, but num_classes={num_classes}")
        empty = (counts == 0).nonzero().flatten().tolist()
        if empty:
            raise ValueError(f"classes {empty} have no training images; every class needs at least one")
        order = torch.argsort(labels, stable=True)
        self.num_classes = num_classes
        self.mode = mode if weights is None else "weighted"
        self.by_class: list[torch.Tensor] = list(torch.split(order, counts.tolist()))
        self._weights: list[torch.Tensor] | None = None
        self._groups: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] | None = None
        if weights is not None:
            weights = weights.detach().cpu().double()
            if weights.shape != labels.shape:
                raise ValueError(f"sample_weights has shape {tuple(weights.shape)}; expected {tuple(labels.shape)}")
            if not torch.isfinite(weights).all() or (weights < 0).any():
                raise ValueError("sample_weights must be finite and >= 0")
            self._weights = [weights[idx] for idx in self.by_class]
            zero = [c for c, w in enumerate(self._weights) if not (w > 0).any()]
            if zero:
                raise ValueError(f"sample_weights gives classes {zero} no positive weight")
        elif mode == "group_balanced":
            if attributes is None:
                raise ValueError("real_sampling='group_balanced' needs a data set with attributes; this one has none")
            attributes = attributes.detach().cpu().long()
            self._groups = []
            for idx in self.by_class:
                # Sort the class's indices by group so each group is a contiguous run.
                a = attributes[idx]
                g_order = torch.argsort(a, stable=True)
                _, gid, gcount = torch.unique(a[g_order], return_inverse=True, return_counts=True)
                starts = torch.cumsum(gcount, 0) - gcount
                self._groups.append((idx[g_order], gid, starts, gcount))

    def class_size(self, c: int) -> int:
        """How many images of class ``c`` can be drawn without replacement."""
        if self._weights is not None:
            return int((self._weights[c] > 0).sum())
        return int(self.by_class[c].numel())

    def sample(self, c: int, n: int, generator: torch.Generator) -> torch.Tensor:
        """Indices (into the data set) of ``n`` real images of class ``c``, shape ``(m,)``."""
        idx = self.by_class[c]
        if self._weights is not None:
            w = self._weights[c]
            m = min(n, int((w > 0).sum()))
            return idx[torch.multinomial(w, m, replacement=False, generator=generator)]
        if self._groups is not None:
            return self._sample_balanced(c, n, generator)
        return idx[torch.randperm(idx.numel(), generator=generator)[:n]]

    def _sample_balanced(self, c: int, n: int, generator: torch.Generator) -> torch.Tensor:
        idx, gid, starts, gcount = self._groups[c]  # type: ignore[index]
        n_groups = gcount.numel()
        share = torch.full((n_groups,), n // n_groups, dtype=torch.long)
        share[torch.randperm(n_groups, generator=generator)[: n % n_groups]] += 1
        take = torch.minimum(share, gcount)
        # Random order inside each group: sort by (group, uniform key); the position of an
        # element within its group's run is then its random rank.
        keys = gid.double() + torch.rand(idx.numel(), generator=generator, dtype=torch.float64)
        perm = torch.argsort(keys)
        rank = torch.arange(idx.numel()) - starts[gid]
        chosen = perm[rank < take[gid]]
        deficit = share - take
        if deficit.any():
            g = torch.repeat_interleave(torch.arange(n_groups), deficit)
            extra = starts[g] + (torch.rand(g.numel(), generator=generator, dtype=torch.float64) * gcount[g]).long()
            chosen = torch.cat([chosen, extra])
        return idx[chosen]


def make_sampler(train: Dataset, cfg: Any, sample_weights: torch.Tensor | None) -> RealSampler:
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


def seeded_model(cfg: Any, train: Dataset, generator: torch.Generator, device: torch.device) -> nn.Module:
    """A freshly initialised ``cfg.model`` for ``train``'s shape, its init seed drawn from ``generator``.

    :func:`fairdd.models.build_model` initialises under that seed inside ``fork_rng``, so the
    network is reproducible and the global RNG is left untouched. ``width``, ``depth`` and
    ``norm`` apply to ``"convnet"`` only.
    """
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    kw: dict[str, Any] = {}
    if cfg.model == "convnet":
        kw = {"width": cfg.width, "depth": cfg.depth, "norm": cfg.norm}
    net = build_model(
        cfg.model,
        channels=train.inputs.shape[1],
        num_classes=train.num_classes,
        image_size=train.inputs.shape[-1],
        seed=seed,
        **kw,
    )
    return net.to(device)


def has_batchnorm(net: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


def resolve_device(device: torch.device | str | None, train: Dataset) -> torch.device:
    if device is None:
        return train.inputs.device
    return torch.device(device)


# --------------------------------------------------------------------------- checkpoints


def fingerprint(cfg: Any, train: Dataset, images_per_class: int, seed: int) -> str:
    """A short hash naming what a checkpoint belongs to; resuming a different run is refused."""
    payload = {
        "config": canonical_config(cfg),
        "data": [train.name, train.split, len(train), list(train.inputs.shape[1:]), train.num_classes],
        "ipc": images_per_class,
        "seed": seed,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _checkpoint_file(checkpoint_dir: str | Path) -> Path:
    return Path(checkpoint_dir) / "distill.pt"


def optimise(
    step: Callable[[int], float],
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
) -> list[float]:
    """Run ``step(iteration) -> loss`` for ``iterations`` iterations, resumably.

    The checkpoint holds ``tensors`` (the learned synthetic images and, for MTT, the step size),
    the ``optimizers``' states, the generator state, the iteration count and the loss log. It is
    written every ``checkpoint_every`` iterations and at the end; a finished checkpoint makes a
    rerun return at once. Each method draws everything an iteration needs (fresh network, real
    batches, augmentation) from ``generator`` inside ``step``, so the state at an iteration
    boundary is exactly what is saved, and a resumed run continues bit for bit (CPU).

    Returns
    -------
    The loss of every iteration (restored ones included).
    """
    losses: list[float] = []
    start = 0
    if checkpoint_dir is not None:
        saved = load_checkpoint(_checkpoint_file(checkpoint_dir))
        if saved is not None:
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
            generator.set_state(saved["generator"])
            losses = list(saved["losses"])
            start = int(saved["iteration"])

    def checkpoint(done: int) -> None:
        save_checkpoint(
            _checkpoint_file(checkpoint_dir),  # type: ignore[arg-type]
            {
                "run_id": run_id,
                "iteration": done,
                "tensors": {k: v.detach().cpu().clone() for k, v in tensors.items()},
                "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
                "generator": generator.get_state(),
                "losses": losses,
            },
        )

    with tqdm(total=iterations, initial=start, disable=not progress, desc=desc, leave=False) as bar:
        for it in range(start, iterations):
            loss = float(step(it))
            losses.append(loss)
            done = it + 1
            if checkpoint_dir is not None and (done % checkpoint_every == 0 or done == iterations):
                checkpoint(done)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
            if callback is not None:
                callback(done, loss)
    return losses


# --------------------------------------------------------------------------- the one call

# Method config class -> runner(train, cfg, ipc, seed, checkpoint_dir, progress, device,
# sample_weights, callback) -> SyntheticSet; filled in by each method module on import.
_RUNNERS: dict[type, Callable[..., SyntheticSet]] = {}
# Method name -> (config class, keyword overrides) for config_for.
_PROFILES: dict[str, Callable[[str], Any]] = {}


def register(config_cls: type, runner: Callable[..., SyntheticSet]) -> None:
    _RUNNERS[config_cls] = runner


def register_profiles(method: str, for_profile: Callable[[str], Any]) -> None:
    _PROFILES[method] = for_profile


def config_for(method: str, profile: str) -> Any:
    """The config of ``method`` (``"dc"``, ``"dsa"``, ``"dm"``, ``"mtt"``) for a run profile.

    ``"paper"`` is the reference setting; ``"cpu"`` a stated reduction that runs in minutes on
    2 CPU cores; ``"smoke"`` seconds, for CI. Each method module documents its reductions.
    """
    check_choice("method", method, METHODS)
    check_profile(profile)
    return _PROFILES[method](profile)


def distill(
    train: Dataset,
    config: Any,
    *,
    images_per_class: int,
    seed: int,
    checkpoint_dir: str | Path | None = None,
    progress: bool = True,
    device: torch.device | str | None = None,
    sample_weights: torch.Tensor | None = None,
    callback: Callback | None = None,
) -> SyntheticSet:
    """Distil ``train`` into ``images_per_class`` synthetic images per class.

    Parameters
    ----------
    train : the real training set, images ``(N, C, H, W)`` already normalised by the caller.
    config : a :class:`DCConfig` (DC, or DSA with ``augment=True``), :class:`DMConfig` or
        :class:`MTTConfig`; see :func:`config_for`.
    images_per_class : synthetic images per class (IPC), >= 1.
    seed : seeds the run's only generator; same seed, same result (CPU).
    checkpoint_dir : folder for the resumable checkpoint (``None``: no checkpoints). A run
        started again with the same folder resumes from its last checkpoint.
    progress : show a tqdm bar.
    device : where to compute (default: where ``train.inputs`` lives).
    sample_weights : optional ``(N,)`` per-sample weights for drawing real images (see
        :class:`RealSampler`); ``None`` uses ``config.real_sampling``.
    callback : called as ``callback(iterations_done, loss)`` after each iteration (logging,
        early interruption in tests); raising from it stops the run after its checkpoint.

    Returns
    -------
    SyntheticSet
        Images and labels on the CPU, MTT's learned step size, and the loss log.
    """
    runner = _RUNNERS.get(type(config))
    if runner is None:
        raise ValueError(
            f"config={type(config).__name__} is not a distillation config; "
            f"choose one of {sorted(c.__name__ for c in _RUNNERS)}"
        )
    check_images_per_class(images_per_class)
    check_int("seed", seed, minimum=0)
    if train.inputs.dim() != 4:
        raise ValueError(f"train.inputs has shape {tuple(train.inputs.shape)}; image distillation needs (N, C, H, W)")
    return runner(
        train,
        config,
        images_per_class=images_per_class,
        seed=seed,
        checkpoint_dir=checkpoint_dir,
        progress=progress,
        device=resolve_device(device, train),
        sample_weights=sample_weights,
        callback=callback,
    )


def new_generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


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
