"""The table of image-distillation methods and the one call, :func:`distill`.

:data:`METHODS` lists every method explicitly: name → :class:`Method` (its config class, its
run function, its profile configs). Nothing registers itself on import; a new method is one
more row here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
    RunsCallback,
    SyntheticSet,
    check_checkpoint_dir,
    check_images_per_class,
    resolve_device,
)

__all__ = ["METHODS", "Method", "config_for", "distill", "distill_side_by_side"]


@dataclass(frozen=True)
class Method:
    """One row of :data:`METHODS`.

    Attributes
    ----------
    config : the method's config class (a :class:`~fairdd.distill._common.DistillConfig`).
    run : ``run(train, cfg, *, images_per_class, seed, checkpoint_dir, progress, device,
        sample_weights, callback) -> SyntheticSet``; called by :func:`distill` after it has
        validated the arguments.
    for_profile : ``for_profile(profile) -> config`` for ``"paper"`` (the reference) and
        ``"smoke"`` (the unit tests); a ``"cpu"`` protocol is a study's (it raises here).
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

    ``"paper"`` is the reference setting; ``"smoke"`` seconds, for the unit tests. A reduced
    (``"cpu"``) protocol is a study's: each study states its own configs (e.g.
    :meth:`fairdd.studies.methods.MethodsStudyConfig.for_profile`), so ``"cpu"`` raises
    ``ValueError`` naming where they are.
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
        :class:`fairdd.data.RealSampler`); ``None`` uses ``config.real_sampling``.
    callback : called as ``callback(iterations_done, loss)`` after each iteration (logging,
        early interruption in tests); raising from it stops the run after its checkpoint.

    Returns
    -------
    SyntheticSet
        Images and labels on the CPU, MTT's learned step size, and the loss log.
    """
    method = _check_config(config)
    check_images_per_class(images_per_class)
    check_seed("seed", seed)
    _check_train(train)
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


def distill_side_by_side(
    train: Dataset,
    config: DistillConfig,
    *,
    images_per_class: int,
    seeds: Sequence[int],
    checkpoint_dir: str | Path | None = None,
    progress: bool = False,
    device: torch.device | str | None = None,
    sample_weights: torch.Tensor | None = None,
    callback: RunsCallback | None = None,
) -> list[SyntheticSet]:
    """Distil ``train`` with DM for several seeds at once, side by side in one loop.

    Each seed's iteration makes the draws its sequential :func:`distill` makes (fresh network,
    real batches, DSA), and one vmapped forward/backward over the stacked networks updates the
    stacked synthetic sets of all seeds (:mod:`fairdd.distill.dm`, reference
    VICO-UoE/DatasetCondensation@53f63a6 ``main_DM.py``). The result equals
    ``[distill(train, config, images_per_class=images_per_class, seed=s, ...) for s in seeds]``
    within float tolerance (images and losses at rtol 1e-4 / atol 1e-5 after a few iterations,
    fp32 CPU), not bit for bit: the batched convolutions sum in another order, and
    ``config.channels_last`` is not used.

    Parameters
    ----------
    train : the real training set, images ``(N, C, H, W)`` already normalised by the caller.
    config : a :class:`DMConfig` with ``matching="class"`` and a network without BatchNorm,
        other buffers or dropout.
    images_per_class : synthetic images per class (IPC), >= 1; the same for every seed.
    seeds : the seeds, distinct, at least one; seed s's randomness is that of ``distill(...,
        seed=s)``.
    checkpoint_dir : folder for the one resumable checkpoint of all seeds (stacked images,
        optimiser state, every seed's generator state, the iteration, the loss logs), written
        every ``config.checkpoint_every`` iterations and at the end; a killed run started again
        with the same folder resumes bit for bit (CPU), and a checkpoint of another run (other
        seeds, config, data or IPC) is refused.
    progress : show a tqdm bar (its postfix: the mean loss over the seeds).
    device : where to compute (default: where ``train.inputs`` lives).
    sample_weights : optional ``(N,)`` per-sample weights for drawing real images (see
        :class:`fairdd.data.RealSampler`), shared by every seed; ``None`` uses ``config.real_sampling``.
    callback : called as ``callback(iterations_done, losses)``, ``losses`` a tuple of every
        seed's loss of that iteration; raising from it stops the run after its checkpoint.
        Losses are read back from the device each iteration only with a callback or
        ``progress``; otherwise at checkpoint boundaries and at the end.

    Returns
    -------
    list[SyntheticSet]
        One per seed, in the order of ``seeds``, each as :func:`distill` returns it.

    Raises
    ------
    ValueError
        Before any work, for what :func:`distill` refuses, for a config other than
        :class:`DMConfig`, ``matching="synchronized"``, a network with BatchNorm (or other
        buffers, or dropout), and an empty list of seeds or one with a seed twice.
    """
    _check_config(config)
    check_images_per_class(images_per_class)
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence):
        raise ValueError(f"seeds={seeds!r} must be a list of integer seeds")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds=[] is empty; give at least one seed")
    for i, seed in enumerate(seeds):
        check_seed(f"seeds[{i}]", seed)
    twice = sorted({s for s in seeds if seeds.count(s) > 1})
    if twice:
        raise ValueError(f"seeds={seeds!r} lists {twice} more than once; every seed must be distinct")
    _check_train(train)
    dm.check_side_by_side(train, config)
    if checkpoint_dir is not None:
        check_checkpoint_dir(checkpoint_dir)
    return dm.run_side_by_side(
        train,
        config,  # type: ignore[arg-type]
        images_per_class=images_per_class,
        seeds=seeds,
        checkpoint_dir=checkpoint_dir,
        progress=progress,
        device=resolve_device(device, train),
        sample_weights=sample_weights,
        callback=callback,
    )


def _check_config(config: DistillConfig) -> Method:
    """The row of :data:`METHODS` for ``config``; ``ValueError`` for anything else."""
    method = METHODS.get(config.method) if isinstance(config, DistillConfig) else None
    if method is None or type(config) is not method.config:
        raise ValueError(
            f"config={type(config).__name__} is not a distillation config; "
            f"choose one of {sorted({m.config.__name__ for m in METHODS.values()})}"
        )
    return method


def _check_train(train: Dataset) -> None:
    if train.inputs.dim() != 4:
        raise ValueError(f"train.inputs has shape {tuple(train.inputs.shape)}; image distillation needs (N, C, H, W)")
    check_training_inputs("train.inputs", train.inputs)
