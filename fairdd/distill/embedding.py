"""Dataset distillation of feature vectors with learnable labels and step sizes (Han et al.).

Han et al. (2022), "Towards Fair Supervised Dataset Distillation for Text Classification",
after Wang et al. (2018) and Sucholutsky & Schonlau (2021); our reading of
HanXudong/Fair_Dataset_Distillation@8332c08 (``train_distilled_image.py``, ``basics.py``).

The distilled set is ``size`` *steps*; step s holds one synthetic vector per class
``x̃_s`` (C, D), learnable soft labels ``ỹ_s = softmax(ℓ_s)`` (C, C) and, for every one of
the ``T = size · distill_epochs`` unrolled steps, a step size ``η̃_t = softplus(ρ_t)``.
From a fixed θ0 (Xavier-normal weights, zero biases, known to distillation and retraining)

    θ_{t+1} = θ_t − η̃_t ∇_θ CE(f(x̃_{t mod size}; θ_t), ỹ_{t mod size})      t = 0 … T−1

and the outer loss ``CE(f(x; θ_T), y)`` on a real minibatch is minimised over (x̃, ℓ, ρ) by
Adam, backpropagating through all T unrolled steps. Retraining a model on the distilled set
replays the same T steps from θ0. Debiasing acts only while distilling: BTEO restricts the
real data to a group-balanced subset; ADV subtracts ``λ · CE(D(h(x; θ_T)), g)`` from the outer
loss, after one update of the discriminator D per outer step (the paper's Algorithm 1).

Differences from the reference code, each deliberate:

- labels are softmax-parameterised targets over C outputs (the paper's description); the
  reference code feeds raw, unconstrained targets to a 1-output BCE for two classes and to a
  soft cross-entropy otherwise, initialised at 0. ``label_init=0`` (uniform targets) is our
  analogue of that uninformative start.
- predictions are ``argmax`` of the logits; the reference thresholds a binary logit at 0.5.
- the schedule counts outer steps, not passes over the real data (``iterations``,
  ``decay_every``), and the data are reshuffled at each pass; the reference's StepLR is stepped
  per pass, before it, so its first decay comes one pass early.
- BTEO, counted in steps, costs per step what DD costs; the reference's BTEO is faster in
  seconds (Table 2) because its passes over the smaller balanced set are shorter.
- the discriminator reads the MLP's last hidden state after tanh (``MLP.hidden``); the
  reference reads it before the activation.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from fairdd.config import check_choice, check_int, check_number
from fairdd.data import Dataset
from fairdd.debias import DEBIAS, DebiasedMLPConfig, Debias, Discriminator, balanced_indices
from fairdd.models import MLP, init_theta0
from fairdd.seeding import ADVERSARY, BALANCE, BATCHES, SYNTHETIC, THETA0, stream_generator

__all__ = [
    "Debias",
    "DEBIAS",
    "DistilledSteps",
    "EmbeddingDDConfig",
    "EmbeddingDDResult",
    "distill_embeddings",
    "hidden_and_logits",
    "predict",
    "replay",
    "retrain",
    "unroll",
]

@dataclass(frozen=True)
class _DistillSchedule:
    """:class:`EmbeddingDDConfig`'s own fields (before the shared ones, see
    :class:`~fairdd.debias.DebiasedMLPConfig`)."""

    size: int = 10
    distill_epochs: int = 5
    iterations: int = 4900
    batch_size: int = 1024
    lr: float = 0.01
    betas: tuple[float, float] = (0.5, 0.999)
    decay_every: int = 980
    decay_factor: float = 0.5
    init_step_size: float = 0.01
    label_init: float = 0.0

    def __post_init__(self) -> None:
        for name in ("size", "distill_epochs", "iterations", "batch_size", "decay_every"):
            check_int(name, getattr(self, name), minimum=1)
        for name in ("lr", "init_step_size"):
            check_number(name, getattr(self, name), minimum=0.0, strict_minimum=True)
        check_number("decay_factor", self.decay_factor, minimum=0.0, maximum=1.0, strict_minimum=True)
        check_number("label_init", self.label_init)
        if len(self.betas) != 2 or not all(isinstance(b, float) and 0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas={self.betas!r} must be two floats in [0, 1)")


@dataclass(frozen=True)
class EmbeddingDDConfig(DebiasedMLPConfig, _DistillSchedule):
    """Han et al.'s distillation, defaults from the reference's MOJI scripts (``Scripts/Moji_*``).

    Attributes
    ----------
    size : distillation steps = synthetic vectors per class (``--distill_steps``; Table 1 uses 10).
    distill_epochs : times the steps are cycled in the unroll (``--distill_epochs``: MOJI 5, BIOS 3).
    iterations : outer steps (real minibatches). The reference runs ``--epochs`` passes over the
        data: MOJI 50 × ⌈100 000 / 1024⌉ = 4900 steps (the default), BIOS 30 × 251 = 7530. We count
        steps rather than passes because the cost is per step and data sets differ 20-fold in size.
    batch_size : real minibatch of the outer loss (reference 1024); the data are reshuffled at
        every pass.
    lr, betas : outer Adam over vectors, label logits and step sizes (reference 0.01, (0.5, 0.999)).
    decay_every, decay_factor : StepLR on the outer Adam, in outer steps (reference: halve every
        10 passes, 980 steps on MOJI).
    init_step_size : η̃ at the start, every unrolled step (reference ``--distill_lr 0.01``).
    label_init : logit of a vector's own class at the start, others 0 (0: uniform targets).
    hidden, debias, adv_lambda, adv_units, adv_lr, preserve_class_share, seed : the shared
        fields of :class:`~fairdd.debias.DebiasedMLPConfig` (as the full-data baselines';
        debiasing acts while distilling); ``seed`` also seeds the synthetic init.
    """

    @property
    def unrolled_steps(self) -> int:
        """T = size · distill_epochs, the number of gradient steps of a retraining."""
        return self.size * self.distill_epochs


@dataclass
class DistilledSteps:
    """The learned synthetic set.

    Attributes
    ----------
    vectors : (size, C, D) synthetic vectors, row c of step s labelled towards class c.
    label_logits : (size, C, C) label logits; the targets are ``softmax(label_logits, -1)``.
    raw_step_sizes : (T,) pre-softplus step sizes, one per unrolled step.
    """

    vectors: torch.Tensor
    label_logits: torch.Tensor
    raw_step_sizes: torch.Tensor

    @property
    def size(self) -> int:
        return self.vectors.shape[0]

    @property
    def step_sizes(self) -> torch.Tensor:
        """(T,) η̃ = softplus(ρ)."""
        return F.softplus(self.raw_step_sizes)

    @property
    def targets(self) -> torch.Tensor:
        """(size, C, C) soft labels."""
        return torch.softmax(self.label_logits, dim=-1)

    def detach(self) -> "DistilledSteps":
        return DistilledSteps(self.vectors.detach(), self.label_logits.detach(), self.raw_step_sizes.detach())

    def parameters(self) -> list[torch.Tensor]:
        return [self.vectors, self.label_logits, self.raw_step_sizes]


@dataclass
class EmbeddingDDResult:
    """What :func:`distill_embeddings` returns.

    ``theta0`` is needed to retrain (:func:`replay`); ``history`` holds the outer loss per
    iteration, the wall seconds of each outer step (``step_seconds``) and, for ADV, the
    adversary's loss; ``discriminator_steps`` counts the
    discriminator's optimiser steps (one per outer iteration for ADV, else 0).
    """

    steps: DistilledSteps
    theta0: dict[str, torch.Tensor]
    iterations: int
    seconds: float
    train_rows: int
    discriminator_steps: int = 0
    history: dict[str, list[float]] = field(default_factory=dict)


def _soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over rows of −Σ_c t_c log softmax(z)_c; (B, C), (B, C) → scalar."""
    return -(targets * F.log_softmax(logits, dim=-1)).sum(-1).mean()


def unroll(
    model: nn.Module,
    theta0: dict[str, torch.Tensor],
    steps: DistilledSteps,
    *,
    distill_epochs: int,
    create_graph: bool = True,
) -> dict[str, torch.Tensor]:
    """The T = size · distill_epochs gradient steps on the distilled set, from θ0.

    With ``create_graph=True`` the returned θ_T is differentiable w.r.t. the vectors, label
    logits and step sizes of ``steps`` (distillation); with False it is the plain retraining
    (:func:`replay`) and nothing keeps a graph.
    """
    rates = steps.step_sizes
    targets = steps.targets
    if rates.numel() != steps.size * distill_epochs:
        raise ValueError(f"{rates.numel()} step sizes for size={steps.size} × distill_epochs={distill_epochs}")
    names = list(theta0)
    # θ0 itself is a constant: a fresh leaf that autograd.grad can differentiate against.
    params = {k: v.detach().requires_grad_() for k, v in theta0.items()}
    for t in range(rates.numel()):
        s = t % steps.size
        with torch.enable_grad():
            loss = _soft_cross_entropy(functional_call(model, params, (steps.vectors[s],)), targets[s])
            grads = torch.autograd.grad(loss, [params[k] for k in names], create_graph=create_graph)
        if create_graph:
            params = {k: params[k] - rates[t] * g for k, g in zip(names, grads)}
        else:
            with torch.no_grad():
                params = {k: (params[k] - rates[t] * g).requires_grad_() for k, g in zip(names, grads)}
    return params if create_graph else {k: v.detach() for k, v in params.items()}


def replay(model: nn.Module, theta0: dict[str, torch.Tensor], steps: DistilledSteps, *, distill_epochs: int) -> dict[str, torch.Tensor]:
    """Retrain: replay the learned steps from θ0 with everything detached; returns θ_T."""
    return unroll(model, theta0, steps.detach(), distill_epochs=distill_epochs, create_graph=False)


class _HiddenAndLogits(nn.Module):
    """Runs ``net.hidden`` then ``net.classifier`` once, so ADV needs one forward pass."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.net.hidden(x)
        return h, self.net.classifier(h)


def hidden_and_logits(model: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(hidden state, logits) of an :class:`~fairdd.models.MLP` at ``params``: (B, H), (B, C)."""
    return functional_call(_HiddenAndLogits(model), {f"net.{k}": v for k, v in params.items()}, (x,))


@torch.no_grad()
def predict(model: nn.Module, params: dict[str, torch.Tensor], inputs: torch.Tensor, *, batch_size: int = 8192) -> torch.Tensor:
    """Predicted classes (N,) int64 of the model at ``params``, in batches."""
    out = [functional_call(model, params, (inputs[i : i + batch_size],)).argmax(-1) for i in range(0, len(inputs), batch_size)]
    return torch.cat(out) if out else torch.empty(0, dtype=torch.int64, device=inputs.device)


def _check_train(train: Dataset, debias: str) -> None:
    if train.inputs.dim() != 2:
        raise ValueError(f"train.inputs has shape {tuple(train.inputs.shape)}; expected (N, D) feature vectors")
    if debias != "none" and train.attributes is None:
        raise ValueError(f"debias={debias!r} needs train.attributes (the protected groups); {train.name} has none")


def _minibatches(n: int, batch_size: int, generator: torch.Generator, device: torch.device | str) -> Iterator[torch.Tensor]:
    """Endless minibatch indices: a fresh permutation per pass, the last batch of a pass may be short."""
    while True:
        order = torch.randperm(n, generator=generator).to(device)
        yield from order.split(batch_size)


def distill_embeddings(
    train: Dataset,
    config: EmbeddingDDConfig,
    *,
    device: torch.device | str = "cpu",
    num_groups: int | None = None,
) -> EmbeddingDDResult:
    """Distil ``train`` (feature vectors) into ``config.size`` steps of one vector per class.

    Parameters
    ----------
    train : training split, inputs (N, D); ``attributes`` needed for BTEO and ADV.
    config : the distillation's settings (see :class:`EmbeddingDDConfig`).
    device : where the unroll runs; all random draws happen on CPU first, so a seed gives the
        same start on any device.
    num_groups : protected groups the discriminator predicts (default: max attribute + 1).

    Returns
    -------
    EmbeddingDDResult
        The learned steps (detached, on CPU), θ0 and the run's bookkeeping.
    """
    _check_train(train, config.debias)
    start = time.perf_counter()
    num_classes, dim = train.num_classes, train.inputs.shape[1]
    model = MLP(dim, num_classes, hidden=config.hidden).to(device)
    theta0 = init_theta0(model, stream_generator(config.seed, THETA0))
    theta0_dev = {k: v.to(device) for k, v in theta0.items()}

    if config.debias == "bteo":
        train = train.subset(balanced_indices(
            train.labels, train.attributes, generator=stream_generator(config.seed, BALANCE),
            preserve_class_share=config.preserve_class_share,
        ))
    x_all, y_all = train.inputs.to(device), train.labels.to(device)
    g_all = train.attributes.to(device) if train.attributes is not None else None

    g = stream_generator(config.seed, SYNTHETIC)
    vectors = torch.randn(config.size, num_classes, dim, generator=g)  # (S, C, D), reference torch.randn
    label_logits = config.label_init * torch.eye(num_classes).expand(config.size, -1, -1).clone()  # (S, C, C)
    # softplus⁻¹(η0) = log(e^η0 − 1), so the first step sizes are exactly init_step_size.
    raw = torch.full((config.unrolled_steps,), float(np.log(np.expm1(config.init_step_size))))
    steps = DistilledSteps(*(t.to(device).requires_grad_() for t in (vectors, label_logits, raw)))

    optimizer = torch.optim.Adam(steps.parameters(), lr=config.lr, betas=config.betas)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.decay_every, gamma=config.decay_factor)
    disc = disc_opt = None
    if config.debias == "adv":
        groups = num_groups if num_groups is not None else int(train.attributes.max()) + 1
        width = config.hidden[-1]
        disc = Discriminator(width, groups, units=config.adv_units, generator=stream_generator(config.seed, ADVERSARY)).to(device)
        disc_opt = torch.optim.Adam(disc.parameters(), lr=config.adv_lr)

    batches = stream_generator(config.seed, BATCHES)
    history: dict[str, list[float]] = {"loss": [], "step_seconds": []} | ({"adv_loss": []} if disc is not None else {})
    for _, idx in zip(range(config.iterations), _minibatches(len(train), config.batch_size, batches, device)):
        step_start = time.perf_counter()
        theta_t = unroll(model, theta0_dev, steps, distill_epochs=config.distill_epochs, create_graph=True)
        h, logits = hidden_and_logits(model, theta_t, x_all[idx])
        loss = F.cross_entropy(logits, y_all[idx])
        history["loss"].append(float(loss.detach()))
        if disc is not None:
            # Algorithm 1, lines 6–8: one discriminator step on the detached hidden state,
            # then the updated discriminator's loss enters the outer loss with weight −λ.
            disc_opt.zero_grad(set_to_none=True)
            F.cross_entropy(disc(h.detach()), g_all[idx]).backward()
            disc_opt.step()
            adv = F.cross_entropy(disc(h), g_all[idx])
            history["adv_loss"].append(float(adv.detach()))
            loss = loss - config.adv_lambda * adv
        optimizer.zero_grad(set_to_none=True)
        loss.backward(inputs=steps.parameters())
        optimizer.step()
        scheduler.step()
        history["step_seconds"].append(time.perf_counter() - step_start)  # loss.item() above synchronised
    disc_steps = 0
    if disc_opt is not None:
        disc_steps = int(disc_opt.state[next(iter(disc.parameters()))]["step"])
    learned = DistilledSteps(*(t.detach().cpu() for t in steps.parameters()))
    return EmbeddingDDResult(
        steps=learned,
        theta0=theta0,
        iterations=len(history["loss"]),
        seconds=time.perf_counter() - start,
        train_rows=len(train),
        discriminator_steps=disc_steps,
        history=history,
    )


def retrain(
    steps: DistilledSteps, theta0: dict[str, torch.Tensor], *, distill_epochs: int, hidden: Sequence[int] = (300, 300),
    device: torch.device | str = "cpu",
) -> tuple[nn.Module, dict[str, torch.Tensor], float]:
    """A fresh MLP retrained on the distilled set: (model, θ_T, seconds)."""
    start = time.perf_counter()
    num_classes, dim = steps.vectors.shape[1], steps.vectors.shape[2]
    model = MLP(dim, num_classes, hidden=tuple(hidden)).to(device)
    dev_steps = DistilledSteps(*(t.to(device) for t in (steps.vectors, steps.label_logits, steps.raw_step_sizes)))
    params = replay(model, {k: v.to(device) for k, v in theta0.items()}, dev_steps, distill_epochs=distill_epochs)
    return model, params, time.perf_counter() - start
