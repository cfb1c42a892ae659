"""DSA: hand-computed tiny cases, gradient checks, siamese sharing, determinism, ranges."""

import math

import pytest
import torch

from fairdd.augment import (
    DEFAULT_STRATEGY,
    DIGITS_STRATEGY,
    FAMILIES,
    DSAParams,
    DSASample,
    dsa,
    dsa_apply,
    dsa_sample,
    parse_strategy,
    siamese_dsa,
)


def sample(families: tuple[str, ...], size: tuple[int, int], n: int = 1, cutout: tuple[int, int] = (0, 0), **values):
    return DSASample(
        families=families,
        values={k: torch.as_tensor(v).reshape(n) for k, v in values.items()},
        image_size=size,
        batch_size=n,
        cutout_size=cutout,
    )


def colour(b: float = 0.0, s: float = 1.0, c: float = 1.0, n: int = 1, size=(2, 2)) -> DSASample:
    return sample(("color",), size, n, brightness=[b] * n, saturation=[s] * n, contrast=[c] * n)


def test_flip_2x2_by_hand() -> None:
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    out = dsa_apply(x, sample(("flip",), (2, 2), flip=[True]))
    assert torch.equal(out, torch.tensor([[[[2.0, 1.0], [4.0, 3.0]]]]))
    assert torch.equal(dsa_apply(x, sample(("flip",), (2, 2), flip=[False])), x)


def test_brightness_saturation_contrast_by_hand() -> None:
    grey = torch.tensor([[[[0.0, 1.0]]]])  # (1, 1, 1, 2)
    # +0.25 → [0.25, 1.25]; saturation is the identity on one channel; contrast 0.5 about 0.75.
    assert torch.allclose(dsa_apply(grey, colour(b=0.25, size=(1, 2))), torch.tensor([[[[0.25, 1.25]]]]))
    assert torch.allclose(dsa_apply(grey, colour(b=0.25, s=0.0, c=0.5, size=(1, 2))), torch.tensor([[[[0.5, 1.0]]]]))
    rgb = torch.tensor([0.2, 0.4, 0.6]).view(1, 3, 1, 1)
    assert torch.allclose(dsa_apply(rgb, colour(s=0.0, size=(1, 1))).flatten(), torch.tensor([0.4, 0.4, 0.4]))
    assert torch.allclose(dsa_apply(rgb, colour(s=2.0, size=(1, 1))).flatten(), torch.tensor([0.0, 0.4, 0.8]))


def test_translate_by_one_pixel() -> None:
    x = torch.arange(9.0).view(1, 1, 3, 3)
    down = dsa_apply(x, sample(("crop",), (3, 3), shift_y=[1], shift_x=[0]))
    assert torch.equal(down, torch.tensor([[[[0.0, 0, 0], [0, 1, 2], [3, 4, 5]]]]))
    left = dsa_apply(x, sample(("crop",), (3, 3), shift_y=[0], shift_x=[-1]))
    assert torch.equal(left, torch.tensor([[[[1.0, 2, 0], [4, 5, 0], [7, 8, 0]]]]))


@pytest.mark.parametrize("centre,zeros", [((4, 4), 16), ((0, 0), 4), ((8, 3), 8), ((7, 7), 9)])
def test_cutout_mask_area(centre: tuple[int, int], zeros: int) -> None:
    # 8×8 image, side 4: rows centre−2 … centre+1, clipped. (8, 3): rows 6–7 × cols 1–4.
    x = torch.ones(1, 2, 8, 8)
    s = sample(("cutout",), (8, 8), cutout=(4, 4), centre_y=[centre[0]], centre_x=[centre[1]])
    out = dsa_apply(x, s)
    assert int((out[0, 0] == 0).sum()) == zeros
    assert torch.equal(out[0, 0], out[0, 1])  # same mask on every channel


def test_cutout_size_from_ratio() -> None:
    g = torch.Generator().manual_seed(0)
    assert dsa_sample("cutout", 1, image_size=28, generator=g).cutout_size == (14, 14)
    assert dsa_sample("cutout", 1, image_size=32, generator=g).cutout_size == (16, 16)


def test_identity_and_quarter_turn() -> None:
    x = torch.rand(2, 3, 5, 5)
    ident = sample(("scale",), (5, 5), scale_x=[1.0], scale_y=[1.0])
    assert torch.allclose(dsa_apply(x, ident), x, atol=1e-6)
    quarter = sample(("rotate",), (5, 5), angle=[math.pi / 2])
    assert torch.allclose(dsa_apply(x, quarter), torch.rot90(x, 1, dims=(2, 3)), atol=1e-5)


def test_scale_two_zooms_out() -> None:
    # Sampling grid ×2 on a 4×4 image of ones. Output pixel centres (align_corners=False) sit at
    # normalised −0.75, −0.25, 0.25, 0.75 → ×2 → −1.5, −0.5, 0.5, 1.5 → input pixel coordinates
    # −1.5, 0.5, 2.5, 4.5: the inner two fall between ones (1), the outer two between zeros (0).
    x = torch.ones(1, 1, 4, 4)
    out = dsa_apply(x, sample(("scale",), (4, 4), scale_x=[2.0], scale_y=[2.0]))
    expected = torch.zeros(4, 4)
    expected[1:3, 1:3] = 1.0
    assert torch.allclose(out[0, 0], expected)


GRAD_CASES = {
    "color": dict(brightness=[0.3, -0.2], saturation=[1.7, 0.4], contrast=[0.6, 1.4]),
    "crop": dict(shift_y=[1, -2], shift_x=[0, 1]),
    "cutout": dict(centre_y=[1, 3], centre_x=[2, 0]),
    "flip": dict(flip=[True, False]),
    "scale": dict(scale_x=[1.13, 0.9], scale_y=[0.87, 1.1]),
    "rotate": dict(angle=[0.21, -0.17]),
}


@pytest.mark.parametrize("family", FAMILIES)
def test_gradcheck(family: str) -> None:
    s = sample((family,), (4, 4), 2, cutout=(2, 2), **GRAD_CASES[family])
    x = torch.rand(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: dsa_apply(t, s), (x,))


def test_gradient_reaches_synthetic_images_through_drawn_samples() -> None:
    g = torch.Generator().manual_seed(1)
    syn = torch.rand(3, 3, 8, 8, requires_grad=True)
    for _ in range(12):  # every family is drawn at least once over 12 draws with this seed
        dsa(syn, DEFAULT_STRATEGY, generator=g).square().sum().backward()
    assert syn.grad is not None and torch.isfinite(syn.grad).all() and syn.grad.abs().sum() > 0


def test_siamese_shares_parameters_across_batches() -> None:
    real = torch.rand(10, 3, 8, 8)
    syn = real[:3].clone()
    for seed in range(20):
        g = torch.Generator().manual_seed(seed)
        out_real, out_syn = siamese_dsa(real, syn, strategy=DEFAULT_STRATEGY, generator=g)
        assert torch.allclose(out_real[:3], out_syn, atol=1e-6)
        # a shared draw is the same transform for every image of the batch
        torch.testing.assert_close(out_real[3:4], siamese_dsa(real[3:4], strategy=DEFAULT_STRATEGY,
                                                              generator=torch.Generator().manual_seed(seed))[0])


def test_same_seed_same_output_and_per_image_parameters() -> None:
    x = torch.rand(6, 3, 8, 8)
    a = dsa(x, "scale", generator=torch.Generator().manual_seed(3))
    b = dsa(x, "scale", generator=torch.Generator().manual_seed(3))
    c = dsa(x, "scale", generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    s = dsa_sample("scale", 6, image_size=8, generator=torch.Generator().manual_seed(3))
    assert s.values["scale_x"].unique().numel() == 6  # one draw per image when not shared


def test_single_mode_draws_one_family_all_mode_applies_all() -> None:
    g = torch.Generator().manual_seed(0)
    drawn = [dsa_sample(DEFAULT_STRATEGY, 1, image_size=8, generator=g).families for _ in range(200)]
    assert all(len(f) == 1 for f in drawn)
    counts = {fam: sum(f == (fam,) for f in drawn) for fam in FAMILIES}
    assert all(15 <= c <= 55 for c in counts.values()), counts  # ≈ 200/6 each
    everything = dsa_sample(DEFAULT_STRATEGY, 1, image_size=8, generator=g, params=DSAParams(mode="all"))
    assert everything.families == FAMILIES
    assert dsa_sample("none", 1, image_size=8, generator=g).families == ()


def test_drawn_ranges_match_the_reference() -> None:
    g = torch.Generator().manual_seed(0)
    n = 4000
    col = dsa_sample("color", n, image_size=28, generator=g).values
    assert -0.5 <= col["brightness"].min() and col["brightness"].max() <= 0.5
    assert 0 <= col["saturation"].min() and col["saturation"].max() <= 2.0
    assert 0.5 <= col["contrast"].min() and col["contrast"].max() <= 1.5
    crop = dsa_sample("crop", n, image_size=28, generator=g).values
    assert set(crop["shift_y"].tolist()) == set(range(-4, 5))  # int(28·0.125 + 0.5) = 4
    cut = dsa_sample("cutout", n, image_size=28, generator=g).values
    assert set(cut["centre_x"].tolist()) == set(range(0, 29))  # even side: centre may be 28
    flip = dsa_sample("flip", n, image_size=28, generator=g).values["flip"].float().mean()
    assert abs(flip - 0.5) < 0.05
    sc = dsa_sample("scale", n, image_size=28, generator=g).values["scale_x"]
    assert 1 / 1.2 <= sc.min() and sc.max() <= 1.2
    ang = dsa_sample("rotate", n, image_size=28, generator=g).values["angle"]
    assert ang.abs().max() <= math.radians(15) and ang.abs().max() > math.radians(14.5)


def test_strategies() -> None:
    assert parse_strategy(DEFAULT_STRATEGY) == FAMILIES
    assert "flip" not in parse_strategy(DIGITS_STRATEGY)
    assert parse_strategy("None") == ()
    with pytest.raises(ValueError, match="'blur'"):
        parse_strategy("color_blur")
    with pytest.raises(ValueError, match="repeats"):
        parse_strategy("crop_crop")


def test_validation() -> None:
    with pytest.raises(ValueError, match="prob_flip"):
        DSAParams(prob_flip=1.5)
    with pytest.raises(ValueError, match="ratio_scale"):
        DSAParams(ratio_scale=0.5)
    with pytest.raises(ValueError, match="mode"):
        DSAParams(mode="M")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="flip"):
        DSASample(families=("flip",), values={}, image_size=(2, 2))
    s = sample(("flip",), (2, 2), 3, flip=[True, False, True])
    with pytest.raises(ValueError, match="3 rows"):
        dsa_apply(torch.rand(4, 1, 2, 2), s)
    with pytest.raises(ValueError, match="drawn for"):
        dsa_apply(torch.rand(3, 1, 4, 4), s)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    x = torch.rand(4, 3, 8, 8)
    for seed in range(12):
        s = dsa_sample(DEFAULT_STRATEGY, 4, image_size=8, generator=torch.Generator().manual_seed(seed))
        torch.testing.assert_close(dsa_apply(x.cuda(), s).cpu(), dsa_apply(x, s), atol=1e-5, rtol=1e-5)
