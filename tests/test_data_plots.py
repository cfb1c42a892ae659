"""fairdd.plots: the image grid against torchvision, sample grids, count tables."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

from fairdd.data import Dataset  # noqa: E402
from fairdd.plots import attribute_table, image_grid, sample_grid, show_grids, show_samples  # noqa: E402


def toy(n_per_class: list[int], channels: int = 1) -> Dataset:
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(n_per_class)])
    images = labels.float().view(-1, 1, 1, 1).expand(-1, channels, 4, 5) / 10  # pixel = class / 10
    return Dataset("toy", "train", images.contiguous(), labels, tuple(f"c{i}" for i in range(len(n_per_class))),
                   attributes=labels.flip(0), attribute_name="a", attribute_values=tuple("xyz"))  # fmt: skip


@pytest.mark.parametrize(("n", "channels", "nrow", "padding"), [(7, 3, 3, 1), (7, 1, 10, 2), (1, 3, 1, 0), (12, 1, 4, 1)])
def test_image_grid_matches_torchvision(n: int, channels: int, nrow: int, padding: int) -> None:
    x = torch.rand(n, channels, 5, 6)
    torch.testing.assert_close(image_grid(x, nrow, padding=padding), make_grid(x, nrow=nrow, padding=padding, pad_value=1.0))


def test_sample_grid_rows_are_classes_with_blank_fill() -> None:
    grid = sample_grid(toy([3, 1, 2]), per_class=2, seed=0)
    assert grid.shape == (3, 3 * 5 + 1, 2 * 6 + 1)
    for row, values in enumerate([(0.0, 0.0), (0.1, 1.0), (0.2, 0.2)]):  # class 1 has one image: white fill
        for col, value in enumerate(values):
            tile = grid[:, 1 + 5 * row : 5 * row + 5, 1 + 6 * col : 6 * col + 6]
            assert torch.allclose(tile, torch.full_like(tile, value))


def test_attribute_table_counts_and_shares() -> None:
    d = toy([3, 1, 2])  # attributes = labels reversed: [2, 2, 1, 1, 0, 0]
    table = attribute_table(d)
    assert table.loc["c0"].tolist() == [0, 1, 2] and table.loc["c2"].tolist() == [2, 0, 0]
    assert list(table.columns) == ["x", "y", "z"] and table.columns.name == "a"
    assert attribute_table(d, normalize=True).sum(axis=1).tolist() == pytest.approx([1.0, 1.0, 1.0])


def test_figures_draw() -> None:
    d = toy([3, 4, 5], channels=3)
    ax = show_samples(d, per_class=3)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["c0", "c1", "c2"]
    fig = show_grids({"one": d, "two": d, "three": d}, per_class=2, ncols=2)
    assert len(fig.axes) == 4
    plt.close("all")
