"""Lu et al.'s bias construction: exact counts, colours, the ten corruptions; Dataset.concat,
normalize_splits and stratified_subset."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
import torch
from matplotlib.colors import hsv_to_rgb, rgb_to_hsv
from PIL import Image

from fairdd.data import (
    BIAS_RATIOS,
    COLOUR_NAMES,
    COLOURS,
    CORRUPTIONS,
    Dataset,
    apply_colour,
    apply_corruption,
    assign_attributes,
    bias_aligned,
    channel_stats,
    colorize,
    corrupt,
    make_biased,
    normalize,
    normalize_splits,
    stratified_subset,
)
from fairdd.data import _corruptions as C


def balanced_labels(n_per_class: int | list[int]) -> torch.Tensor:
    sizes = [n_per_class] * 10 if isinstance(n_per_class, int) else n_per_class
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(sizes)])
    return labels[torch.randperm(labels.numel(), generator=torch.Generator().manual_seed(5))]


def counts(labels: torch.Tensor, attributes: torch.Tensor) -> np.ndarray:
    return torch.bincount(labels * 10 + attributes, minlength=100).view(10, 10).numpy()


# --------------------------------------------------------------------------- attribute counts


def test_unbiased_ratio_gives_uniform_attributes() -> None:
    table = counts(labels := balanced_labels(1000), assign_attributes(labels, bias_ratio=0.1, seed=0))
    np.testing.assert_array_equal(table, np.full((10, 10), 100))


def test_ratio_zero_has_no_aligned_sample_and_hand_counted_spread() -> None:
    labels = balanced_labels(1000)
    attributes = assign_attributes(labels, bias_ratio=0.0, seed=0)
    assert not bias_aligned(labels, attributes).any()
    table = counts(labels, attributes)
    # Boundaries round(1000 · k/9) = 111, 222, 333, 444, 556, 667, 778, 889, 1000.
    np.testing.assert_array_equal(table[0], [0, 111, 111, 111, 111, 112, 111, 111, 111, 111])
    np.testing.assert_array_equal(table[5], [111, 111, 111, 111, 112, 0, 111, 111, 111, 111])


def test_ratio_one_is_fully_aligned() -> None:
    labels = balanced_labels([7, 13, 100, 1, 0, 5, 5, 9, 50, 2])
    assert bias_aligned(labels, assign_attributes(labels, bias_ratio=1.0, seed=3)).all()


@pytest.mark.parametrize("ratio", BIAS_RATIOS)
def test_counts_match_reference_formula_exactly(ratio: float) -> None:
    sizes = [1000, 997, 1013, 5, 0, 59, 860, 1, 333, 2000]
    labels = balanced_labels(sizes)
    table = counts(labels, assign_attributes(labels, bias_ratio=ratio, seed=1))
    for c, n in enumerate(sizes):
        # Independent restatement of the reference's milestones, one attribute at a time.
        share = [ratio if a == c else (1 - ratio) / 9 for a in range(10)]
        bounds = [0] + [int(np.round(n * sum(share[: a + 1]))) for a in range(10)]
        expected = np.diff(bounds)
        np.testing.assert_array_equal(table[c], expected)
        assert table[c].sum() == n
        assert np.all(np.abs(table[c] - n * np.array(share)) <= 1)  # "evenly", up to rounding


def test_assignment_is_deterministic_and_seeded() -> None:
    labels = balanced_labels(100)
    a = assign_attributes(labels, bias_ratio=0.5, seed=7)
    assert torch.equal(a, assign_attributes(labels, bias_ratio=0.5, seed=7))
    b = assign_attributes(labels, bias_ratio=0.5, seed=8)
    assert not torch.equal(a, b)
    np.testing.assert_array_equal(counts(labels, a), counts(labels, b))


@pytest.mark.parametrize("ratio", [-0.1, 1.5, float("nan"), True, "0.5"])
def test_bad_bias_ratio(ratio: object) -> None:
    with pytest.raises(ValueError, match="bias_ratio"):
        assign_attributes(balanced_labels(3), bias_ratio=ratio, seed=0)  # type: ignore[arg-type]


def test_bad_labels_and_seed() -> None:
    with pytest.raises(ValueError, match="labels"):
        assign_attributes(torch.tensor([0, 10]), bias_ratio=0.5)
    with pytest.raises(ValueError, match="labels"):
        assign_attributes(torch.tensor([0.0, 1.0]), bias_ratio=0.5)
    with pytest.raises(ValueError, match="seed"):
        assign_attributes(torch.tensor([0, 1]), bias_ratio=0.5, seed=-1)
    with pytest.raises(ValueError, match="shape"):
        bias_aligned(torch.tensor([0, 1]), torch.tensor([0]))


# --------------------------------------------------------------------------- colour


def test_colour_on_hand_made_image() -> None:
    # One 2×3 digit: full intensity, half intensity, background.
    digit = torch.tensor([[[[1.0, 0.5, 0.0], [0.0, 0.25, 1.0]]]])
    for attribute in range(10):
        out = apply_colour(digit, torch.tensor([attribute]), severity=5, seed=attribute)
        assert out.shape == (1, 3, 2, 3)
        colour = out[0, :, 0, 0]
        assert (colour - COLOURS[attribute]).abs().max() < 0.002 * 6  # σ = 0.002 at severity 5
        torch.testing.assert_close(out[0, :, 0, 1], 0.5 * colour)  # scaled by the intensity
        torch.testing.assert_close(out[0, :, 1, 1], 0.25 * colour)
        assert out[0, :, 0, 2].eq(0).all() and out[0, :, 1, 0].eq(0).all()  # background black


def test_colour_jitter_scale_by_severity() -> None:
    digits = torch.ones(4000, 1, 1, 1)
    attributes = torch.full((4000,), 2)  # mauve: far from 0 and 1, so no clipping
    for severity, sigma in {1: 0.05, 2: 0.02, 3: 0.01, 4: 0.005}.items():
        out = apply_colour(digits, attributes, severity=severity, seed=0).view(4000, 3)
        assert out.std(0).mean().item() == pytest.approx(sigma, rel=0.08)
        assert torch.allclose(out.mean(0), COLOURS[2], atol=4 * sigma / 60)


def test_colorize_counts_determinism_and_shapes() -> None:
    labels = balanced_labels(20)
    images = torch.rand(200, 1, 8, 8)
    x, a = colorize(images, labels, bias_ratio=0.95, severity=1, seed=3)
    assert x.shape == (200, 3, 8, 8) and x.min() >= 0 and x.max() <= 1 and a.dtype == torch.int64
    np.testing.assert_array_equal(np.diag(counts(labels, a)), [19] * 10)
    x2, a2 = colorize(images[:, 0], labels, bias_ratio=0.95, severity=1, seed=3)  # (N, H, W) input
    assert torch.equal(x, x2) and torch.equal(a, a2)
    assert torch.equal(a, assign_attributes(labels, bias_ratio=0.95, seed=3))


def test_colorize_validation() -> None:
    labels = balanced_labels(1)
    with pytest.raises(ValueError, match="severity"):
        colorize(torch.rand(10, 1, 4, 4), labels, bias_ratio=0.5, severity=6)
    with pytest.raises(ValueError, match="grey"):
        colorize(torch.rand(10, 3, 4, 4), labels, bias_ratio=0.5, severity=1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        colorize(torch.rand(10, 1, 4, 4) * 255, labels, bias_ratio=0.5, severity=1)
    with pytest.raises(ValueError, match="entries"):
        colorize(torch.rand(9, 1, 4, 4), labels, bias_ratio=0.5, severity=1)
    with pytest.raises(ValueError, match="bias_ratio"):
        colorize(torch.rand(10, 1, 4, 4), labels, bias_ratio=2, severity=1)


# --------------------------------------------------------------------------- corruptions


@pytest.fixture(scope="module")
def colour_images() -> torch.Tensor:
    # Smooth random colour images (not pure noise, so blurs and JPEG have something to keep).
    g = torch.Generator().manual_seed(0)
    low = torch.rand(6, 3, 4, 4, generator=g)
    return torch.nn.functional.interpolate(low, size=16, mode="bilinear", align_corners=False).clamp(0.05, 0.95)


@pytest.mark.parametrize("severity", [1, 3, 5])
@pytest.mark.parametrize("attribute", range(10))
def test_each_corruption_changes_the_image_and_stays_in_range(
    colour_images: torch.Tensor, attribute: int, severity: int
) -> None:
    out = apply_corruption(colour_images, torch.full((6,), attribute), severity=severity, seed=0)
    assert out.shape == colour_images.shape and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    assert (out - colour_images).abs().mean() > 1e-3, CORRUPTIONS[attribute]
    again = apply_corruption(colour_images, torch.full((6,), attribute), severity=severity, seed=0)
    assert torch.equal(out, again)


def test_corrupt_grey_input_is_replicated() -> None:
    grey = torch.rand(20, 1, 12, 12)
    labels = balanced_labels(2)
    x, a = corrupt(grey, labels, bias_ratio=0.5, severity=2, seed=0)
    assert x.shape == (20, 3, 12, 12)
    x3, a3 = corrupt(grey.expand(-1, 3, -1, -1).clone(), labels, bias_ratio=0.5, severity=2, seed=0)
    assert torch.equal(a, a3) and torch.equal(x, x3)
    assert torch.equal(a, assign_attributes(labels, bias_ratio=0.5, seed=0))


def test_corrupt_validation() -> None:
    labels = balanced_labels(1)
    with pytest.raises(ValueError, match="severity"):
        corrupt(torch.rand(10, 3, 16, 16), labels, bias_ratio=0.5, severity=0)
    with pytest.raises(ValueError, match="severity"):
        corrupt(torch.rand(10, 3, 16, 16), labels, bias_ratio=0.5, severity=6)
    with pytest.raises(ValueError, match="expected"):
        corrupt(torch.rand(10, 2, 16, 16), labels, bias_ratio=0.5, severity=1)
    with pytest.raises(ValueError, match="too small"):
        corrupt(torch.rand(10, 3, 4, 4), labels, bias_ratio=0.5, severity=1)


def _hsv_oracle(images: torch.Tensor, fn) -> torch.Tensor:
    hsv = rgb_to_hsv(images.permute(0, 2, 3, 1).double().numpy())
    fn(hsv)
    return torch.from_numpy(hsv_to_rgb(hsv)).permute(0, 3, 1, 2).float()


@pytest.mark.parametrize("severity", range(1, 6))
def test_brightness_and_saturate_match_matplotlib_hsv(colour_images: torch.Tensor, severity: int) -> None:
    images = colour_images.clone()
    images[0, :, :4, :4] = 0.3  # grey pixels: hue 0 by convention
    images[1, :, :2, :2] = 0.0  # black pixels
    c = C.PARAMETERS["Brightness"][severity - 1]

    def brighten(hsv: np.ndarray) -> None:
        hsv[..., 2] = np.clip(hsv[..., 2] + c, 0, 1)

    ours = apply_corruption(images, torch.full((6,), 3), severity=severity)
    torch.testing.assert_close(ours, _hsv_oracle(images, brighten), atol=1e-5, rtol=0)
    s0, s1 = C.PARAMETERS["Saturate"][severity - 1]

    def saturate(hsv: np.ndarray) -> None:
        hsv[..., 1] = np.clip(hsv[..., 1] * s0 + s1, 0, 1)

    ours = apply_corruption(images, torch.full((6,), 9), severity=severity)
    torch.testing.assert_close(ours, _hsv_oracle(images, saturate), atol=1e-5, rtol=0)


def test_contrast_by_hand() -> None:
    x = torch.tensor([0.2, 0.6, 0.4, 0.8]).view(1, 1, 2, 2).expand(1, 3, 2, 2)
    x = torch.nn.functional.interpolate(x, size=8, mode="nearest")  # mean 0.5 per channel
    out = apply_corruption(x, torch.tensor([4]), severity=2)  # factor 0.5
    torch.testing.assert_close(out, 0.5 + (x - 0.5) * 0.5)


def test_pixelate_matches_pil_box(colour_images: torch.Tensor) -> None:
    for severity, factor in enumerate(C.PARAMETERS["Pixelate"], start=1):
        ours = apply_corruption(colour_images, torch.full((6,), 8), severity=severity)
        small = int(16 * factor)
        for k in (0, 5):
            for ch in range(3):
                img = Image.fromarray(colour_images[k, ch].numpy(), mode="F")
                pil = np.asarray(img.resize((small, small), Image.BOX).resize((16, 16), Image.BOX))
                np.testing.assert_allclose(ours[k, ch].numpy(), pil, atol=1e-5)


def test_jpeg_matches_pil_at_same_quality(colour_images: torch.Tensor) -> None:
    ours = apply_corruption(colour_images, torch.full((6,), 7), severity=5)  # quality 40
    for k in range(2):
        arr = (colour_images[k].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(arr).save(buffer, "JPEG", quality=40)
        pil = np.asarray(Image.open(buffer)).astype(np.float32) / 255
        assert np.abs(ours[k].permute(1, 2, 0).numpy() - pil).mean() < 0.01


def test_fog_fractal_range_and_seed() -> None:
    g = torch.Generator().manual_seed(0)
    maps = C._plasma_fractal(3, 32, 2.0, g)
    assert maps.shape == (3, 32, 32)
    torch.testing.assert_close(maps.amin(dim=(1, 2)), torch.zeros(3))
    torch.testing.assert_close(maps.amax(dim=(1, 2)), torch.ones(3))
    assert not torch.equal(maps[0], maps[1])


def test_motion_blur_of_a_point_follows_imagemagick_taps() -> None:
    layer = torch.zeros(1, 1, 41, 41)
    layer[0, 0, 20, 20] = 1.0
    out = C._motion_blur(layer, radius=4, sigma=2.0, degrees=torch.tensor([0.0]))
    taps = torch.exp(-torch.arange(9.0) ** 2 / 8)
    # out(x) = Σ_i k_i · in(x + i): the point spreads to the left along the row.
    torch.testing.assert_close(out[0, 0, 20, 12:21].flip(0), taps / taps.sum())
    assert out.sum().item() == pytest.approx(1.0)
    down = C._motion_blur(layer, radius=4, sigma=2.0, degrees=torch.tensor([90.0]))
    torch.testing.assert_close(down[0, 0, 12:21, 20], out[0, 0, 20, 12:21])


def test_equalize_hist_and_chamfer_by_hand() -> None:
    x = torch.tensor([0.0, 0.0, 1.0, 2.0]).view(1, 1, 2, 2)
    # cdf above the lowest level: 0, 1, 2 of 4 - 2 pixels -> 0, 127.5 -> 128, 255 (OpenCV rounds).
    assert C._equalize_hist(x).view(-1).tolist() == [0.0, 0.0, 128.0, 255.0]
    assert C._equalize_hist(torch.full((1, 1, 2, 2), 7.0)).view(-1).tolist() == [7.0] * 4
    edges = torch.zeros(1, 1, 9, 9, dtype=torch.bool)
    edges[0, 0, 4, 4] = True
    d = C._chamfer_distance(edges, 20.0)[0, 0]
    assert d[4, 4] == 0 and d[4, 7] == pytest.approx(3) and d[5, 5] == pytest.approx(2**0.5)
    assert d[6, 7] == pytest.approx(1 + 2 * 2**0.5)


def test_clipped_zoom_keeps_size_and_zooms_centre() -> None:
    x = torch.arange(64.0).view(1, 1, 8, 8)
    torch.testing.assert_close(C._clipped_zoom(x, 1.0), x)
    zoomed = C._clipped_zoom(x, 2.0)
    assert zoomed.shape == x.shape
    assert zoomed[0, 0].min() >= x[0, 0, 2, 2] and zoomed[0, 0].max() <= x[0, 0, 5, 5]


def test_frost_draws_crops_of_the_five_photographs_deterministically() -> None:
    idx, top, left = C._frost_draws(2000, 32, 32, torch.Generator().manual_seed(0))
    assert sorted(idx.unique().tolist()) == [0, 1, 2, 3, 4]  # frost6.jpg is never drawn (randint(5))
    sizes = torch.tensor(C._FROST_SHRUNK)[idx]
    assert (top >= 0).all() and (left >= 0).all()
    assert (top <= sizes[:, 0] - 33).all() and (left <= sizes[:, 1] - 33).all()  # randint(0, H' - 32)
    assert int(top.max()) == int(sizes[:, 0].max()) - 33  # the last offset is reached
    again = C._frost_draws(2000, 32, 32, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip((idx, top, left), again))


def test_frost_adds_the_photograph_crop_and_a_batch_is_its_images() -> None:
    x = torch.rand(5, 3, 28, 28, generator=torch.Generator().manual_seed(1))
    idx, top, left = torch.tensor([0, 1, 2, 3, 4]), torch.tensor([0, 5, 30, 41, 70]), torch.tensor([0, 9, 83, 76, 103])
    out = C._frost_at(x, (0.85, 0.4), idx, top, left)
    bank = C._frost_photographs()
    for k in range(5):
        crop = bank[idx[k], :, top[k] : top[k] + 28, left[k] : left[k] + 28].float() / 255
        torch.testing.assert_close(out[k], (0.85 * x[k] + 0.4 * crop).clamp(0, 1))
        torch.testing.assert_close(out[k : k + 1], C._frost_at(x[k : k + 1], (0.85, 0.4), idx[k : k + 1],
                                                               top[k : k + 1], left[k : k + 1]))  # fmt: skip
    frost = (C.apply_named_corruption(torch.zeros(8, 3, 32, 32), "Frost", 5, torch.Generator()) / 0.45).clamp(0, 1)
    assert 0.2 < frost.mean() < 0.8 and frost.std() > 0.05  # real photographs, not a flat tint
    assert (frost[:, 2] >= frost[:, 0] - 0.02).float().mean() > 0.9  # icy: blue at least red


def test_frost_refuses_images_larger_than_the_shrunk_photographs() -> None:
    C.apply_named_corruption(torch.rand(2, 3, 62, 104), "Frost", 1, torch.Generator())
    with pytest.raises(ValueError, match=r"at most 62×104 pixels"):
        C.apply_named_corruption(torch.rand(2, 3, 63, 63), "Frost", 1, torch.Generator())


@pytest.fixture
def frost_root(tmp_path, monkeypatch):
    """A data root holding copies of the fetched frost photographs."""
    import shutil

    from fairdd.paths import REPO_ROOT

    real = REPO_ROOT / "data" / "frost"
    if not all((real / name).is_file() for name in C.FROST_FILES):
        pytest.fail(f"the frost photographs are not in {real}; run `python -m fairdd.fetch frost` (make data)")
    shutil.copytree(real, tmp_path / "frost")
    monkeypatch.setenv("FAIRDD_DATA", str(tmp_path))
    return tmp_path / "frost"


def test_frost_without_a_photograph_names_it_and_the_fix(frost_root) -> None:
    (frost_root / "frost3.png").unlink()
    with pytest.raises(FileNotFoundError, match="frost3.png is missing") as err:
        apply_corruption(torch.rand(2, 3, 16, 16), torch.full((2,), 1), severity=3)
    assert "python -m fairdd.fetch frost" in str(err.value)


def test_frost_refuses_a_damaged_or_wrong_photograph(frost_root, monkeypatch) -> None:
    from fairdd.data import _files
    from fairdd.data._files import DataFileError

    x = torch.rand(2, 3, 16, 16)
    before = apply_corruption(x, torch.full((2,), 1), severity=3)
    path = frost_root / "frost4.jpg"
    raw = bytearray(path.read_bytes())
    raw[5000] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(DataFileError, match="frost4.jpg .* SHA-256") as err:
        apply_corruption(x, torch.full((2,), 1), severity=3)
    assert "python -m fairdd.fetch --force frost" in str(err.value)
    # Without a known digest the content is still checked: a photograph of the wrong size.
    monkeypatch.setattr(_files, "_fetched_sha256", lambda: {})
    Image.new("RGB", (40, 30)).save(path, "JPEG")
    with pytest.raises(DataFileError, match=r"frost4.jpg decodes to \(3, 30, 40\); expected \(3, 350, 527\)"):
        apply_corruption(x, torch.full((2,), 1), severity=3)
    path.write_bytes(b"not a jpeg")
    with pytest.raises(DataFileError, match="frost4.jpg cannot be decoded"):
        apply_corruption(x, torch.full((2,), 1), severity=3)
    assert before.shape == x.shape


def test_make_biased_dataset() -> None:
    labels = balanced_labels(10)
    grey = Dataset("toy", "train", torch.rand(100, 1, 8, 8), labels, tuple("0123456789"))
    coloured = make_biased(grey, kind="colour", bias_ratio=1.0, severity=2, seed=0)
    assert coloured.name == "toy-colour" and coloured.attribute_name == "colour"
    assert torch.equal(coloured.attributes, labels) and coloured.inputs.shape == (100, 3, 8, 8)
    corrupted = make_biased(grey, kind="corruption", bias_ratio=0.0, severity=1, seed=0)
    assert corrupted.attribute_values == CORRUPTIONS and not bias_aligned(labels, corrupted.attributes).any()
    with pytest.raises(ValueError, match="kind"):
        make_biased(grey, kind="texture", bias_ratio=0.5, severity=1)  # type: ignore[arg-type]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_corruptions_agree_across_devices(colour_images: torch.Tensor) -> None:
    labels = balanced_labels([1] * 10).repeat(3)[:18]
    images = colour_images.repeat(3, 1, 1, 1)
    cpu, a_cpu = corrupt(images, labels, bias_ratio=0.0, severity=4, seed=2)
    gpu, a_gpu = corrupt(images.cuda(), labels.cuda(), bias_ratio=0.0, severity=4, seed=2)
    assert torch.equal(a_cpu, a_gpu.cpu())
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=0)


# ------------------------------------------------------------- containers and splits


def _toy(n: int, *, attributes: bool = True, name: str = "toy", seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    return Dataset(
        name, "test", torch.rand(n, 3, 4, 4, generator=g), torch.arange(n) % 10, tuple(map(str, range(10))),
        torch.randint(0, 10, (n,), generator=g) if attributes else None,
        "colour" if attributes else None, COLOUR_NAMES if attributes else None,
    )


def test_dataset_concat_keeps_order_and_metadata() -> None:
    a, b = _toy(5), _toy(7, seed=1)
    both = Dataset.concat(a, b, name="both")
    assert (both.name, both.split, len(both)) == ("both", "test", 12)
    assert torch.equal(both.inputs, torch.cat([a.inputs, b.inputs]))
    assert torch.equal(both.labels, torch.cat([a.labels, b.labels]))
    assert torch.equal(both.attributes, torch.cat([a.attributes, b.attributes]))
    assert (both.classes, both.attribute_name, both.attribute_values) == (a.classes, "colour", COLOUR_NAMES)
    assert Dataset.concat(a).name == "toy" and Dataset.concat(a, split="x").split == "x"
    plain = Dataset.concat(_toy(2, attributes=False), _toy(3, attributes=False))
    assert plain.attributes is None and len(plain) == 5


def test_dataset_concat_rejects_mismatches() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Dataset.concat()
    with pytest.raises(ValueError, match="attribute_name differ"):
        Dataset.concat(_toy(2), _toy(2, attributes=False))
    with pytest.raises(ValueError, match="with attributes and data sets without"):
        Dataset.concat(_toy(2), dataclasses.replace(_toy(2), attributes=None))
    other = dataclasses.replace(_toy(2), classes=tuple("abcdefghij"))
    with pytest.raises(ValueError, match="classes"):
        Dataset.concat(_toy(2), other)


def test_normalize_splits_uses_the_first_split_or_given_stats() -> None:
    train, test = _toy(20), _toy(6, seed=1)
    ntrain, ntest, (mean, std) = normalize_splits(train, test)
    assert all(torch.equal(u, v) for u, v in zip((mean, std), channel_stats(train.inputs)))
    assert torch.equal(ntrain.inputs, normalize(train.inputs, mean, std))
    assert torch.equal(ntest.inputs, normalize(test.inputs, mean, std))
    assert torch.equal(ntest.attributes, test.attributes) and ntest.name == test.name
    fixed = (torch.zeros(3), torch.full((3,), 2.0))
    (only, stats) = normalize_splits(test, stats=fixed)
    assert stats[0] is fixed[0] and stats[1] is fixed[1] and torch.equal(only.inputs, test.inputs / 2)


def test_stratified_subset_keeps_row_order_and_caps_short_classes() -> None:
    data = _toy(95)  # classes 0-4 have 10 rows, 5-9 have 9
    sub = stratified_subset(data, 10, seed=3)
    assert len(sub) == 95 and torch.equal(sub.inputs, data.inputs)
    sub = stratified_subset(data, 4, seed=3)
    assert torch.bincount(sub.labels).tolist() == [4] * 10
    rows = [int((data.inputs == x).all(dim=(1, 2, 3)).nonzero()) for x in sub.inputs]
    assert rows == sorted(rows)  # original order
    assert torch.equal(sub.inputs, stratified_subset(data, 4, seed=3).inputs)
    assert stratified_subset(data, None, seed=0) is data
    # The same rows as fairdd.evaluate.random_subset draws, which returns them class by class.
    from fairdd.evaluate import random_subset

    drawn = random_subset(data, 4, seed=3)
    assert sorted(map(tuple, drawn.inputs.flatten(1).tolist())) == sorted(map(tuple, sub.inputs.flatten(1).tolist()))
