"""fairdd.data.stratified_index: the one class-stratified draw, against the loops it replaced.

The oracles below are the three copies the package had before (fairdd.data.stratified_subset,
fairdd.evaluate.random_subset, the KD study's test-split draw), written out as they were, so a
change of the shared draw that would change a recorded run fails here.
"""

from __future__ import annotations

import pytest
import torch

from fairdd.data import Dataset, stratified_index, stratified_subset
from fairdd.evaluate import random_subset


def _old_row_order(labels: torch.Tensor, num_classes: int, per_class: int, seed: int) -> torch.Tensor:
    """fairdd.data.stratified_subset (and the KD study's test draw) before stratified_index."""
    generator = torch.Generator().manual_seed(seed)
    keep = []
    for c in range(num_classes):
        rows = (labels == c).nonzero().flatten()
        keep.append(rows[torch.randperm(rows.numel(), generator=generator)[:per_class]])
    return torch.cat(keep).sort().values


def _old_draw_order(labels: torch.Tensor, classes: list[str], per_class: int, seed: int) -> torch.Tensor:
    """fairdd.evaluate.random_subset before stratified_index."""
    generator = torch.Generator().manual_seed(seed)
    picks = []
    for k in range(len(classes)):
        rows = torch.nonzero(labels == k).flatten()
        if rows.numel() < per_class:
            raise ValueError(f"images_per_class={per_class!r} exceeds the {rows.numel()} rows of class {k} ({classes[k]!r})")
        picks.append(rows[torch.randperm(rows.numel(), generator=generator)[:per_class]])
    return torch.cat(picks)


def _data(labels: torch.Tensor, num_classes: int) -> Dataset:
    n = labels.numel()
    return Dataset(
        name="toy",
        split="train",
        inputs=torch.arange(n, dtype=torch.float32).reshape(n, 1, 1, 1),
        labels=labels,
        classes=tuple(f"c{k}" for k in range(num_classes)),
    )


@pytest.mark.parametrize("seed", [0, 1, 7, 2**40])
@pytest.mark.parametrize("per_class", [1, 3, 9, 50])
def test_stratified_index_draws_as_the_old_loops(seed: int, per_class: int) -> None:
    g = torch.Generator().manual_seed(100 + seed % 97)
    labels = torch.randint(0, 6, (200,), generator=g)
    labels[labels == 2] = 4  # an empty class in the middle
    expected = _old_row_order(labels, 6, per_class, seed)
    assert torch.equal(stratified_index(labels, per_class, seed, keep_order=True), expected)
    data = _data(labels, 6)
    assert torch.equal(stratified_subset(data, per_class, seed).inputs.flatten().long(), expected)

    full = torch.arange(10).repeat_interleave(torch.arange(20, 30))  # classes of 20..29 rows
    if per_class <= 20:
        old = _old_draw_order(full, [f"c{k}" for k in range(10)], per_class, seed)
        assert torch.equal(stratified_index(full, per_class, seed, keep_order=False), old)
        assert torch.equal(random_subset(_data(full, 10), per_class, seed=seed).inputs.flatten().long(), old)
        # Same rows both ways; only the order differs.
        assert torch.equal(old.sort().values, stratified_index(full, per_class, seed, keep_order=True))


def test_random_subset_raises_for_a_short_class_as_before() -> None:
    labels = torch.arange(4).repeat_interleave(torch.tensor([5, 5, 2, 5]))
    with pytest.raises(ValueError) as old:
        _old_draw_order(labels, ["c0", "c1", "c2", "c3"], 3, 0)
    with pytest.raises(ValueError) as new:
        random_subset(_data(labels, 4), 3, seed=0)
    assert str(new.value) == str(old.value) == "images_per_class=3 exceeds the 2 rows of class 2 ('c2')"
    # A class with no rows at all, after the last label, is short too.
    with pytest.raises(ValueError, match="0 rows of class 4"):
        random_subset(_data(labels, 5), 2, seed=0)


def test_stratified_index_checks_its_input() -> None:
    with pytest.raises(ValueError, match="per_class=0"):
        stratified_index(torch.tensor([0, 1]), 0, 0, keep_order=True)
    with pytest.raises(ValueError, match="seed=-1"):
        stratified_index(torch.tensor([0, 1]), 1, -1, keep_order=True)
    assert stratified_index(torch.empty(0, dtype=torch.long), 2, 0, keep_order=False).numel() == 0


def test_stratified_index_over_chosen_classes_draws_as_sample_grid_did() -> None:
    """fairdd.plots.sample_grid's old loop: the chosen classes, in the given order."""
    labels = torch.randint(0, 5, (120,), generator=torch.Generator().manual_seed(0))
    for rows in ([3, 1], [0, 4, 2], [2]):
        generator = torch.Generator().manual_seed(5)
        old = [(labels == c).nonzero().view(-1) for c in rows]
        old = torch.cat([m[torch.randperm(m.numel(), generator=generator)[:8]] for m in old])
        assert torch.equal(stratified_index(labels, 8, 5, keep_order=False, classes=rows), old)
    with pytest.raises(ValueError, match="must be distinct"):
        stratified_index(labels, 2, 0, keep_order=False, classes=[1, 1])
