"""What a training loop reports, shared by every trainer of the package.

:func:`fairdd.evaluate.train_network` (one network), :func:`fairdd.batched.train_networks`
(several side by side) and :func:`fairdd.kd.fit` (teachers and students) each return one
:class:`TrainLog` per network.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["TrainLog", "sync"]


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


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA), so that a wall-clock reading means something."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
