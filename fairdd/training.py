"""What a training loop reports, shared by every trainer of the package, and the small device
helpers every training loop uses (:func:`sync`, :func:`autocast`, :func:`to_device`) and the
one place a study's device is chosen (:func:`default_device`).

:func:`fairdd.evaluate.train_network` (one network), :func:`fairdd.batched.train_networks`
(several side by side) and :func:`fairdd.kd.fit` (teachers and students) each return one
:class:`TrainLog` per network.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import sys
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["TrainLog", "autocast", "default_device", "keep_freed_memory", "sync", "to_device"]


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


#: glibc ``mallopt`` parameters (``<malloc.h>``): ``M_TRIM_THRESHOLD`` and ``M_MMAP_THRESHOLD``.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: Blocks up to this size come from the heap and are reused; larger ones are still mapped and
#: returned to the system when freed (a ConvNet-128 activation at batch 256 is 128 MiB).
MMAP_THRESHOLD_BYTES = 512 * 1024 * 1024
_kept: bool | None = None


def keep_freed_memory() -> bool:
    """Make this process's C allocator keep freed blocks for reuse, instead of handing every
    large block back to the system on ``free``; returns whether it could (glibc only).

    Why: PyTorch's CPU tensors come from ``malloc``. glibc serves a block above its mmap
    threshold (128 KiB, raised dynamically to at most 32 MiB) with a fresh ``mmap`` and
    ``munmap``s it on ``free``, and trims the heap's top when more than twice that is free. A
    training step allocates and frees the same activation- and gradient-sized blocks every
    step (a ConvNet-32 at batch 256 on 28×28 images has 32 MiB maps), so each step page-faults
    all of them in again and the kernel zeroes every page: time that the profiler
    (``benchmarks/bench_profile.py``) shows inside whichever operation first writes the new
    tensor. Raising both thresholds (``mallopt(M_MMAP_THRESHOLD, 512 MiB)``,
    ``mallopt(M_TRIM_THRESHOLD, 2**31 - 1)``) keeps those blocks in the heap for the next step.
    The same effect as the ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` environment
    variables, set from inside the process. The values computed do not change (only where the
    memory comes from); the cost is that the process keeps its peak heap resident until it
    exits. Process-wide and idempotent; called by :meth:`fairdd.models.NetworkSpec.build` for
    a spec with ``fast_kernels=True``. Does nothing (returns ``False``) off glibc.
    """
    global _kept
    if _kept is None:
        _kept = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                mallopt = libc.mallopt
            except (OSError, AttributeError):
                return False
            mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
            _kept = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    return _kept
