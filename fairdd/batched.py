"""Training N independent networks of one architecture in one step (``torch.func`` + ``vmap``).

:class:`StackedSGD` holds N networks' parameters and buffers stacked along a new first
dimension (``torch.func.stack_module_state``), runs one forward and backward of all of them under
``torch.func.vmap`` over ``functional_call``, and applies SGD with momentum and weight decay to
the stacked tensors by hand, with ``torch.optim.SGD``'s semantics (``dampening=0``, no
Nesterov)::

    d_p = g + weight_decay · p
    buf = d_p                       (first step, and the first step after a momentum reset)
    buf = momentum · buf + d_p      (later steps)
    p  -= lr · buf                  (p -= lr · d_p when momentum is 0)

and, when asked, ``torch.nn.utils.clip_grad_norm_``'s clipping per network before the step. Two
trainers are written on it: :func:`train_networks` here (the evaluation protocol of
:func:`fairdd.evaluate.train_network`, for ``evaluate_synthetic(..., side_by_side=True)``) and
:func:`fairdd.kd.fit_many` (the KD protocol of :func:`fairdd.kd.fit`, students at several
temperatures side by side).

Each network keeps everything the sequential protocol gives it: its own θ0 (the models passed
in), its own generator, drawn from in the same order as the sequential trainer draws (one
``randperm`` per epoch, then, with ``config.dsa``, one DSA draw per minibatch — the DSA draws
are made and applied network by network outside ``vmap``, so they are the sequential draws
exactly), the same minibatches (all networks share ``n`` and ``batch_size``, so the last,
smaller batch lines up), the rate drop at ``config.decay_epoch`` with the optional momentum
reset, and integer or soft labels. The result equals N sequential runs within float tolerance
(``tests/test_batched.py``: ``assert_close`` at rtol 1e-4 / atol 1e-5 on the trained weights after
a few epochs, fp32 CPU); it is not bit-identical, because the batched convolutions sum in another
order.

**Batch norm.** The stacked buffers (BatchNorm's running mean and variance, and its
``num_batches_tracked``) are passed to ``functional_call`` under ``vmap`` as a batched argument,
so the in-place running-statistics updates of a training-mode forward land in each network's own
slice, as they do in the network itself; they are copied back with the weights. Normalisation in
training mode uses each network's own minibatch statistics. So the ConvNet's ``"batchnorm"`` and
the CIFAR ResNets train side by side like the rest (tested against sequential training).

**bf16.** ``config.precision="bf16"`` runs the vmapped forward and backward under bfloat16
autocast (:func:`fairdd.training.autocast`), as the sequential path does; parameters, momentum and
loss stay float32. ``tests/test_batched.py`` checks that it trains the same networks as the
sequential bf16 path within a bf16 tolerance and that the test accuracy stays that of float32
within a stated margin on a toy task.

Rejected, with a ``ValueError`` before any training (:func:`check_batchable`,
:func:`check_batchable_config`): networks with dropout (random masks under ``vmap`` would not be
the sequential draws), with frozen parameters, or of different architectures; ``config.compile``
and ``config.channels_last`` (speed options of the sequential path; a stacked convolution under
``vmap`` is a grouped convolution, for which channels-last is not the fast layout, and compiling
the vmapped step is not implemented).

**Memory.** The N networks' activations are held at once, so memory grows with N times one
network's training step; a step that does not fit fails as PyTorch's allocator does (on a GPU an
out-of-memory error, on a CPU possibly the kernel's OOM killer). ``benchmarks/bench_throughput.py``
states which sizes it ran.

Batching is opt-in (``fairdd.evaluate.evaluate_synthetic(..., side_by_side=True)``,
:func:`fairdd.kd.fit_many`); the sequential path stays the default everywhere, so no recorded
result changes. ``benchmarks/bench_throughput.py`` measures when it pays on a device.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, grad_and_value, stack_module_state, vmap
from torch.nn import functional as F

from fairdd.augment import dsa
from fairdd.config import check_choice, check_number
from fairdd.training import TrainLog, to_device
from fairdd.training import autocast as _autocast
from fairdd.training import sync as _sync

__all__ = ["StackedSGD", "check_batchable", "check_batchable_config", "train_networks"]

#: ``loss_fn(logits, *per_network_args) -> scalar``: one network's loss on one minibatch.
LossFn = Callable[..., torch.Tensor]


def check_batchable_config(config) -> None:
    """Raise ``ValueError`` for the :class:`~fairdd.evaluate.EvalConfig` options the batched
    path does not support (``compile``, ``channels_last``)."""
    if config.compile:
        raise ValueError(
            "batched training does not support config.compile=True; use the sequential path (side_by_side=False)"
        )
    if config.channels_last:
        raise ValueError(
            "batched training does not support config.channels_last=True; use the sequential path (side_by_side=False)"
        )


def check_batchable(models: Sequence[nn.Module]) -> None:
    """Raise ``ValueError`` unless ``models`` can be trained side by side: at least one network,
    all of one class with the same parameter and buffer names and shapes, every parameter
    trainable, and no dropout."""
    if len(models) == 0:
        raise ValueError("batched training needs at least one network")
    first = models[0]

    def signature(model: nn.Module) -> tuple[list[Any], list[Any]]:
        return (
            [(name, tuple(p.shape), p.dtype) for name, p in model.named_parameters()],
            [(name, tuple(b.shape), b.dtype) for name, b in model.named_buffers()],
        )

    shapes = signature(first)
    for i, model in enumerate(models):
        if type(model) is not type(first):
            raise ValueError(
                f"network {i} is a {type(model).__name__}, network 0 a {type(first).__name__}; batched training needs one architecture"
            )
        if signature(model) != shapes:
            raise ValueError(
                f"network {i} has other parameter or buffer names or shapes than network 0; batched training needs one architecture"
            )
        for m in model.modules():
            if isinstance(m, nn.modules.dropout._DropoutNd):
                raise ValueError(
                    f"batched training does not support dropout ({type(m).__name__} in network {i})"
                )
        frozen = [name for name, p in model.named_parameters() if not p.requires_grad]
        if frozen:
            raise ValueError(
                f"batched training needs every parameter trainable; network {i} has frozen {frozen[:3]}"
            )


class StackedSGD:
    """N networks of one architecture, stacked, trained by one vmapped SGD step.

    Parameters
    ----------
    models : the networks (each with its own θ0), already on the training device; they are
        not changed until :meth:`write_back`.
    momentum, weight_decay : SGD's, shared by all networks.
    max_grad_norm : clip each network's gradient to this total 2-norm before its step, as
        ``torch.nn.utils.clip_grad_norm_`` (``None``: no clipping).
    precision : ``"fp32"`` or ``"bf16"`` (autocast of the forward and backward).

    The learning rate is given per step (:meth:`step`), one for all networks or one each.
    """

    def __init__(
        self,
        models: Sequence[nn.Module],
        *,
        momentum: float,
        weight_decay: float,
        max_grad_norm: float | None = None,
        precision: str = "fp32",
    ) -> None:
        models = list(models)
        check_batchable(models)
        check_number("momentum", momentum, minimum=0.0, maximum=1.0)
        check_number("weight_decay", weight_decay, minimum=0.0)
        if max_grad_norm is not None:
            check_number("max_grad_norm", max_grad_norm, minimum=0.0, strict_minimum=True)
        check_choice("precision", precision, ("fp32", "bf16"))
        self.num = len(models)
        self.momentum, self.weight_decay = float(momentum), float(weight_decay)
        self.max_grad_norm, self.precision = max_grad_norm, precision
        params, buffers = stack_module_state(models)
        self.params = {name: p.detach().clone() for name, p in params.items()}
        self.buffers = {name: b.detach().clone() for name, b in buffers.items()}
        self.device = next(iter(self.params.values())).device
        # The stateless copy that functional_call runs with the stacked tensors.
        self._base = copy.deepcopy(models[0]).to("meta")
        self._momentum_buffers: dict[str, torch.Tensor] | None = None
        self._steps: dict[LossFn, Callable[..., Any]] = {}
        self._rates: tuple[tuple[float, ...], torch.Tensor] | None = None

    def _step_fn(self, loss_fn: LossFn) -> Callable[..., Any]:
        if loss_fn not in self._steps:
            base = self._base

            def one(p: dict[str, torch.Tensor], b: dict[str, torch.Tensor], x: torch.Tensor, *args: Any) -> torch.Tensor:
                return loss_fn(functional_call(base, (p, b), (x,)).float(), *args)

            self._steps[loss_fn] = vmap(grad_and_value(one))  # over (params, buffers, x, *args), all on dim 0
        return self._steps[loss_fn]

    def reset_momentum(self) -> None:
        """Clear the momentum buffers (``torch.optim.SGD`` after ``optimizer.state.clear()``)."""
        self._momentum_buffers = None

    def step(self, loss_fn: LossFn, x: torch.Tensor, *args: torch.Tensor, lr: float | Sequence[float]) -> torch.Tensor:
        """One SGD step of every network on its own minibatch.

        Parameters
        ----------
        loss_fn : ``loss_fn(logits, *args_of_one_network) -> scalar`` (a module-level function or
            one kept alive by the caller: the vmapped step is cached per function).
        x : ``(N, B, ...)`` the networks' inputs; ``args``: ``(N, ...)`` per-network tensors.
        lr : one rate for all networks (applied as ``torch.optim.SGD`` does) or N rates.

        Returns
        -------
        The ``(N,)`` losses, detached, on the device (no host synchronisation).
        """
        rates = [float(lr)] * self.num if isinstance(lr, (int, float)) else [float(r) for r in lr]
        if len(rates) != self.num:
            raise ValueError(f"got {len(rates)} learning rates for {self.num} networks")
        with _autocast(self.device, self.precision):
            grads, loss = self._step_fn(loss_fn)(self.params, self.buffers, x, *args)
        with torch.no_grad():
            if self.max_grad_norm is not None:
                # clip_grad_norm_: total = ‖(‖g_1‖, ..., ‖g_P‖)‖, g *= min(1, max / (total + 1e-6)), per network.
                norms = torch.stack([torch.linalg.vector_norm(g.flatten(1), dim=1) for g in grads.values()])
                total = torch.linalg.vector_norm(norms, dim=0)
                coef = torch.clamp(self.max_grad_norm / (total + 1e-6), max=1.0)
                grads = {name: g * coef.view(-1, *([1] * (g.dim() - 1))) for name, g in grads.items()}
            first_step = self._momentum_buffers is None
            if first_step:
                self._momentum_buffers = {}
            same_rate = len(set(rates)) == 1
            rate = None if same_rate else self._rate_tensor(tuple(rates))
            for name, p in self.params.items():
                d_p = grads[name]
                if self.weight_decay != 0:
                    d_p = d_p.add(p, alpha=self.weight_decay)
                if self.momentum != 0:
                    if first_step:
                        self._momentum_buffers[name] = d_p.clone()
                    else:
                        self._momentum_buffers[name].mul_(self.momentum).add_(d_p)
                    d_p = self._momentum_buffers[name]
                if same_rate:
                    p.add_(d_p, alpha=-rates[0])
                else:
                    p.sub_(d_p * rate.view(-1, *([1] * (p.dim() - 1))))
        return loss.detach()

    def _rate_tensor(self, rates: tuple[float, ...]) -> torch.Tensor:
        """The per-network rates as a device tensor, made once per distinct tuple (a copy to the
        device each step would be a host synchronisation on a GPU)."""
        if self._rates is None or self._rates[0] != rates:
            self._rates = (rates, torch.tensor(rates, dtype=torch.float32, device=self.device))
        return self._rates[1]

    def write_back(self, models: Sequence[nn.Module]) -> None:
        """Copy each network's trained parameters and buffers into ``models`` (in place)."""
        with torch.no_grad():
            for i, model in enumerate(models):
                for name, p in model.named_parameters():
                    p.copy_(self.params[name][i])
                for name, b in model.named_buffers():
                    b.copy_(self.buffers[name][i])

    def state_dict(self) -> dict[str, Any]:
        """Parameters, buffers and momentum buffers (on the CPU), for a checkpoint."""
        cpu = lambda d: None if d is None else {k: v.detach().cpu().clone() for k, v in d.items()}  # noqa: E731
        return {"params": cpu(self.params), "buffers": cpu(self.buffers), "momentum": cpu(self._momentum_buffers)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; a state of other shapes is refused before anything changes."""
        for key, mine in (("params", self.params), ("buffers", self.buffers)):
            theirs = state.get(key)
            if not isinstance(theirs, dict) or {k: tuple(v.shape) for k, v in theirs.items()} != {
                k: tuple(v.shape) for k, v in mine.items()
            }:
                raise ValueError(f"the saved {key} do not match these {self.num} networks; delete the checkpoint")
        momentum = state.get("momentum")
        # After a step: one buffer per parameter, or none at all without momentum.
        if momentum is not None and set(momentum) != (set(self.params) if self.momentum != 0 else set()):
            raise ValueError("the saved momentum buffers do not match these networks; delete the checkpoint")
        with torch.no_grad():
            for key, mine in (("params", self.params), ("buffers", self.buffers)):
                for name, t in mine.items():
                    t.copy_(state[key][name])
        self._momentum_buffers = (
            None if momentum is None else {k: v.to(self.device).clone() for k, v in momentum.items()}
        )


def train_networks(
    models: Sequence[nn.Module],
    images: torch.Tensor,
    labels: torch.Tensor,
    config,
    *,
    generators: Sequence[torch.Generator],
    learning_rate: float | torch.Tensor | Sequence[float] | None = None,
) -> list:
    """Train ``models`` in place, side by side, each as :func:`fairdd.evaluate.train_network`
    would train it with its own generator.

    Parameters
    ----------
    models : N networks of one architecture (each with its own θ0); moved to ``images.device``.
    images, labels : the one training set, as for ``train_network`` (labels ``(N,)`` int64 or
        ``(N, K)`` soft).
    config : an :class:`~fairdd.evaluate.EvalConfig` (see the module notes for what is rejected).
    generators : one generator per network (its shuffling and DSA draws), as ``train_network``'s.
    learning_rate : overrides ``config.lr`` for every network (a float or a tensor read once),
        or a sequence of N rates, one per network.

    Returns
    -------
    One :class:`~fairdd.training.TrainLog` per network. ``train_time_s`` of each is the wall
    time of the whole batched loop divided by N (the amortised cost per network, so that sums
    over rows compare with sequential runs). The models are left in training mode with their
    trained weights (and running statistics).
    """
    models = list(models)
    generators = list(generators)
    num = len(models)
    check_batchable_config(config)
    check_batchable(models)  # before anything moves (StackedSGD checks again, cheaply)
    if len(generators) != num:
        raise ValueError(
            f"got {len(generators)} generators for {num} networks; give one per network"
        )
    device = images.device
    images, labels = images.detach(), labels.detach()
    if labels.shape[0] != images.shape[0] or labels.dim() not in (1, 2):
        raise ValueError(
            f"labels has shape {tuple(labels.shape)}; expected ({images.shape[0]},) or ({images.shape[0]}, K)"
        )
    if config.dsa and images.dim() != 4:
        raise ValueError(
            f"dsa=True needs images (N, C, H, W); got shape {tuple(images.shape)}"
        )
    if learning_rate is None:
        rates = [float(config.lr)] * num
    elif isinstance(learning_rate, (list, tuple)):
        if len(learning_rate) != num:
            raise ValueError(
                f"got {len(learning_rate)} learning rates for {num} networks"
            )
        rates = [float(r) for r in learning_rate]
    else:
        rates = [float(learning_rate)] * num
    for r in rates:
        check_number("learning_rate", r, minimum=0.0, strict_minimum=True)
    if labels.dim() == 2:
        labels = labels.float()

    for model in models:
        model.to(device)
        model.train()
    stack = StackedSGD(
        models, momentum=config.momentum, weight_decay=config.weight_decay, precision=config.precision
    )
    n, bs = images.shape[0], config.batch_size
    epoch_lr: list[list[float]] = []
    epoch_loss_sums: list[torch.Tensor] = []  # kept on the device: one host sync at the end
    _sync(device)
    start = time.perf_counter()
    factor = 1.0
    for epoch in range(config.epochs):
        if epoch == config.decay_epoch:
            factor = config.lr_decay_factor
            if config.reset_momentum_at_decay:
                stack.reset_momentum()
        lrs = [r * factor for r in rates]
        epoch_lr.append(lrs)
        loss_sum = torch.zeros(num, device=device)
        orders = torch.stack(
            [
                to_device(torch.randperm(n, generator=g, device=g.device), device)
                for g in generators
            ]
        )  # (num, n)
        for first in range(0, n, bs):
            idx = orders[:, first : first + bs]  # (num, b)
            x, y = images[idx], labels[idx]  # (num, b, ...)
            if config.dsa:
                x = torch.stack(
                    [
                        dsa(
                            x[i],
                            config.dsa_strategy,
                            generator=generators[i],
                            params=config.dsa_params,
                        )
                        for i in range(num)
                    ]
                )
            loss = stack.step(F.cross_entropy, x, y, lr=lrs)
            loss_sum += loss * idx.shape[1]
        epoch_loss_sums.append(loss_sum)
    _sync(device)
    elapsed = time.perf_counter() - start
    losses = (torch.stack(epoch_loss_sums) / n).T.tolist()  # (num, epochs)
    stack.write_back(models)
    return [
        TrainLog(
            epoch_lr=[lrs[i] for lrs in epoch_lr],
            epoch_loss=losses[i],
            train_time_s=elapsed / num,
        )
        for i in range(num)
    ]
