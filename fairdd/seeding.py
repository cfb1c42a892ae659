"""Every derived seed of the package, in one place.

A run is given one integer ``seed``; each random use inside it (a network's θ0, the shuffling
of its batches, the bias assignment of a split, ...) gets its own seed or generator derived
from it here, so that changing how one use draws leaves the others exactly as they were. The
recipes are fixed: changing one changes every number that depends on it (run ids of the run
store do not record them), so add a new function rather than editing an old one.

The recipes, and what each is for:

- :func:`generator` — ``torch.Generator(device).manual_seed(seed)``: the one generator of a
  distillation run (:func:`fairdd.distill.distill`), of a class-stratified subset, of a data
  set's train/test split (``split_seed``) and of the bias assignments of ``fairdd.data``.
- :func:`draw_seed` — ``torch.randint(0, 2**62, (1,), generator=g)``: the init seed of each
  fresh network a distillation builds, drawn from the run's generator (so it is part of the
  checkpointed generator state).
- :func:`torch_seeded` — a block run under ``torch.manual_seed(seed)`` inside
  ``torch.random.fork_rng``: how :func:`fairdd.models.build_model` initialises θ0 without
  touching the caller's global RNG.
- :func:`network_seeds` — ``(init_seed, data_seed)`` of network ``i`` of an evaluation, the
  two 32-bit words of ``numpy.random.SeedSequence([seed, i])``.
- :func:`stream_generator` with the stream constants :data:`THETA0` ... :data:`VALIDATION` —
  one generator per use for Han et al. 2022, "Towards Fair Supervised Dataset Distillation for
  Text Classification" (embedding distillation and its full-data baselines): the low 63 bits of
  the 64-bit word of ``SeedSequence([seed, stream])``.
- :func:`data_seed` — the bias study's data seeds: the first 32-bit word of
  ``SeedSequence([seed, purpose, 1])`` (the trailing 1 keeps them apart from
  :func:`network_seeds`' ``SeedSequence([seed, i])`` for the same numbers).
- :func:`subset_seeds` — a study's class-stratified train/test subsets: ``(data_seed,
  data_seed + 1)``.
- :func:`expert_seed` — MTT expert ``i``: the first 8 bytes (little-endian) of
  ``sha256("mtt-expert:{expert_seed}:{i}")``, shifted right by 2 (a non-negative int63).
- :func:`kd_seeds` — the networks of Mohammadshahi & Ioannou, "What's Left After Distillation?
  How Knowledge Transfer Impacts Fairness and Bias": ``(init_seed, data_seed)`` of role ``r``
  (teacher 0, student 1) of seed ``s``, the two 32-bit words of ``SeedSequence([s, r, 3])`` (the
  trailing 3 keeps them apart from :func:`network_seeds` and :func:`data_seed`).
- :func:`trifeature_seed` — the Trifeature generator of a split: ``2·seed + 1`` (train) or
  ``2·seed + 2`` (test), so the two splits of one seed, and the splits of different seeds,
  never share a stream.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator

import numpy as np
import torch

from fairdd.config import check_int, check_seed

__all__ = [
    "ADVERSARY",
    "BALANCE",
    "BATCHES",
    "STREAMS",
    "SYNTHETIC",
    "THETA0",
    "VALIDATION",
    "data_seed",
    "subset_seeds",
    "draw_seed",
    "expert_seed",
    "generator",
    "kd_seeds",
    "network_seeds",
    "stream_generator",
    "torch_seeded",
    "trifeature_seed",
]

# Han et al.'s streams of a run's randomness (fairdd.distill.embedding, fairdd.debias):
#: θ0 of the MLP (Xavier-normal weights), shared by distillation, retraining and baselines.
THETA0 = 0
#: the initial synthetic vectors and labels of an embedding distillation.
SYNTHETIC = 1
#: the order of the real minibatches.
BATCHES = 2
#: the BTEO group-balanced subset.
BALANCE = 3
#: the adversary's (discriminator's) initial weights.
ADVERSARY = 4
#: the validation rows held out by the full-data baseline.
VALIDATION = 5
STREAMS: dict[str, int] = {
    "theta0": THETA0,
    "synthetic": SYNTHETIC,
    "batches": BATCHES,
    "balance": BALANCE,
    "adversary": ADVERSARY,
    "validation": VALIDATION,
}


def generator(seed: int, *, device: torch.device | str | None = None) -> torch.Generator:
    """``torch.Generator(device).manual_seed(seed)`` (CPU when ``device`` is ``None``).

    ``seed`` is an int in ``[0, 2**63 - 1]`` (:func:`fairdd.config.check_seed`)."""
    check_seed("seed", seed)
    g = torch.Generator() if device is None else torch.Generator(device=device)
    return g.manual_seed(seed)


def draw_seed(g: torch.Generator) -> int:
    """A seed in ``[0, 2**62)`` drawn from ``g`` (one ``randint`` draw, on ``g``'s device): a
    network's init seed in a distillation, the CPU generator of a KD student's group-balanced
    batches (:attr:`fairdd.kd.KDConfig.balanced_batches`)."""
    return int(torch.randint(0, 2**62, (1,), generator=g, device=g.device))


@contextlib.contextmanager
def torch_seeded(seed: int | None) -> Iterator[None]:
    """Run the block under ``torch.manual_seed(seed)`` without touching the caller's global RNG.

    ``None``: run it as is, on the global RNG.
    """
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def network_seeds(seed: int, num_networks: int) -> list[tuple[int, int]]:
    """``(init_seed, data_seed)`` of each network of an evaluation: ``SeedSequence([seed, i])``."""
    check_seed("seed", seed)
    check_int("num_networks", num_networks, minimum=1)
    return [tuple(int(s) for s in np.random.SeedSequence([seed, i]).generate_state(2)) for i in range(num_networks)]


def stream_generator(seed: int, stream: int) -> torch.Generator:
    """A CPU generator for one named use (``stream``, see :data:`STREAMS`) of a run's ``seed``.

    ``SeedSequence([seed, stream])``'s first 64-bit word, its top bit cleared; streams never
    collide.
    """
    state = np.random.SeedSequence([seed, stream]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & (2**63 - 1))


def data_seed(seed: int, purpose: int) -> int:
    """The bias study's seed for one data purpose (train split, a test colouring, the probe's
    data, a subset): the first 32-bit word of ``SeedSequence([seed, purpose, 1])``.

    Why hash: both the attribute assignment and the random subsets / real initialisations draw
    per-class ``randperm``s; seeded alike (say both with 1) they pick the same positions, so a
    "random" subset would take one attribute block of each class. Hashing ``(seed, purpose)``
    keeps the streams unrelated to the experiment seeds 0, 1, 2, ...
    """
    return int(np.random.SeedSequence([seed, purpose, 1]).generate_state(1)[0])


def subset_seeds(data_seed: int) -> tuple[int, int]:
    """``(train, test)`` seeds of a study's class-stratified subsets
    (:meth:`fairdd.data.StudyData.load`): ``data_seed`` and ``data_seed + 1``, so the two
    splits' draws differ. (The bias study's splits use :func:`data_seed` instead.)"""
    check_int("data_seed", data_seed, minimum=0)
    return data_seed, data_seed + 1


def expert_seed(seed: int, i: int) -> int:
    """MTT expert ``i``'s generator seed from the config's ``expert_seed`` alone (not the
    distillation seed, so the expert buffer is shared): ``sha256`` of
    ``"mtt-expert:{seed}:{i}"``, first 8 bytes little-endian, ``>> 2``."""
    digest = hashlib.sha256(f"mtt-expert:{seed}:{i}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 2


def trifeature_seed(seed: int, split: str) -> int:
    """The Trifeature generator seed of a split: ``2·seed + 1`` (``"train"``), else ``2·seed + 2``."""
    return 2 * seed + (1 if split == "train" else 2)


def kd_seeds(seed: int, role: int) -> tuple[int, int]:
    """``(init_seed, data_seed)`` of Mohammadshahi & Ioannou's network ``role`` (0 teacher,
    1 student) of ``seed``: the two 32-bit words of ``SeedSequence([seed, role, 3])``. Every
    student of one seed (non-distilled, or distilled at any temperature) shares them."""
    check_int("seed", seed, minimum=0)
    check_int("role", role, minimum=0)
    words = np.random.SeedSequence([seed, role, 3]).generate_state(2)
    return int(words[0]), int(words[1])
