"""What a training loop reports, shared by every trainer of the package, and the small device
helpers every training loop uses (:func:`sync`, :func:`autocast`, :func:`to_device`) and the
one place a study's device is chosen (:func:`default_device`).

:func:`fairdd.evaluate.train_network` (one network), :func:`fairdd.batched.train_networks`
(several side by side) and :func:`fairdd.kd.fit` (teachers and students) each return one
:class:`TrainLog` per network.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["TrainLog", "autocast", "default_device", "sync", "to_device"]


@dataclass(frozen=True)
class TrainLog:
    """What one training run did.

    Attributes
    ----------
    epoch_lr : the learning rate during each epoch.
    epoch_loss : mean training loss of each epoch (per sample, over the possibly augmented batches).
    train_time_s : wall time of the training loop in seconds.
    """

    epoch_lr: list[float]
    epoch_loss: list[float]
    train_time_s: float


def default_device() -> str:
    """Where a study computes: ``"cuda"`` when a GPU is available, else ``"cpu"`` — chosen here
    once, at compute time (not a config or cell field: the device changes no result beyond float
    tolerance, and a run's provenance records it)."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA), so that a wall-clock reading means something."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    """bfloat16 autocast on ``device`` when ``precision == "bf16"``, else nothing (float32).

    Parameters, optimiser state and the loss stay float32 either way; only the forward (and so
    the backward) of autocast-eligible operations (convolutions, matrix products) runs in bf16.
    """
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_device(tensor: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """``tensor`` on ``device``, the same values, without a host sync where one can be avoided.

    From the CPU to a CUDA device the copy goes through pinned (page-locked) memory with
    ``non_blocking=True``: the host queues it and goes on, where a plain ``.to(device)`` from
    pageable memory waits until the copy, and so all work queued before it, is done. PyTorch's
    pinned-memory allocator keeps the staging buffer until the copy has run. Anywhere else (on
    the CPU, or already on the device) it is ``tensor.to(device)``, so CPU results are untouched.
    """
    device = torch.device(device)
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)
