"""Trifeature: the combination split, label semantics, rendering and determinism."""

from __future__ import annotations

import pytest
import torch

from fairdd.data import generate_trifeature, load_dataset, split_combinations
from fairdd.data._trifeature import COLOURS, SHAPES, TEXTURES, _shape_templates


def test_combination_split_800_200_disjoint_and_seeded() -> None:
    train, test = split_combinations(0)
    assert train.numel() == 800 and test.numel() == 200
    assert torch.equal(torch.cat([train, test]).sort().values, torch.arange(1000))
    assert torch.equal(split_combinations(0)[1], test)
    assert not torch.equal(split_combinations(1)[1], test)
    # Balanced: every value of every feature, and every pair of values, is held out alike.
    features = torch.stack([test // 100, test // 10 % 10, test % 10])
    for f in range(3):
        assert features[f].bincount(minlength=10).tolist() == [20] * 10
        for g in range(f + 1, 3):
            assert (features[f] * 10 + features[g]).bincount(minlength=100).tolist() == [2] * 100
    train_r, test_r = split_combinations(0, balanced=False)
    assert test_r.numel() == 200 and torch.cat([train_r, test_r]).unique().numel() == 1000


def test_splits_hold_disjoint_combinations_and_label_semantics() -> None:
    train = load_dataset("trifeature", "train", samples_per_combination=1, image_size=16)
    test = load_dataset("trifeature", "test", samples_per_combination=2, image_size=16, target="texture", attribute="shape")
    assert train.inputs.shape == (800, 3, 16, 16) and len(test) == 400
    assert train.classes == SHAPES and train.attribute_values == tuple(COLOURS)
    assert test.classes == TEXTURES and test.attribute_name == "shape"
    # Every feature value appears, balanced: 80 training images per shape.
    assert train.labels.bincount().tolist() == [80] * 10
    combos_train, combos_test = split_combinations(0)
    shape, colour = combos_train // 100, combos_train % 10
    assert torch.equal(train.labels, shape) and torch.equal(train.attributes, colour)
    texture = (combos_test // 10 % 10).repeat_interleave(2)
    assert torch.equal(test.labels, texture) and torch.equal(test.attributes, (combos_test // 100).repeat_interleave(2))


def test_solid_square_area_colour_and_background() -> None:
    size, n = 64, 12
    images = generate_trifeature(
        torch.full((n,), SHAPES.index("square")), torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.long),
        image_size=size, generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    red = images[:, 0] - images[:, 1]  # 0.5 - 0.5 = 0 on grey, 1 - 0 = 1 on the red square
    side = size * 128 / 224
    # Rotation keeps the area: the coverage sums to the template's area in canvas pixels.
    torch.testing.assert_close(red.sum(dim=(1, 2)), torch.full((n,), side**2), rtol=0.01, atol=0)
    assert (red.amax(dim=(1, 2)) == 1).all()  # interior pixels are exactly red
    inside = (red == 1).unsqueeze(1)  # (n, 1, H, W)
    torch.testing.assert_close(
        images.permute(1, 0, 2, 3)[:, inside[:, 0]], torch.tensor([[1.0], [0.0], [0.0]]).expand(3, int(inside.sum())), rtol=0, atol=0
    )
    grey = (red == 0).unsqueeze(1).expand(-1, 3, -1, -1)
    assert images[grey].eq(0.5).all()
    assert images.min() >= 0 and images.max() <= 1


def test_texture_coverage_fractions() -> None:
    # Over many positions, the on-fraction of a texture inside a square is its rule's density.
    n, size = 40, 64
    square = torch.full((n,), SHAPES.index("square"))
    white = torch.full((n,), list(COLOURS).index("white"))
    generator = torch.Generator().manual_seed(1)
    coverage = {}
    for t, name in enumerate(TEXTURES):
        images = generate_trifeature(square, torch.full((n,), t), white, image_size=size, generator=generator)
        coverage[name] = ((images[:, 0] - 0.5) * 2).sum().item()
    solid = coverage["solid"]
    assert coverage["stripes"] / solid == pytest.approx(0.3, abs=0.03)  # 3 of 10 rows
    assert coverage["grid"] / solid == pytest.approx(1 - 0.7 * 0.7, abs=0.03)
    assert coverage["noise"] / solid == pytest.approx(0.5, abs=0.03)
    rain = 1 - (1 - 0.05) ** 7  # a unit is wet if any of the 7 units above it started a streak
    assert coverage["rain"] / solid == pytest.approx(rain, abs=0.04)
    assert all(0.05 < v / solid < 0.8 for k, v in coverage.items() if k != "solid")


def test_templates_are_distinct_shapes() -> None:
    templates = _shape_templates()
    assert templates.shape == (10, 128, 128)
    flat = templates.view(10, -1)
    assert (flat.sum(1) > 0.2 * 128 * 128).all()
    assert torch.cdist(flat, flat).add(torch.eye(10) * 1e9).min() > 10  # no two alike


def test_deterministic_under_seed_and_splits_differ() -> None:
    kwargs = dict(image_size=16, samples_per_combination=1)
    a = load_dataset("trifeature", "test", seed=3, **kwargs)
    b = load_dataset("trifeature", "test", seed=3, **kwargs)
    c = load_dataset("trifeature", "test", seed=4, **kwargs)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.attributes, c.attributes) and not torch.equal(a.inputs, c.inputs)


def test_validation() -> None:
    with pytest.raises(ValueError, match="attribute"):
        load_dataset("trifeature", "train", target="shape", attribute="shape")
    with pytest.raises(ValueError, match="target"):
        load_dataset("trifeature", "train", target="size")
    with pytest.raises(ValueError, match="samples_per_combination"):
        load_dataset("trifeature", "train", samples_per_combination=0)
    with pytest.raises(ValueError, match="textures"):
        generate_trifeature(torch.tensor([0]), torch.tensor([10]), torch.tensor([0]))
