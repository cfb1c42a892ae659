"""The field's evaluation protocol: train fresh networks on a (synthetic) set, test them.

Reference: VICO-UoE/DatasetCondensation@53f63a6 ``utils.py`` (``evaluate_synset``, ``epoch``)
and ``main.py``: SGD with momentum 0.9 and weight decay 5e-4, learning rate 0.01 multiplied by
0.1 at half the epochs, batch 256, 300 epochs without augmentation and 1000 with DSA, 20 fresh
networks per synthetic set. Each of those constants is an :class:`EvalConfig` field here.

Where we differ from the reference, on purpose and documented:

- The reference runs ``epochs + 1`` epochs and drops the rate after epoch ``epochs//2 + 1``
  (152 + 149 epochs for "300"). We run exactly ``epochs`` epochs, the first
  ``int(epochs · lr_decay_fraction)`` at the full rate (150 + 150).
- The reference rebuilds the optimiser at the drop, which clears the momentum buffers; that is
  the field ``reset_momentum_at_decay`` (default True, as the reference).
- Seeds: the reference seeds each network from the clock; here network ``i`` of an evaluation
  with seed ``s`` gets ``(init_seed, data_seed)`` from ``numpy.random.SeedSequence([s, i])``
  (:func:`fairdd.seeding.network_seeds`), one for θ0 and one for the shuffling and
  augmentation generator.
- Data are tensors on one device, shuffled by ``randperm`` with an explicit generator (no
  DataLoader); the last, smaller batch of an epoch is kept, as the reference's DataLoader does.
- Only DSA is offered as training-time augmentation (the DC code's non-differentiable
  crop/scale/rotate for MNIST is not reproduced).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fairdd.augment import DEFAULT_STRATEGY, DSAParams, check_dsa, dsa
from fairdd.batched import check_batchable_config, train_networks
from fairdd.config import check_choice, check_int, check_number
from fairdd.data import Dataset, stratified_index
from fairdd.data._container import check_training_inputs
from fairdd.models import NetworkSpec
from fairdd.seeding import generator as seeded_generator
from fairdd.seeding import network_seeds
from fairdd.training import TrainLog, to_device
from fairdd.training import autocast as _autocast
from fairdd.training import sync as _sync

__all__ = [
    "EvalConfig",
    "TrainLog",
    "accuracy_report",
    "evaluate_synthetic",
    "evaluate_whole_set",
    "network_seeds",
    "predict",
    "random_subset",
    "train_network",
]

Precision = Literal["fp32", "bf16"]


@dataclass(frozen=True)
class EvalConfig:
    """How a synthetic (or real) set is evaluated.

    Attributes
    ----------
    network : the network trained, a :class:`fairdd.models.NetworkSpec` (reference ConvNet
        128/3/instancenorm), e.g. ``NetworkSpec(width=32)`` or ``NetworkSpec(model="mlp")``.
    epochs : training epochs per network; ``None`` means the reference's 1000 with DSA and 300
        without.
    lr : SGD learning rate (reference ``lr_net`` 0.01); MTT's learned rate overrides it per call.
    momentum : SGD momentum (reference 0.9, hard-coded in ``evaluate_synset``).
    weight_decay : SGD L2 penalty (reference 5e-4, hard-coded).
    lr_decay_factor : the rate is multiplied by this once (reference 0.1).
    lr_decay_fraction : the drop happens at epoch ``int(epochs · lr_decay_fraction)`` (reference
        one half; see the module notes for the reference's off-by-one).
    reset_momentum_at_decay : clear the momentum buffers at the drop, as the reference's
        rebuilt optimiser does.
    batch_size : training minibatch (reference ``batch_train`` 256).
    eval_batch_size : test-time batch; affects only speed and memory.
    dsa : augment every training minibatch with DSA (one family per batch, per-image
        parameters, as the reference's ``epoch(aug=True)``).
    dsa_strategy : DSA families (:data:`fairdd.augment.DEFAULT_STRATEGY`; use
        :data:`fairdd.augment.DIGITS_STRATEGY` for digits).
    dsa_params : DSA constants.
    num_networks : fresh networks trained per evaluation (reference ``num_eval`` 20).
    compile : wrap each network in ``torch.compile``. The first compilation in a process is a
        one-off cost, later fresh networks of the same shape reuse it, so it can pay only on
        long runs. Default off. To measure the gain and the compile time on a machine:
        ``python benchmarks/bench_models.py`` (one thread, 256×1×28×28 SGD steps; columns
        ``speedup_vs_eager`` and ``warmup_s`` of ``benchmarks/results/bench_models.json``).
    channels_last : hold the network and images in channels-last memory format. Off by default,
        meant for GPUs; the same benchmark's ``channels_last`` rows measure it on a machine.
    precision : ``"bf16"`` runs forward and backward under bfloat16 autocast (meant for GPUs);
        parameters, optimiser and loss stay float32.
    side_by_side : train the ``num_networks`` networks side by side in one vmapped step
        (:mod:`fairdd.batched`) instead of one after another — what
        :func:`evaluate_synthetic` does unless its own ``side_by_side`` argument says otherwise. The
        same θ0, data order, augmentation draws and schedule; weights equal the sequential ones
        within float tolerance, not bit for bit, so the field is part of the run id when set
        (and left out at its default, so earlier runs keep their ids). Meant for GPUs, where
        one small network cannot fill the device; ``benchmarks/bench_throughput.py`` measures
        the ratio on a machine. Not with ``compile`` or ``channels_last``.
    """

    network: NetworkSpec = field(default_factory=NetworkSpec)
    epochs: int | None = None
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_decay_factor: float = 0.1
    lr_decay_fraction: float = 0.5
    reset_momentum_at_decay: bool = True
    batch_size: int = 256
    eval_batch_size: int = 1024
    dsa: bool = False
    dsa_strategy: str = DEFAULT_STRATEGY
    dsa_params: DSAParams = field(default_factory=DSAParams)
    num_networks: int = 20
    compile: bool = False
    channels_last: bool = False
    precision: Precision = "fp32"
    side_by_side: bool = field(default=False, metadata={"run_id": "unless_default"})

    def __post_init__(self) -> None:
        if not isinstance(self.network, NetworkSpec):
            raise ValueError(f"network={self.network!r} must be a fairdd.models.NetworkSpec")
        for name in ("dsa", "reset_momentum_at_decay", "compile", "channels_last", "side_by_side"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} must be True or False")
        if self.epochs is None:
            object.__setattr__(self, "epochs", 1000 if self.dsa else 300)
        check_int("epochs", self.epochs, minimum=1)
        check_number("lr", self.lr, minimum=0.0, strict_minimum=True)
        check_number("momentum", self.momentum, minimum=0.0, maximum=1.0)
        if self.momentum == 1.0:
            raise ValueError(f"momentum={self.momentum!r} must be < 1")
        check_number("weight_decay", self.weight_decay, minimum=0.0)
        check_number("lr_decay_factor", self.lr_decay_factor, minimum=0.0, maximum=1.0, strict_minimum=True)
        check_number("lr_decay_fraction", self.lr_decay_fraction, minimum=0.0, maximum=1.0)
        check_int("batch_size", self.batch_size, minimum=1)
        check_int("eval_batch_size", self.eval_batch_size, minimum=1)
        check_dsa(self.dsa_strategy, self.dsa_params)
        check_int("num_networks", self.num_networks, minimum=1)
        check_choice("precision", self.precision, ("fp32", "bf16"))
        if self.side_by_side:
            check_batchable_config(self)

    @property
    def decay_epoch(self) -> int:
        """First epoch trained at the lowered rate."""
        return int(self.epochs * self.lr_decay_fraction)

    @property
    def model(self) -> str:
        """``network.model`` (read-only; what the rows' ``model`` column holds)."""
        return self.network.model

    @property
    def model_kwargs(self) -> tuple[tuple[str, Any], ...]:
        """``network.kwargs()`` as sorted pairs (read-only view for callers still building with
        :func:`fairdd.models.build_model`; prefer ``network.build(...)``)."""
        return tuple(sorted(self.network.kwargs().items()))


def train_network(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    config: EvalConfig,
    *,
    generator: torch.Generator,
    learning_rate: float | torch.Tensor | None = None,
) -> TrainLog:
    """Train ``model`` in place on a tensor set with the protocol of ``config``.

    Parameters
    ----------
    model : the network; moved to ``images.device``.
    images : ``(N, C, H, W)`` or ``(N, D)`` on the training device (detached here).
    labels : ``(N,)`` int64 classes, or ``(N, K)`` float soft labels (probabilities, as learned
        labels are), trained with cross-entropy against them.
    config : the protocol (epochs, optimiser, schedule, augmentation, speed options).
    generator : source of the shuffling and the DSA draws (any device; draws are moved).
    learning_rate : overrides ``config.lr`` (MTT's learned synthetic rate; a tensor is read once).

    Returns
    -------
    A :class:`TrainLog`; the model is left in training mode with its trained weights.
    """
    device = images.device
    images, labels = images.detach(), labels.detach()
    if labels.shape[0] != images.shape[0] or labels.dim() not in (1, 2):
        raise ValueError(f"labels has shape {tuple(labels.shape)}; expected ({images.shape[0]},) or ({images.shape[0]}, K)")
    if config.dsa and images.dim() != 4:
        raise ValueError(f"dsa=True needs images (N, C, H, W); got shape {tuple(images.shape)}")
    lr = config.lr if learning_rate is None else float(learning_rate)
    check_number("learning_rate", lr, minimum=0.0, strict_minimum=True)
    if labels.dim() == 2:
        labels = labels.float()
    channels_last = config.channels_last and images.dim() == 4
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    model.train()
    forward = torch.compile(model) if config.compile else model
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=config.momentum, weight_decay=config.weight_decay)
    n, bs = images.shape[0], config.batch_size
    epoch_lr: list[float] = []
    epoch_loss_sums: list[torch.Tensor] = []  # kept on the device: one host sync at the end
    _sync(device)
    start = time.perf_counter()
    for epoch in range(config.epochs):
        if epoch == config.decay_epoch:
            for group in optimizer.param_groups:
                group["lr"] = lr * config.lr_decay_factor
            if config.reset_momentum_at_decay:
                optimizer.state.clear()
        epoch_lr.append(float(optimizer.param_groups[0]["lr"]))
        loss_sum = torch.zeros((), device=device)
        order = to_device(torch.randperm(n, generator=generator, device=generator.device), device)
        for first in range(0, n, bs):
            idx = order[first : first + bs]
            x, y = images[idx], labels[idx]
            if config.dsa:
                x = dsa(x, config.dsa_strategy, generator=generator, params=config.dsa_params)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with _autocast(device, config.precision):
                out = forward(x)
            loss = F.cross_entropy(out.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * idx.shape[0]
        epoch_loss_sums.append(loss_sum)
    _sync(device)
    elapsed = time.perf_counter() - start
    losses = (torch.stack(epoch_loss_sums) / n).tolist()
    return TrainLog(epoch_lr=epoch_lr, epoch_loss=losses, train_time_s=elapsed)


def predict(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    batch_size: int = 1024,
    channels_last: bool = False,
    precision: Precision = "fp32",
) -> torch.Tensor:
    """Predicted classes ``(N,)`` int64 (on ``inputs.device``), in eval mode, without autograd.

    The model's train/eval mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    device = inputs.device
    preds = []
    with torch.inference_mode():
        for first in range(0, inputs.shape[0], batch_size):
            x = inputs[first : first + batch_size]
            if channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            with _autocast(device, precision):
                preds.append(model(x).argmax(dim=1))
    model.train(was_training)
    return torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long, device=device)


def accuracy_report(predictions: torch.Tensor, test: Dataset) -> dict[str, float]:
    """Accuracies of ``predictions`` on ``test``, as a flat row.

    Keys: ``accuracy``; ``acc_class_k`` for every class k; and when ``test.attributes`` is set,
    ``acc_group_a`` for every attribute value a, ``worst_group_accuracy`` (over the values
    present), ``acc_bias_aligned`` and ``acc_bias_conflicting`` (samples whose attribute equals /
    differs from their label: the bias-ratio construction of Lu et al. 2024, "Exploring the
    Impact of Dataset Bias on Dataset Distillation", where attribute value a is the colour or
    corruption spuriously tied to class a). An empty subset gives NaN.

    The rates are :mod:`fairdd.metrics`' (:func:`~fairdd.metrics.accuracy`,
    :func:`~fairdd.metrics.classwise_accuracy`, :func:`~fairdd.metrics.group_accuracy`,
    :func:`~fairdd.metrics.bias_aligned_accuracy`), rounded to float32: the precision of the
    float32 tensor means this report took before, so rows match the run store's earlier rows.
    """
    from fairdd import metrics

    def f32(value: float) -> float:
        return float(np.float32(value))  # NaN stays NaN

    labels, predicted = test.labels.cpu(), predictions.cpu()
    row: dict[str, float] = {"accuracy": f32(metrics.accuracy(labels, predicted))}
    for k, acc in enumerate(metrics.classwise_accuracy(labels, predicted, num_classes=test.num_classes)):
        row[f"acc_class_{k}"] = f32(acc)
    if test.attributes is not None:
        attrs = test.attributes.cpu()
        n_values = len(test.attribute_values) if test.attribute_values else int(attrs.max().item()) + 1
        by_group = metrics.group_accuracy(labels, predicted, sensitive_features=attrs)
        groups = [f32(by_group.get(a, float("nan"))) for a in range(n_values)]
        for a, acc in enumerate(groups):
            row[f"acc_group_{a}"] = acc
        present = [g for g in groups if g == g]
        row["worst_group_accuracy"] = min(present) if present else float("nan")
        split = metrics.bias_aligned_accuracy(labels, predicted, bias_attributes=attrs)
        row["acc_bias_aligned"] = f32(split["aligned"])
        row["acc_bias_conflicting"] = f32(split["conflicting"])
    return row


def evaluate_synthetic(
    images: torch.Tensor,
    labels: torch.Tensor,
    test: Dataset,
    config: EvalConfig,
    *,
    seed: int,
    learning_rate: float | torch.Tensor | None = None,
    keep_predictions: bool = False,
    side_by_side: bool | None = None,
) -> list[dict[str, Any]]:
    """Train ``config.num_networks`` fresh networks on ``(images, labels)`` and test each.

    Parameters
    ----------
    images, labels : the training set (synthetic or real), on the device to train on; labels
        ``(N,)`` int64 or ``(N, K)`` soft.
    test : the test set; moved to ``images.device``. Its ``num_classes`` sizes the networks.
    config : the protocol.
    seed : experiment seed; network i uses :func:`network_seeds` ``(seed, ...)[i]``.
    learning_rate : overrides ``config.lr`` (MTT's learned synthetic rate).
    keep_predictions : add ``"predictions"`` (CPU int64 tensor over the test set) to each row,
        for fairness metrics computed elsewhere.
    side_by_side : ``None`` (default): as ``config.side_by_side``. ``True``: train the networks side by
        side in one vmapped step
        (:func:`fairdd.batched.train_networks`) instead of one after another: the same θ0,
        data order, DSA draws and schedule, the same rows; the weights agree with the
        sequential ones within float tolerance (not bit for bit), and each row's
        ``train_time_s`` is the batched wall time divided by the number of networks. Off by
        default (no recorded result changes); rejects, before any training, what it does not
        support (dropout, ``compile``, ``channels_last``). Batch norm and ``bf16`` are batched
        too (see :mod:`fairdd.batched`).

    Returns
    -------
    One row per network: ``network``, ``seed``, ``init_seed``, ``data_seed``, ``model``,
    ``epochs``, ``lr``, ``train_time_s``, ``final_train_loss``, ``num_train``, and the keys of
    :func:`accuracy_report`.
    """
    device = images.device
    if images.dim() == 4:
        channels, image_size = images.shape[1], images.shape[-1]
    elif images.dim() == 2:
        channels, image_size = images.shape[1], None
    else:
        raise ValueError(f"images has shape {tuple(images.shape)}; expected (N, C, H, W) or (N, D)")
    # Everything that would fail (or mislead) after the training is checked before it.
    check_training_inputs("images", images)
    if labels.shape[0] != images.shape[0] or labels.dim() not in (1, 2):
        raise ValueError(f"labels has shape {tuple(labels.shape)}; expected ({images.shape[0]},) or ({images.shape[0]}, K)")
    if labels.dim() == 1:
        if labels.dtype.is_floating_point or labels.dtype == torch.bool:
            raise ValueError(f"labels must be int64 class indices (or (N, K) soft labels), got dtype {labels.dtype}")
        if int(labels.min()) < 0 or int(labels.max()) >= test.num_classes:
            raise ValueError(
                f"labels hold classes {int(labels.min())}..{int(labels.max())}; the test set has {test.num_classes} classes"
            )
    elif labels.shape[1] != test.num_classes or not bool(torch.isfinite(labels).all()):
        raise ValueError(f"soft labels have shape {tuple(labels.shape)} (finite); the test set has {test.num_classes} classes")
    if len(test) == 0:
        raise ValueError(f"the test set {test.name!r} ({test.split}) is empty")
    if tuple(test.inputs.shape[1:]) != tuple(images.shape[1:]):
        raise ValueError(
            f"the test set's inputs are {tuple(test.inputs.shape[1:])} per sample but the training images are "
            f"{tuple(images.shape[1:])}; resize one to the other before evaluating"
        )
    if side_by_side is None:
        side_by_side = config.side_by_side
    if not isinstance(side_by_side, bool):
        raise ValueError(f"side_by_side={side_by_side!r} must be True, False or None")
    if side_by_side:
        check_batchable_config(config)
    test = test.to(device)
    lr = config.lr if learning_rate is None else float(learning_rate)
    seeds = network_seeds(seed, config.num_networks)
    if side_by_side:
        models = [config.network.build(channels, test.num_classes, image_size, seed=s) for s, _ in seeds]
        generators = [seeded_generator(d, device=device) for _, d in seeds]
        logs = train_networks(models, images, labels, config, generators=generators, learning_rate=lr)
    rows = []
    for i, (init_seed, data_seed) in enumerate(seeds):
        if side_by_side:
            model, log = models[i], logs[i]
        else:
            model = config.network.build(channels, test.num_classes, image_size, seed=init_seed)
            generator = seeded_generator(data_seed, device=device)
            log = train_network(model, images, labels, config, generator=generator, learning_rate=lr)
        preds = predict(
            model,
            test.inputs,
            batch_size=config.eval_batch_size,
            channels_last=config.channels_last,
            precision=config.precision,
        )
        row: dict[str, Any] = {
            "network": i,
            "seed": seed,
            "init_seed": init_seed,
            "data_seed": data_seed,
            "model": config.network.model,
            "epochs": config.epochs,
            "lr": lr,
            "num_train": int(images.shape[0]),
            "train_time_s": log.train_time_s,
            "final_train_loss": log.epoch_loss[-1],
            **accuracy_report(preds, test),
        }
        if keep_predictions:
            row["predictions"] = preds.cpu()
        rows.append(row)
    return rows


def evaluate_whole_set(
    train: Dataset,
    test: Dataset,
    config: EvalConfig,
    *,
    seed: int,
    epochs: int | None = None,
    device: torch.device | str | None = None,
) -> list[dict[str, Any]]:
    """The whole-training-set baseline on the same protocol.

    ``epochs`` overrides ``config.epochs``: a full set has thousands of batches per epoch, so
    the synthetic-set epoch counts (300/1000) are neither needed nor affordable; the override
    is recorded in each row's ``epochs``.
    """
    if epochs is not None:
        config = dataclasses.replace(config, epochs=epochs)
    train = train.to(device) if device is not None else train
    return evaluate_synthetic(train.inputs, train.labels, test, config, seed=seed)


def random_subset(train: Dataset, images_per_class: int, *, seed: int) -> Dataset:
    """A class-stratified random subset: ``images_per_class`` rows of every class, class by class
    in draw order (:func:`fairdd.data.stratified_index` with ``keep_order=False``).

    Raises ``ValueError`` when a class has fewer rows than requested.
    """
    check_int("images_per_class", images_per_class, minimum=1)
    counts = torch.bincount(train.labels.cpu(), minlength=train.num_classes)
    for k, n in enumerate(counts.tolist()):
        if n < images_per_class:
            raise ValueError(f"images_per_class={images_per_class!r} exceeds the {n} rows of class {k} ({train.classes[k]!r})")
    index = stratified_index(train.labels, images_per_class, seed, keep_order=False)
    return train.subset(index.to(train.labels.device))
