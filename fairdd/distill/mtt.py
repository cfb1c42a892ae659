"""Matching Training Trajectories (MTT; Cazenavette et al., CVPR 2022).

Two stages (reference GeorgeCazenavette/mtt-distillation@50dccea):

**Experts** (``buffer.py``): ``num_experts`` networks, each trained on the real training set for
``expert_train_epochs`` epochs (SGD ``expert_lr`` 0.01, no momentum, no weight decay, minibatch
256, per-image DSA on every batch), with all parameters saved after every epoch. The
trajectories are cached on disk, one file per expert, under
``<results root>/cache/mtt_experts/<key>/`` where ``key`` hashes the data set's content and
every expert field (see :func:`expert_cache_dir`); distillations with the same data, network
and expert settings reuse them, and an interrupted expert run keeps every finished expert.
Expert i is seeded from ``(expert_seed, i)`` alone, so the buffer does not depend on the
distillation seed.

**Distillation** (``distill.py``), per iteration:

1. an expert ``e`` uniformly and a start epoch ``t ~ U{0, …, max_start_epoch − 1}``;
   ``θ_start = θ_e,t`` and ``θ_target = θ_e,t+expert_epochs``;
2. a student starts at ``θ_start`` and takes ``syn_steps`` SGD steps on minibatches of the
   synthetic set (``batch_syn``; per-image DSA if ``augment``) with the learnable step size
   ``α``: ``θ ← θ − α ∇θ CE(f(x; θ), y)``, unrolled with ``create_graph`` through
   ``torch.func.functional_call`` on one flat parameter vector;
3. ``loss = ‖θ_student − θ_target‖² / ‖θ_start − θ_target‖²``, backpropagated to the images
   (SGD ``lr_img`` 1000, momentum 0.5) and to ``α`` (SGD ``lr_lr`` 1e-5, momentum 0.5, ``α``
   initialised at ``lr_init`` = 0.01, the reference's ``lr_teacher``).

Memory grows linearly with ``syn_steps`` (the unrolled graph). The learned ``α`` is returned as
``SyntheticSet.learning_rate``: the reference trains its evaluation networks with it.

Departures from the reference: it draws experts file by file in shuffled order (or uniformly
with ``--load_all``); we draw uniformly from all experts (the ``--load_all`` behaviour) from the
run's generator. It loops ``Iteration + 1`` times; we do ``iterations`` updates.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F
from tqdm import tqdm  # plain text bars: the notebooks have no ipywidgets

from fairdd.augment import dsa
from fairdd.config import check_int, check_number, check_profile
from fairdd.data import Dataset
from fairdd.distill._common import (
    Callback,
    DistillConfig,
    Init,
    SyntheticSet,
    fingerprint,
    initial_images,
    make_sampler,
    optimise,
    seeded_model,
    study_profile,
    synthetic_labels,
)
from fairdd.models import NetworkSpec
from fairdd.paths import results_root
from fairdd.results import canonical_config, check_root, claim_file, claim_holder, discard_damaged, save_checkpoint
from fairdd.seeding import expert_seed as _expert_seed
from fairdd.seeding import generator as seeded_generator

__all__ = ["MTTConfig", "expert_cache_dir", "load_trajectory", "run", "train_experts"]

# Fields that decide the expert trajectories (and so the cache key); the rest only steer the
# distillation. num_experts is left out: expert i does not depend on how many there are.
_EXPERT_FIELDS = (
    "network",
    "expert_train_epochs",
    "expert_lr",
    "expert_momentum",
    "expert_weight_decay",
    "expert_lr_decay",
    "expert_batch",
    "expert_epoch_size",
    "expert_augment",
    "dsa_strategy",
    "dsa_params",
    "expert_seed",
)


@dataclass(frozen=True, kw_only=True)
class MTTConfig(DistillConfig):
    """Settings of MTT; defaults are the reference's (``distill.py``, ``buffer.py``).

    The shared fields are :class:`~fairdd.distill._common.DistillConfig`'s; here with MTT's
    reference values.

    Attributes
    ----------
    iterations : distillation iterations (reference 5000).
    syn_steps : student steps on the synthetic set per iteration (reference 20).
    expert_epochs : the target is this many expert epochs after the start (reference 3).
    max_start_epoch : start epochs are drawn from ``0 … max_start_epoch − 1`` (reference 25).
    lr_img : SGD learning rate of the images (reference 1000).
    momentum_img : its momentum (reference 0.5, hard-coded).
    lr_lr : SGD learning rate of the learnable step size (reference 1e-5).
    momentum_lr : its momentum (reference 0.5, hard-coded).
    lr_init : initial learnable step size (reference: ``lr_teacher`` 0.01; its ``--lr_init``
        flag is unused).
    batch_syn : synthetic images per student step; ``None`` = all (reference default).
    init : ``"real"`` (reference) or ``"noise"``.
    augment : per-image DSA on each student minibatch (reference ``--dsa True``).
    dsa_strategy, dsa_params : DSA families and constants (for the student and the experts).
    network : the network (reference ConvNet 128/3/instancenorm), a
        :class:`~fairdd.models.NetworkSpec`; it shapes the experts too.
    real_sampling : how the real initial images are drawn (see :class:`fairdd.data.RealSampler`).
    checkpoint_every : iterations between checkpoints.
    num_experts : expert trajectories to train/use (reference 100).
    expert_train_epochs : epochs per expert (reference ``--train_epochs 50``).
    expert_lr : expert SGD learning rate (reference ``--lr_teacher 0.01``).
    expert_momentum : expert SGD momentum (reference ``--mom 0``).
    expert_weight_decay : expert weight decay (reference ``--l2 0``).
    expert_lr_decay : drop the expert lr ×0.1 after epoch ``expert_train_epochs // 2 + 1``,
        rebuilding the optimiser, as the reference's ``--decay`` (off by default).
    expert_batch : expert minibatch (reference ``--batch_train 256``).
    expert_epoch_size : real images per expert "epoch" (a fresh random subset each epoch);
        ``None`` = the whole training set (reference). A stated reduction for CPU profiles.
    expert_augment : per-image DSA on every expert minibatch (reference: on).
    expert_seed : seeds the experts (expert i from ``(expert_seed, i)``); independent of the
        distillation seed so the buffer is shared.
    """

    iterations: int = 5000
    syn_steps: int = 20
    expert_epochs: int = 3
    max_start_epoch: int = 25
    lr_img: float = 1000.0
    lr_lr: float = 1e-5
    momentum_lr: float = 0.5
    lr_init: float = 0.01
    batch_syn: int | None = None
    init: Init = "real"
    augment: bool = True
    checkpoint_every: int = 50
    num_experts: int = 100
    expert_train_epochs: int = 50
    expert_lr: float = 0.01
    expert_momentum: float = 0.0
    expert_weight_decay: float = 0.0
    expert_lr_decay: bool = False
    expert_batch: int = 256
    expert_epoch_size: int | None = None
    expert_augment: bool = True
    expert_seed: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_int("syn_steps", self.syn_steps, minimum=1)
        check_int("expert_epochs", self.expert_epochs, minimum=1)
        check_int("max_start_epoch", self.max_start_epoch, minimum=1)
        check_number("lr_lr", self.lr_lr, minimum=0.0)
        check_number("momentum_lr", self.momentum_lr, minimum=0.0, maximum=1.0)
        check_number("lr_init", self.lr_init, minimum=0.0, strict_minimum=True)
        if self.batch_syn is not None:
            check_int("batch_syn", self.batch_syn, minimum=1)
        check_int("num_experts", self.num_experts, minimum=1)
        check_int("expert_train_epochs", self.expert_train_epochs, minimum=1)
        if self.max_start_epoch - 1 + self.expert_epochs > self.expert_train_epochs:
            raise ValueError(
                f"max_start_epoch={self.max_start_epoch} and expert_epochs={self.expert_epochs} reach "
                f"epoch {self.max_start_epoch - 1 + self.expert_epochs}, beyond "
                f"expert_train_epochs={self.expert_train_epochs}; need max_start_epoch - 1 + expert_epochs <= "
                "expert_train_epochs"
            )
        check_number("expert_lr", self.expert_lr, minimum=0.0, strict_minimum=True)
        check_number("expert_momentum", self.expert_momentum, minimum=0.0, maximum=1.0)
        check_number("expert_weight_decay", self.expert_weight_decay, minimum=0.0)
        check_int("expert_batch", self.expert_batch, minimum=1)
        if self.expert_epoch_size is not None:
            check_int("expert_epoch_size", self.expert_epoch_size, minimum=1)
        for name in ("expert_augment", "expert_lr_decay"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} must be a bool")
        check_int("expert_seed", self.expert_seed, minimum=0)

    @property
    def method(self) -> str:
        return "mtt"

    @classmethod
    def for_profile(cls, profile: str) -> MTTConfig:
        """The config for a run profile.

        - ``"paper"``: the reference settings (100 experts × 50 epochs; meant for a GPU).
        - ``"smoke"`` (for the unit tests): width 8, depth 2; 2 experts × 3 epochs of 256 images in batches of 64
          (4 expert steps per epoch: with one full batch per epoch the target is a single SGD
          step, 3 synthetic steps overshoot it and the learned rate went negative);
          ``syn_steps`` 3, ``expert_epochs`` 1, ``max_start_epoch`` 2; 3 iterations.

        A ``"cpu"`` protocol is a study's: each study states its own reduced configs
        (:meth:`fairdd.studies.methods.MethodsStudyConfig.for_profile`, the class-wise study's);
        ``"cpu"`` raises here.
        """
        check_profile(profile)
        if profile == "paper":
            return cls()
        if profile == "cpu":
            raise study_profile(profile, "mtt")
        return cls(
            network=NetworkSpec(width=8, depth=2),
            num_experts=2,
            expert_train_epochs=3,
            expert_epoch_size=256,
            expert_batch=64,
            max_start_epoch=2,
            expert_epochs=1,
            syn_steps=3,
            iterations=3,
            checkpoint_every=1,
        )


# --------------------------------------------------------------------------- experts


def expert_cache_dir(train: Dataset, cfg: MTTConfig, *, root: str | Path | None = None) -> Path:
    """``<root or results_root()>/cache/mtt_experts/<key>``: the expert buffer of this data and
    these expert settings. ``key`` = sha256 of the data's content and the expert fields."""
    payload = {
        "data": [train.name, train.split, train.content_digest()],
        "experts": canonical_config({name: getattr(cfg, name) for name in _EXPERT_FIELDS}),
    }
    key = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    return Path(root if root is not None else results_root()) / "cache" / "mtt_experts" / key


def _expert_file(directory: Path, i: int) -> Path:
    return directory / f"expert_{i:04d}.pt"


def _flat(net: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()]).cpu().clone()


def _train_expert(train: Dataset, cfg: MTTConfig, i: int, device: torch.device) -> torch.Tensor:
    """One expert trajectory: ``(expert_train_epochs + 1, P)`` parameters after each epoch."""
    g = seeded_generator(_expert_seed(cfg.expert_seed, i))
    net = seeded_model(cfg, train, g, device)
    net.train()

    def optimiser(lr: float) -> torch.optim.Optimizer:
        return torch.optim.SGD(net.parameters(), lr=lr, momentum=cfg.expert_momentum, weight_decay=cfg.expert_weight_decay)

    lr = cfg.expert_lr
    opt = optimiser(lr)
    inputs, labels = train.inputs.to(device), train.labels.to(device)
    n = inputs.shape[0]
    per_epoch = n if cfg.expert_epoch_size is None else min(n, cfg.expert_epoch_size)
    trajectory = [_flat(net)]
    for epoch in range(cfg.expert_train_epochs):
        order = torch.randperm(n, generator=g)[:per_epoch].to(device)
        for start in range(0, per_epoch, cfg.expert_batch):
            idx = order[start : start + cfg.expert_batch]
            x = inputs[idx]
            if cfg.expert_augment:
                x = dsa(x, cfg.dsa_strategy, generator=g, params=cfg.dsa_params, shared=False)
            loss = F.cross_entropy(net(x), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        trajectory.append(_flat(net))
        # Reference: lr_schedule = [train_epochs // 2 + 1], checked after the epoch's training.
        if cfg.expert_lr_decay and epoch == cfg.expert_train_epochs // 2 + 1:
            lr *= 0.1
            opt = optimiser(lr)
    return torch.stack(trajectory)


def train_experts(
    train: Dataset,
    cfg: MTTConfig,
    *,
    progress: bool = True,
    device: torch.device | str | None = None,
    root: str | Path | None = None,
    processes: int | None = None,
    wait_timeout_s: float | None = None,
) -> list[Path]:
    """Train (or find cached) the ``cfg.num_experts`` expert trajectories; their file paths.

    Each expert file holds ``{"trajectory": (expert_train_epochs + 1, P) float32}`` and is
    written atomically when its expert finishes, so an interrupted call keeps every finished
    expert and the next call trains only the missing ones. Callers running at the same time
    (e.g. several MTT cells of a sweep in parallel processes) share the work: an expert being
    trained is marked by a claim file holding the trainer's pid; others train the unclaimed
    ones, then wait for the rest (a claim of a dead process is taken over).

    Parameters
    ----------
    processes : train the missing experts in this many one-thread worker processes
        (:func:`fairdd.parallel.map_processes`); ``None`` trains them here, one by one.
    wait_timeout_s : how long to wait, without any claimed expert appearing, for experts that
        other live processes are training; then ``TimeoutError`` naming their claim files and
        pids. ``None``: ``$FAIRDD_CLAIM_TIMEOUT_S`` or 6 hours. A claim whose process is dead,
        or whose pid now belongs to an unrelated process, is taken over at once
        (:func:`fairdd.results.claim_holder`).
    """
    device = torch.device(device) if device is not None else train.inputs.device
    check_root(root)  # before any work: a folder that can be written
    directory = expert_cache_dir(train, cfg, root=root)
    paths = [_expert_file(directory, i) for i in range(cfg.num_experts)]
    for p in paths:
        if p.is_file():
            discard_damaged(p)  # its SHA-256: a damaged expert is trained again, with a warning
    missing = [i for i, p in enumerate(paths) if not p.is_file()]
    if missing and processes is not None:
        from fairdd.parallel import job_progress, map_processes

        job = functools.partial(_train_expert_once, train.to("cpu"), cfg, device=str(device), directory=str(directory))
        map_processes(job, missing, processes=processes,
                      on_done=job_progress(f"MTT experts of {train.name}", len(missing), unit="expert"))
    if wait_timeout_s is None:
        wait_timeout_s = float(os.environ.get("FAIRDD_CLAIM_TIMEOUT_S", _CLAIM_TIMEOUT_S))
    check_number("wait_timeout_s", wait_timeout_s, minimum=0.0)
    with tqdm(total=len(missing), disable=not progress or not missing, desc="MTT experts", leave=False) as bar:
        waiting_since: float | None = None
        while missing:
            for i in missing:
                if _train_expert_once(train, cfg, i, device=device, directory=directory):
                    bar.update(1)
            still = [i for i in missing if not paths[i].is_file()]
            if not still:
                break
            if waiting_since is None or len(still) < len(missing):
                waiting_since = time.monotonic()  # (re)start the clock: progress was made
                holders = {str(paths[i].with_suffix(".claim")): claim_holder(paths[i]) for i in still}
                tqdm.write(
                    f"MTT: waiting for {len(still)} expert(s) being trained by other processes: "
                    + ", ".join(f"{c} (pid {h or '?'})" for c, h in holders.items())
                    + f". If no process is training them, delete those .claim files (a claim whose process is "
                    f"gone is taken over by itself); giving up after {wait_timeout_s:.0f} s without progress "
                    "($FAIRDD_CLAIM_TIMEOUT_S)"
                )
            elif time.monotonic() - waiting_since > wait_timeout_s:
                holders = {str(paths[i].with_suffix(".claim")): claim_holder(paths[i]) for i in still}
                raise TimeoutError(
                    f"MTT experts {still} did not appear within {wait_timeout_s:.0f} s; they are claimed by "
                    + ", ".join(f"{c} (pid {h or '?'})" for c, h in holders.items())
                    + ". If no process is training them, delete those .claim files; or raise "
                    "wait_timeout_s / $FAIRDD_CLAIM_TIMEOUT_S"
                )
            missing = still
            time.sleep(_CLAIM_POLL_S)  # the rest are being trained by another process
    return paths


_CLAIM_POLL_S = 2.0
_CLAIM_TIMEOUT_S = 6 * 3600.0


def _train_expert_once(
    train: Dataset, cfg: MTTConfig, i: int, *, device: torch.device | str, directory: str | Path
) -> bool:
    """Train and save expert ``i`` unless it exists or another live process claimed it;
    whether this call trained it."""
    path = _expert_file(Path(directory), i)
    if path.is_file() or not claim_file(path):
        return False
    try:
        if path.is_file():  # finished between the check and the claim
            return False
        save_checkpoint(path, {"trajectory": _train_expert(train, cfg, i, torch.device(device))})
        return True
    finally:
        path.with_suffix(".claim").unlink(missing_ok=True)


def load_trajectory(path: str | Path) -> torch.Tensor:
    """An expert's ``(epochs + 1, P)`` trajectory, memory-mapped (rows are read on use)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)["trajectory"]
    except (OSError, EOFError, RuntimeError, KeyError, ValueError) as exc:
        if "Weights only load failed" in str(exc):
            raise
        raise ValueError(
            f"expert trajectory {path} is damaged ({type(exc).__name__}: {str(exc)[:200] or 'no message'}); "
            "delete it and the next run trains that expert again"
        ) from exc


# --------------------------------------------------------------------------- distillation


def run(
    train: Dataset,
    cfg: MTTConfig,
    *,
    images_per_class: int,
    seed: int,
    checkpoint_dir: str | Path | None,
    progress: bool,
    device: torch.device,
    sample_weights: torch.Tensor | None,
    callback: Callback | None,
) -> SyntheticSet:
    """MTT behind :func:`fairdd.distill.distill` (which validates the arguments)."""
    ipc = images_per_class
    k = train.num_classes
    sampler = make_sampler(train, cfg, sample_weights)  # validates the sampling before the experts
    expert_paths = train_experts(train, cfg, progress=progress, device=device)
    trajectories = [load_trajectory(p) for p in expert_paths]

    generator = seeded_generator(seed)
    syn = initial_images(train, sampler, cfg.init, ipc, generator).to(device).requires_grad_(True)
    labels = synthetic_labels(k, ipc).to(device)
    syn_lr = torch.tensor(cfg.lr_init, device=device).requires_grad_(True)
    opt_img = torch.optim.SGD([syn], lr=cfg.lr_img, momentum=cfg.momentum_img)
    opt_lr = torch.optim.SGD([syn_lr], lr=cfg.lr_lr, momentum=cfg.momentum_lr)

    # A skeleton network for functional calls; its own parameter values are never used.
    net = cfg.network.build(train.inputs.shape[1], k, train.inputs.shape[-1], seed=0).to(device)
    net.train()
    names = [n for n, _ in net.named_parameters()]
    shapes = [p.shape for _, p in net.named_parameters()]
    numels = [p.numel() for _, p in net.named_parameters()]
    if trajectories[0].shape[1] != sum(numels):
        raise ValueError(f"expert trajectories have {trajectories[0].shape[1]} parameters; the network has {sum(numels)}")
    n_syn = syn.shape[0]
    batch_syn = n_syn if cfg.batch_syn is None else min(cfg.batch_syn, n_syn)

    def as_params(flat: torch.Tensor) -> dict[str, torch.Tensor]:
        return {n: t.view(s) for n, t, s in zip(names, flat.split(numels), shapes)}

    def step(_: int) -> float:
        e = int(torch.randint(len(trajectories), (1,), generator=generator))
        t = int(torch.randint(cfg.max_start_epoch, (1,), generator=generator))
        start = trajectories[e][t].to(device)
        target = trajectories[e][t + cfg.expert_epochs].to(device)
        theta = start.clone().requires_grad_(True)
        chunks: list[torch.Tensor] = []
        for _ in range(cfg.syn_steps):
            if not chunks:
                chunks = list(torch.randperm(n_syn, generator=generator).to(device).split(batch_syn))
            idx = chunks.pop()
            x = syn[idx]
            if cfg.augment:
                x = dsa(x, cfg.dsa_strategy, generator=generator, params=cfg.dsa_params, shared=False)
            ce = F.cross_entropy(functional_call(net, as_params(theta), (x,)), labels[idx])
            (grad,) = torch.autograd.grad(ce, theta, create_graph=True)
            theta = theta - syn_lr * grad
        loss = ((theta - target) ** 2).sum() / ((start - target) ** 2).sum()
        syn.grad, syn_lr.grad = torch.autograd.grad(loss, [syn, syn_lr])
        opt_img.step()
        opt_lr.step()
        return loss.item()

    losses = optimise(
        step,
        tensors={"images": syn, "learning_rate": syn_lr},
        optimizers={"images": opt_img, "learning_rate": opt_lr},
        generator=generator,
        iterations=cfg.iterations,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=cfg.checkpoint_every,
        run_id=fingerprint(cfg, train, ipc, seed),
        progress=progress,
        callback=callback,
        desc="MTT",
    )
    return SyntheticSet(
        images=syn.detach().cpu().clone(),
        labels=labels.cpu(),
        learning_rate=float(syn_lr.detach()),
        losses=tuple(losses),
        method="mtt",
        images_per_class=ipc,
        seed=seed,
        config=cfg,
    )
