"""Trifeature (Hermann & Lampinen 2020): shape × texture × colour images, generated in torch.

Each image is one of 10 shapes, filled with one of 10 textures in one of 10 colours, on a
grey (0.5) canvas:

* the shape mask (a 128-pixel template, ``128/224`` of the canvas side) is rotated by an
  angle drawn uniformly from [-45°, 45°] and placed uniformly at random where its rotated
  bounding box fits;
* the texture is rotated independently by another angle in [-45°, 45°] and shifted by a
  random phase; pixels where the texture is "off" show the grey background even inside the
  shape, as in the original stimuli;
* 800 of the 1,000 (shape, texture, colour) combinations are for training and the other
  200 are held out for the test split (seeded, the same for both splits; by default a
  balanced design, so every feature value is held out equally often, see
  :func:`split_combinations`).

Shape templates, texture rules (period 10 reference units; line width 3; dots of radius 4;
rain streaks 7 long with a 5 % start probability; ...) and colours follow the original
stimuli as described in the paper and in the public reimplementation
``Duplums/FactorCL@37d0075:trifeatures/trifeatures.py``; the code here is our own and
vectorised: every image of a batch is rendered at once by computing, for each pixel, its
coordinates in the rotated shape template and in the rotated texture, then an anti-aliasing
``supersample``×``supersample`` average.

Small canvases: at 224 px a texture period is 10 px. Scaled down to 32 px that would be
1.4 px, finer than a pixel, and every texture would average out to the same flat tint; so
the default period is ``max(4, 10 · image_size / 224)`` canvas pixels (10 at 224, 4 at 32 and
64), which keeps textures recognisable. Pass ``texture_period=10 * image_size / 224`` for
the strictly scaled-down version.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from fairdd.config import check_choice, check_int, check_number
from fairdd.data._container import Dataset
from fairdd.seeding import generator as seeded_generator, trifeature_seed

__all__ = ["COLOURS", "SHAPES", "TEXTURES", "generate_trifeature", "load_trifeature", "split_combinations"]

SHAPES = ("triangle", "square", "plus", "circle", "tee", "rhombus", "pentagon", "star", "fivesquare", "trapezoid")
TEXTURES = ("solid", "stripes", "grid", "hexgrid", "dots", "noise", "triangles", "zigzags", "rain", "pluses")
# RGB in [0, 1], the values of the original stimuli.
COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (1.0, 0.0, 0.0),
    "green": (0.0, 1.0, 0.0),
    "blue": (0.0, 0.0, 1.0),
    "yellow": (1.0, 1.0, 0.0),
    "pink": (1.0, 0.4, 1.0),
    "cyan": (0.0, 1.0, 1.0),
    "purple": (0.3, 0.0, 0.5),
    "ocean": (0.1, 0.4, 0.5),
    "orange": (1.0, 0.6, 0.0),
    "white": (1.0, 1.0, 1.0),
}
FEATURES = ("shape", "texture", "colour")

BACKGROUND = 0.5  # grey canvas value in every channel
TEMPLATE_SIZE = 128  # side of the shape templates, in template pixels
REFERENCE_CANVAS = 224  # canvas side of the original stimuli; the template covers 128/224 of it
TEXTURE_UNITS = 10  # one texture period, in the texture rules' integer units
MAX_ANGLE = 45.0  # degrees, for both the shape and the texture rotation
N_TEST_COMBINATIONS = 200  # of the 1,000 combinations, held out for the test split
RAIN_LENGTH = 7  # texture units, 10 - 10 // 3 in the original
RAIN_PROBABILITY = 0.05  # chance that a texture unit starts a rain streak


def _shape_templates() -> torch.Tensor:
    """The 10 binary shape templates, ``(10, 128, 128)`` float32 (row i, column j)."""
    size = TEMPLATE_SIZE
    half = size // 2
    i, j = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    third, sixth = size // 3, size // 6
    bar = (j >= half - sixth) & (j < half + sixth + 1)  # the vertical bar of plus and tee
    masks = {
        "square": np.ones((size, size), dtype=bool),
        "circle": (i + 0.5 - half) ** 2 + (j + 0.5 - half) ** 2 < half**2,
        "triangle": np.abs(j - half) - i // 2 < 1,
        "plus": bar | ((i >= half - sixth) & (i < half + sixth + 1)),
        "tee": bar | (i < third),
        "rhombus": (j - half + i // 2 > 0) & (j - half + i // 2 < half),
    }
    # Pentagon: a triangle roof down to 40 % of the height, then a trapezoid body.
    mid = int(size * 0.4)
    body_off = (i - mid) // 3.1
    masks["pentagon"] = np.where(
        i < mid, np.abs(j - half) - np.abs(i * 1.25) < 1, (body_off < j) & (j < size - body_off)
    )
    # Star: a spike on top, a wide band of arms, two legs.
    line, line2, line3 = int(size * 0.4), int(size * 0.4) + int(0.2 * size), int(size * 0.4) + int(0.15 * size)
    spike = (i < line) & (np.abs(j - half) - i // 4 < 1)
    arms_off = (i - line) * 2.4
    arms = (i >= line) & (i < line2) & (arms_off < j) & (j < size - arms_off)
    leg_lo = size * 0.33 - 0.43 * (i - line3)
    leg_hi = size * 0.62 - 1.05 * (i - line3)
    legs = (i >= line3) & (((leg_lo < j) & (j < leg_hi)) | ((leg_lo < size - j) & (size - j < leg_hi)))
    masks["star"] = spike | arms | legs
    # Five squares: the four corners and the centre of a 3×3 grid.
    in_mid_i = (i >= third) & (i < 2 * third + 1)
    in_mid_j = (j >= third) & (j < 2 * third + 1)
    masks["fivesquare"] = (~in_mid_i & ~in_mid_j) | (in_mid_i & in_mid_j)
    trap_off = i // 3.1
    masks["trapezoid"] = (trap_off < j) & (j < size - trap_off)
    return torch.from_numpy(np.stack([masks[s] for s in SHAPES]).astype(np.float32))


def _texture_rule(name: str, y_abs: torch.Tensor, x_abs: torch.Tensor) -> torch.Tensor:
    """Which integer texture coordinates are "on" for a deterministic texture (bool)."""
    u = TEXTURE_UNITS
    y, x = torch.remainder(y_abs, u), torch.remainder(x_abs, u)
    if name == "solid":
        return torch.ones_like(y, dtype=torch.bool)
    if name == "stripes":
        return y < u // 3
    if name == "grid":
        return (y < u // 3) | (x < u // 3)
    if name == "hexgrid":
        width = u // 5
        shear = torch.floor(1.73 * y_abs)  # 1.73 ≈ √3: the 60° lines of the hexagons
        return (torch.remainder(x_abs + shear, u) < width) | (torch.remainder(x_abs - shear, u) < width) | (y < width)
    if name == "dots":
        return (y - u // 2) ** 2 + (x - u // 2) ** 2 < (3 * u // 7) ** 2
    if name == "triangles":
        return torch.div(y, 2, rounding_mode="floor") - (x - u // 2).abs() > 0
    if name == "zigzags":
        flip = torch.remainder(torch.div(y_abs, u, rounding_mode="floor"), 2) == 1
        xx = torch.where(flip, u - x - 1, x)
        off = torch.div(y, 2, rounding_mode="floor")
        return (off < xx) & (xx < u - u // 2 + off)
    if name == "pluses":
        # Rows of pluses, every other row shifted by half a period.
        shifted = torch.remainder(torch.div(y_abs, u, rounding_mode="floor"), 2) == 1
        half_width = 1.5
        centre = u // 2
        straight = ((x - centre).abs() < half_width) | ((y - centre).abs() < half_width)
        offset = (x.abs() < half_width) | (u - x < half_width) | (
            ((y - centre).abs() < half_width) & ((x - centre).abs() > half_width)
        )
        return torch.where(shifted, offset, straight)
    raise ValueError(f"texture {name!r} has no deterministic rule")


def _random_texture_table(name: str, n: int, side: int, generator: torch.Generator) -> torch.Tensor:
    """Per-image random texture on the integer texture grid, ``(n, side, side)`` bool."""
    if name == "noise":
        return torch.rand(n, side, side, generator=generator) < 0.5
    # Rain: a unit starts a streak with probability RAIN_PROBABILITY; the streak covers it
    # and the RAIN_LENGTH - 1 units below it (a max over a vertical window).
    starts = (torch.rand(n, 1, side, side, generator=generator) < RAIN_PROBABILITY).float()
    padded = F.pad(starts, (0, 0, RAIN_LENGTH - 1, 0))
    return F.max_pool2d(padded, kernel_size=(RAIN_LENGTH, 1), stride=1)[:, 0] > 0


def split_combinations(seed: int, *, balanced: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The 800 training and 200 held-out combination indices for ``seed`` (sorted).

    A combination index is ``100 · shape + 10 · texture + colour``. ``balanced`` (default)
    holds out a permuted Latin-square design: colour ``≡ shape + texture + k`` (mod 10) for
    two random offsets ``k``, with the shape, texture and colour indices then permuted at
    random. Every shape, texture and colour is held out 20 times and every pair of feature
    values twice, so in both splits each feature is balanced and independent of the others
    (the label and the protected attribute stay independent). ``balanced=False`` draws the
    200 uniformly, as "20 % of the combinations at random"; per-value counts then vary
    (about 80 ± 8 training combinations per shape).
    """
    check_int("seed", seed, minimum=0)
    generator = seeded_generator(seed)
    if not balanced:
        order = torch.randperm(1000, generator=generator)
        return order[N_TEST_COMBINATIONS:].sort().values, order[:N_TEST_COMBINATIONS].sort().values
    perm_shape, perm_texture, perm_colour = (torch.randperm(10, generator=generator) for _ in range(3))
    offsets = torch.randperm(10, generator=generator)[:2]
    s, t, k = torch.meshgrid(torch.arange(10), torch.arange(10), offsets, indexing="ij")
    c = (s + t + k) % 10
    held = (100 * perm_shape[s] + 10 * perm_texture[t] + perm_colour[c]).reshape(-1)
    is_test = torch.zeros(1000, dtype=torch.bool)
    is_test[held] = True
    return (~is_test).nonzero().view(-1), is_test.nonzero().view(-1)


def generate_trifeature(
    shapes: torch.Tensor,
    textures: torch.Tensor,
    colours: torch.Tensor,
    *,
    image_size: int = 32,
    texture_period: float | None = None,
    supersample: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Render one image per (shape, texture, colour) triple.

    Parameters
    ----------
    shapes, textures, colours : ``(N,)`` int64 indices into :data:`SHAPES`, :data:`TEXTURES`,
        :data:`COLOURS`.
    image_size : canvas side in pixels (224 in the paper).
    texture_period : one texture period in canvas pixels; default ``max(4, 10·size/224)``.
    supersample : anti-aliasing factor per axis; default ``clip(round(128 / size), 1, 4)``.
    generator : the source of every random draw (positions, angles, texture phases and
        the noise/rain textures); a fresh ``Generator().manual_seed(0)`` if ``None``.

    Returns
    -------
    ``(N, 3, image_size, image_size)`` float32 in [0, 1].
    """
    check_int("image_size", image_size, minimum=8)
    if texture_period is None:
        texture_period = max(4.0, TEXTURE_UNITS * image_size / REFERENCE_CANVAS)
    check_number("texture_period", texture_period, minimum=0.0, strict_minimum=True)
    if supersample is None:
        supersample = min(4, max(1, round(128 / image_size)))
    check_int("supersample", supersample, minimum=1, maximum=8)
    shapes, textures, colours = (torch.as_tensor(t, dtype=torch.int64).reshape(-1) for t in (shapes, textures, colours))
    n = shapes.numel()
    if textures.numel() != n or colours.numel() != n:
        raise ValueError(f"shapes, textures, colours have {n}, {textures.numel()}, {colours.numel()} entries")
    for field, idx in (("shapes", shapes), ("textures", textures), ("colours", colours)):
        if n and (int(idx.min()) < 0 or int(idx.max()) > 9):
            raise ValueError(f"{field} must hold indices in [0, 9]")
    generator = generator if generator is not None else seeded_generator(0)

    # All per-image scalars first, in a fixed order, so the stream does not depend on chunking.
    deg = math.pi / 180.0
    shape_angle = (torch.rand(n, generator=generator) * 2 - 1) * MAX_ANGLE * deg
    shape_side = image_size * TEMPLATE_SIZE / REFERENCE_CANVAS  # canvas pixels
    box = shape_side * (shape_angle.cos().abs() + shape_angle.sin().abs())  # rotated bounding box
    centre = box[:, None] / 2 + torch.rand(n, 2, generator=generator) * (image_size - box[:, None])  # (n, 2) y, x
    texture_angle = (torch.rand(n, generator=generator) * 2 - 1) * MAX_ANGLE * deg
    texture_phase = torch.randint(0, TEXTURE_UNITS, (n, 2), generator=generator).float()

    fine = image_size * supersample
    chunk = max(1, (1 << 21) // (fine * fine))  # ~2M fine pixels per step: a few tens of MB
    templates = _shape_templates().reshape(len(SHAPES), -1)
    palette = torch.tensor(list(COLOURS.values()))  # (10, 3)
    out = torch.empty(n, 3, image_size, image_size)
    units_per_pixel = TEXTURE_UNITS / texture_period
    # Half the extent of the texture coordinates any pixel can reach, plus the phase.
    reach = math.ceil(image_size / 2 * math.sqrt(2) * units_per_pixel) + TEXTURE_UNITS + 2
    table_side = 2 * reach
    for start in range(0, n, chunk):
        sl = slice(start, min(n, start + chunk))
        m = sl.stop - sl.start
        coords = (torch.arange(fine, dtype=torch.float32) + 0.5) / supersample  # pixel centres, canvas px
        py, px = coords.view(1, -1, 1), coords.view(1, 1, -1)

        # Shape: canvas -> template coordinates (inverse rotation about the shape's centre).
        cos, sin = shape_angle[sl].cos().view(-1, 1, 1), shape_angle[sl].sin().view(-1, 1, 1)
        dy, dx = py - centre[sl, 0].view(-1, 1, 1), px - centre[sl, 1].view(-1, 1, 1)
        scale = TEMPLATE_SIZE / shape_side
        ti = (cos * dy - sin * dx) * scale + TEMPLATE_SIZE / 2
        tj = (sin * dy + cos * dx) * scale + TEMPLATE_SIZE / 2
        inside = (ti >= 0) & (ti < TEMPLATE_SIZE) & (tj >= 0) & (tj < TEMPLATE_SIZE)
        flat = ti.clamp(0, TEMPLATE_SIZE - 1).long() * TEMPLATE_SIZE + tj.clamp(0, TEMPLATE_SIZE - 1).long()
        mask = templates[shapes[sl]].gather(1, flat.view(m, -1)).view(m, fine, fine) * inside

        # Texture: canvas -> integer texture coordinates (rotation about the canvas centre).
        cos, sin = texture_angle[sl].cos().view(-1, 1, 1), texture_angle[sl].sin().view(-1, 1, 1)
        dy, dx = py - image_size / 2, px - image_size / 2
        ty = torch.floor((cos * dy - sin * dx) * units_per_pixel + texture_phase[sl, 0].view(-1, 1, 1))
        tx = torch.floor((sin * dy + cos * dx) * units_per_pixel + texture_phase[sl, 1].view(-1, 1, 1))
        on = torch.zeros(m, fine, fine, dtype=torch.bool)
        for t, name in enumerate(TEXTURES):
            rows = (textures[sl] == t).nonzero().view(-1)
            if rows.numel() == 0:
                continue
            if name in ("noise", "rain"):
                table = _random_texture_table(name, rows.numel(), table_side, generator)
                index = (ty[rows].long() + reach) * table_side + (tx[rows].long() + reach)
                on[rows] = table.view(rows.numel(), -1).gather(1, index.view(rows.numel(), -1)).view(-1, fine, fine)
            else:
                on[rows] = _texture_rule(name, ty[rows], tx[rows])

        # Anti-aliased coverage of "coloured" pixels, then blend colour over grey.
        alpha = F.avg_pool2d((mask * on).unsqueeze(1), supersample)  # (m, 1, size, size)
        colour = palette[colours[sl]].view(m, 3, 1, 1)
        out[sl] = alpha * colour + (1 - alpha) * BACKGROUND
    return out


def load_trifeature(
    root: Path | None,
    split: str,
    *,
    image_size: int = 32,
    samples_per_combination: int = 3,
    target: Literal["shape", "texture", "colour"] = "shape",
    attribute: Literal["shape", "texture", "colour"] = "colour",
    seed: int = 0,
    balanced_split: bool = True,
    texture_period: float | None = None,
    supersample: int | None = None,
) -> Dataset:
    """Trifeature images for one split (``root`` is unused: the data are generated).

    Parameters
    ----------
    image_size : canvas side (224 in the paper; 32 by default so CPU runs stay fast).
    samples_per_combination : images per (shape, texture, colour) combination, each with its
        own position, angles and texture phase; the split has ``800 ·`` (train) or
        ``200 ·`` (test) this many images, ordered by combination.
    target : the feature used as the class label (``shape`` in Mohammadshahi & Ioannou, "What's
        Left After Distillation? How Knowledge Transfer Impacts Fairness and Bias"; also
        ``texture``).
    attribute : the feature stored as the protected attribute (theirs: ``colour`` or
        ``texture``); must differ from ``target``.
    seed : picks the held-out combinations (shared by both splits) and the rendering draws
        (a separate stream per split, so train and test images are different draws).
    balanced_split : hold out a balanced design (see :func:`split_combinations`).
    texture_period, supersample : see :func:`generate_trifeature`.
    """
    check_choice("split", split, ("train", "test"))
    check_choice("target", target, FEATURES)
    check_choice("attribute", attribute, FEATURES)
    if attribute == target:
        raise ValueError(f"attribute={attribute!r} must differ from target={target!r}")
    check_int("samples_per_combination", samples_per_combination, minimum=1)
    check_int("seed", seed, minimum=0)
    if not isinstance(balanced_split, bool):
        raise ValueError(f"balanced_split={balanced_split!r} must be a bool")
    train, test = split_combinations(seed, balanced=balanced_split)
    combos = (train if split == "train" else test).repeat_interleave(samples_per_combination)
    features = {"shape": combos // 100, "texture": (combos // 10) % 10, "colour": combos % 10}
    generator = seeded_generator(trifeature_seed(seed, split))
    images = generate_trifeature(
        features["shape"],
        features["texture"],
        features["colour"],
        image_size=image_size,
        texture_period=texture_period,
        supersample=supersample,
        generator=generator,
    )
    names = {"shape": SHAPES, "texture": TEXTURES, "colour": tuple(COLOURS)}
    return Dataset(
        name="trifeature",
        split=split,
        inputs=images,
        labels=features[target],
        classes=names[target],
        attributes=features[attribute],
        attribute_name=attribute,
        attribute_values=names[attribute],
    )
