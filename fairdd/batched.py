"""Training N independent networks of one architecture in one step (``torch.func`` + ``vmap``).

:func:`train_networks` is :func:`fairdd.evaluate.train_network` for a list of networks at
once: their parameters are stacked (``torch.func.stack_module_state``), one forward and
backward of all of them runs under ``torch.func.vmap`` over ``functional_call``, and SGD with
momentum and weight decay is applied to the stacked tensors by hand, with
``torch.optim.SGD``'s semantics (``dampening=0``, no Nesterov)::

    d_p = g + weight_decay · p
    buf = d_p                       (first step, and the first step after a momentum reset)
    buf = momentum · buf + d_p      (later steps)
    p  -= lr · buf                  (p -= lr · d_p when momentum is 0)

Each network keeps everything the sequential protocol gives it: its own θ0 (the models passed
in), its own generator, drawn from in the same order as ``train_network`` draws (one
``randperm`` per epoch, then, with ``config.dsa``, one DSA draw per minibatch — the DSA draws
are made and applied network by network outside ``vmap``, so they are the sequential draws
exactly), the same minibatches (all networks share ``n`` and ``batch_size``, so the last,
smaller batch lines up), the rate drop at ``config.decay_epoch`` with the optional momentum
reset, and integer or soft labels. The result equals N sequential ``train_network`` runs
within float tolerance (``tests/test_batched.py``: ``assert_close`` at rtol 1e-4 / atol 1e-5
on the trained weights after a few epochs, fp32 CPU); it is not bit-identical, because the
batched convolutions sum in another order.

Rejected, with a ``ValueError`` before any training (:func:`check_batchable`):

- networks with buffers — BatchNorm's running statistics (``norm="batchnorm"``, the CIFAR
  ResNets) are updated in place during training, which ``vmap`` over stacked buffers does not
  reproduce; instance/group/layer norm and no norm are fine;
- networks with dropout (random masks under ``vmap`` would not be the sequential draws), with
  frozen parameters, or of different architectures;
- ``config.compile``, ``config.channels_last`` and ``config.precision="bf16"`` (speed options
  of the sequential path not carried over to the batched one yet).

Batching is opt-in (``fairdd.evaluate.evaluate_synthetic(..., batched=True)``); the
sequential path stays the default everywhere, so no recorded result changes.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call, grad_and_value, stack_module_state, vmap
from torch.nn import functional as F

from fairdd.augment import dsa
from fairdd.config import check_number
from fairdd.training import TrainLog
from fairdd.training import sync as _sync

__all__ = ["check_batchable", "check_batchable_config", "train_networks"]


def check_batchable_config(config) -> None:
    """Raise ``ValueError`` for the :class:`~fairdd.evaluate.EvalConfig` options the batched
    path does not support (``compile``, ``channels_last``, ``precision="bf16"``)."""
    if config.compile:
        raise ValueError(
            "batched training does not support config.compile=True; use the sequential path (batched=False)"
        )
    if config.channels_last:
        raise ValueError(
            "batched training does not support config.channels_last=True; use the sequential path (batched=False)"
        )
    if config.precision != "fp32":
        raise ValueError(
            f"batched training supports precision='fp32' only, got {config.precision!r}; use the sequential path (batched=False)"
        )
    if config.network.model == "convnet" and config.network.norm == "batchnorm":
        raise ValueError(
            "batched training does not support norm='batchnorm' (its running statistics are updated in place, "
            "which vmap over stacked networks does not reproduce); use instancenorm/groupnorm/layernorm/none, "
            "or the sequential path (batched=False)"
        )


def check_batchable(models: Sequence[nn.Module]) -> None:
    """Raise ``ValueError`` unless ``models`` can be trained side by side by :func:`train_networks`:
    at least one network, all of one class with the same parameter names and shapes, every
    parameter trainable, no buffers (BatchNorm running statistics) and no dropout."""
    if len(models) == 0:
        raise ValueError("batched training needs at least one network")
    first = models[0]
    shapes = [(name, tuple(p.shape), p.dtype) for name, p in first.named_parameters()]
    for i, model in enumerate(models):
        if type(model) is not type(first):
            raise ValueError(
                f"network {i} is a {type(model).__name__}, network 0 a {type(first).__name__}; batched training needs one architecture"
            )
        if [
            (name, tuple(p.shape), p.dtype) for name, p in model.named_parameters()
        ] != shapes:
            raise ValueError(
                f"network {i} has other parameter names or shapes than network 0; batched training needs one architecture"
            )
        buffers = [name for name, _ in model.named_buffers()]
        if buffers:
            raise ValueError(
                f"batched training does not support networks with buffers (BatchNorm running statistics are updated "
                f"in place, which vmap over stacked networks does not reproduce); network {i} has {buffers[:3]}. "
                "Use instancenorm/groupnorm/layernorm/none, or the sequential path"
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


def train_networks(
    models: Sequence[nn.Module],
    images: torch.Tensor,
    labels: torch.Tensor,
    config,
    *,
    generators: Sequence[torch.Generator],
    learning_rate: float | torch.Tensor | None = None,
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
    One :class:`~fairdd.evaluate.TrainLog` per network. ``train_time_s`` of each is the wall
    time of the whole batched loop divided by N (the amortised cost per network, so that sums
    over rows compare with sequential runs). The models are left in training mode with their
    trained weights.
    """

    models = list(models)
    generators = list(generators)
    num = len(models)
    check_batchable_config(config)
    check_batchable(models)
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
    params, _ = stack_module_state(models)
    params = {name: p.detach().clone() for name, p in params.items()}
    # The stateless copy that functional_call runs with the stacked parameters.
    base = copy.deepcopy(models[0]).to("meta")

    def loss_fn(
        p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor
    ) -> torch.Tensor:
        out = functional_call(base, p, (x,))
        return F.cross_entropy(out.float(), y)

    step_fn = vmap(grad_and_value(loss_fn))  # over (params, x, y), all stacked on dim 0

    rate = torch.tensor(rates, dtype=torch.float32, device=device)
    same_rate = len(set(rates)) == 1
    momentum, weight_decay = config.momentum, config.weight_decay
    bufs: dict[str, torch.Tensor] | None = None
    n, bs = images.shape[0], config.batch_size
    epoch_lr: list[list[float]] = []
    epoch_loss_sums: list[torch.Tensor] = []
    _sync(device)
    start = time.perf_counter()
    factor = 1.0
    for epoch in range(config.epochs):
        if epoch == config.decay_epoch:
            factor = config.lr_decay_factor
            if config.reset_momentum_at_decay:
                bufs = None
        lrs = [r * factor for r in rates]
        epoch_lr.append(lrs)
        step_rate = rate * factor
        loss_sum = torch.zeros(num, device=device)
        orders = torch.stack(
            [
                torch.randperm(n, generator=g, device=g.device).to(device)
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
            grads, loss = step_fn(params, x, y)
            with torch.no_grad():
                first_step = bufs is None
                if first_step and momentum != 0:
                    bufs = {}
                for name, p in params.items():
                    d_p = grads[name]
                    if weight_decay != 0:
                        d_p = d_p.add(p, alpha=weight_decay)
                    if momentum != 0:
                        if first_step:
                            bufs[name] = d_p.clone()
                        else:
                            bufs[name].mul_(momentum).add_(d_p)
                        d_p = bufs[name]
                    if same_rate:
                        p.add_(d_p, alpha=-lrs[0])
                    else:
                        p.sub_(d_p * step_rate.view(-1, *([1] * (p.dim() - 1))))
                if momentum == 0:
                    bufs = {}  # not None: "a step was made" (no buffers are kept without momentum)
            loss_sum += loss.detach() * idx.shape[1]
        epoch_loss_sums.append(loss_sum)
    _sync(device)
    elapsed = time.perf_counter() - start
    losses = (torch.stack(epoch_loss_sums) / n).T.tolist()  # (num, epochs)
    with torch.no_grad():
        for i, model in enumerate(models):
            for name, p in model.named_parameters():
                p.copy_(params[name][i])
    return [
        TrainLog(
            epoch_lr=[lrs[i] for lrs in epoch_lr],
            epoch_loss=losses[i],
            train_time_s=elapsed / num,
        )
        for i in range(num)
    ]
