"""fairdd.seeding: every derived seed, pinned to its recipe and to fixed values.

The values are what the package produced before the recipes moved here; a change to any of
them changes every number that depends on it, so these tests must never be "updated".
"""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest
import torch

from fairdd import seeding


def test_network_seeds_recipe_and_values() -> None:
    assert seeding.network_seeds(0, 2) == [(2968811710, 3677149159), (3964924996, 1358922860)]
    expected = [tuple(int(s) for s in np.random.SeedSequence([7, i]).generate_state(2)) for i in range(3)]
    assert seeding.network_seeds(7, 3) == expected
    with pytest.raises(ValueError, match="seed=-1"):
        seeding.network_seeds(-1, 1)


def test_stream_generator_recipe_and_values() -> None:
    draw = int(torch.randint(0, 2**62, (1,), generator=seeding.stream_generator(0, seeding.THETA0)))
    assert draw == 656692032850886226
    state = np.random.SeedSequence([4, 2]).generate_state(1, dtype=np.uint64)[0]
    ref = torch.Generator().manual_seed(int(state) & (2**63 - 1))
    assert torch.equal(torch.rand(5, generator=seeding.stream_generator(4, 2)), torch.rand(5, generator=ref))
    assert seeding.STREAMS == {"theta0": 0, "synthetic": 1, "batches": 2, "balance": 3, "adversary": 4, "validation": 5}
    draws = {float(torch.rand(1, generator=seeding.stream_generator(0, s))) for s in seeding.STREAMS.values()}
    assert len(draws) == len(seeding.STREAMS)


def test_data_seed_recipe_and_values() -> None:
    assert (seeding.data_seed(0, 0), seeding.data_seed(3, 2)) == (3831201730, 1760858510)
    assert seeding.data_seed(5, 1) == int(np.random.SeedSequence([5, 1, 1]).generate_state(1)[0])
    # The trailing 1 keeps data seeds apart from the evaluation's network seeds.
    assert seeding.data_seed(0, 0) not in seeding.network_seeds(0, 1)[0]


def test_expert_seed_recipe_and_values() -> None:
    assert (seeding.expert_seed(0, 0), seeding.expert_seed(1, 5)) == (2063314722204324586, 3309096184870982078)
    digest = hashlib.sha256(b"mtt-expert:2:3").digest()
    assert seeding.expert_seed(2, 3) == int.from_bytes(digest[:8], "little") >> 2 < 2**62


def test_draw_seed_and_generator() -> None:
    assert seeding.draw_seed(seeding.generator(0)) == 900450186894289455
    g = seeding.generator(3)
    assert torch.equal(torch.rand(4, generator=g), torch.rand(4, generator=torch.Generator().manual_seed(3)))
    with pytest.raises(ValueError, match="seed=-2"):
        seeding.generator(-2)


def test_subset_seeds_are_the_studies_earlier_data_seed_and_data_seed_plus_one() -> None:
    # The KD and class-wise studies seeded their train/test subsets with data_seed and data_seed + 1.
    assert [seeding.subset_seeds(d) for d in (0, 3)] == [(0, 1), (3, 4)]
    with pytest.raises(ValueError, match="data_seed=-1"):
        seeding.subset_seeds(-1)


def test_draw_seed_draws_on_the_generators_device() -> None:
    # The KD group-balanced batches' generator: the draw it made before it went through draw_seed.
    g, h = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    assert seeding.draw_seed(g) == int(torch.randint(0, 2**62, (1,), generator=h, device=h.device))


def test_trifeature_seed() -> None:
    assert [seeding.trifeature_seed(s, split) for s in (0, 1) for split in ("train", "test")] == [1, 2, 3, 4]


def test_torch_seeded_leaves_the_global_rng() -> None:
    before = torch.get_rng_state()
    with seeding.torch_seeded(9):
        a = torch.rand(3)
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(9)
    assert torch.equal(a, torch.rand(3))


def test_debias_and_embedding_do_not_import_each_other_in_a_circle() -> None:
    code = (
        "import sys, fairdd.debias; "
        "assert 'fairdd.distill.embedding' not in sys.modules, 'debias imports embedding'; "
        "import fairdd.seeding; assert 'fairdd.distill' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
