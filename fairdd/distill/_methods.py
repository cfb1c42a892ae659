"""The table of image-distillation methods and the one call, :func:`distill`.

:data:`METHODS` lists every method explicitly: name → :class:`Method` (its config class, its
run function, its profile configs). Nothing registers itself on import; a new method is one
more row here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import torch

from fairdd.config import check_choice, check_profile, check_seed
from fairdd.data._container import check_training_inputs
from fairdd.data import Dataset
from fairdd.distill import dc, dm, mtt
from fairdd.distill._common import (
    Callback,
    DistillConfig,
    SyntheticSet,
    check_checkpoint_dir,
    check_images_per_class,
    resolve_device,
)

__all__ = ["METHODS", "Method", "config_for", "distill"]


@dataclass(frozen=True)
class Method:
    """One row of :data:`METHODS`.

    Attributes
    ----------
    config : the method's config class (a :class:`~fairdd.distill._common.DistillConfig`).
    run : ``run(train, cfg, *, images_per_class, seed, checkpoint_dir, progress, device,
        sample_weights, callback) -> SyntheticSet``; called by :func:`distill` after it has
        validated the arguments.
    for_profile : ``for_profile(profile) -> config`` for ``"smoke"``, ``"cpu"``, ``"paper"``.
    """

    config: type[DistillConfig]
    run: Callable[..., SyntheticSet]
    for_profile: Callable[[str], DistillConfig]


#: Every image-distillation method: name (``config.method``) → :class:`Method`. DC and DSA
#: share one config class and run function (DSA is ``DCConfig(augment=True)``).
METHODS: Mapping[str, Method] = MappingProxyType(
    {
        "dc": Method(dc.DCConfig, dc.run, lambda profile: dc.DCConfig.for_profile(profile, augment=False)),
        "dsa": Method(dc.DCConfig, dc.run, lambda profile: dc.DCConfig.for_profile(profile, augment=True)),
        "dm": Method(dm.DMConfig, dm.run, dm.DMConfig.for_profile),
        "mtt": Method(mtt.MTTConfig, mtt.run, mtt.MTTConfig.for_profile),
    }
)


def config_for(method: str, profile: str) -> DistillConfig:
    """The config of ``method`` (``"dc"``, ``"dsa"``, ``"dm"``, ``"mtt"``) for a run profile.

    ``"paper"`` is the reference setting; ``"cpu"`` a stated reduction that runs in minutes on
    2 CPU cores; ``"smoke"`` seconds, for CI. Each method module documents its reductions.
    """
    check_choice("method", method, tuple(METHODS))
    check_profile(profile)
    return METHODS[method].for_profile(profile)


def distill(
    train: Dataset,
    config: DistillConfig,
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
    method = METHODS.get(config.method) if isinstance(config, DistillConfig) else None
    if method is None or type(config) is not method.config:
        raise ValueError(
            f"config={type(config).__name__} is not a distillation config; "
            f"choose one of {sorted({m.config.__name__ for m in METHODS.values()})}"
        )
    check_images_per_class(images_per_class)
    check_seed("seed", seed)
    if train.inputs.dim() != 4:
        raise ValueError(f"train.inputs has shape {tuple(train.inputs.shape)}; image distillation needs (N, C, H, W)")
    check_training_inputs("train.inputs", train.inputs)
    if checkpoint_dir is not None:
        check_checkpoint_dir(checkpoint_dir)
    return method.run(
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
