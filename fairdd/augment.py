"""Differentiable siamese augmentation (DSA; Zhao & Bilen, ICML 2021).

Six families of transformations, each differentiable with respect to the images, so that a
synthetic set can be learned *through* the augmentation:

========  ====================================================================================
family    what it does (constants are :class:`DSAParams` fields)
========  ====================================================================================
color     brightness ``x + (U − 0.5)·brightness``, then saturation ``(x − x̄_c)·U·saturation + x̄_c``
          (x̄_c: the per-pixel mean over channels; the identity on grey images), then contrast
          ``(x − x̄)·(U + contrast) + x̄`` (x̄: the per-image mean), three independent U ~ U(0, 1)
crop      integer translation by up to ``round(ratio_crop_pad · H)`` pixels in each direction
          (4 at 28 and 32), uniform, zero fill
cutout    a ``round(ratio_cutout · H)``-pixel square (14 at 28, 16 at 32) zeroed at a uniform centre,
          clipped by the border
flip      left-right mirror with probability ``prob_flip``
scale     independent x and y zoom factors, uniform in ``[1/ratio_scale, ratio_scale]``, bilinear
rotate    uniform angle in ``±ratio_rotate`` degrees about the centre, bilinear, zero fill
========  ====================================================================================

The reference is VICO-UoE/DatasetCondensation@53f63a6 (``utils.py``: ``ParamDiffAug``,
``DiffAugment``). What we do, precisely, and how it relates to it:

- **One family per call** (``DSAParams.mode = "single"``, the reference's ``aug_mode 'S'``): each
  call draws one family uniformly from the strategy; ``color`` then applies all three colour
  transforms. ``mode = "all"`` applies every family of the strategy in order (the reference's
  ``'M'``, the original DiffAugment of data-efficient GANs).
- **Siamese** means the *same parameters for the real and the synthetic batch*. The reference
  achieves it by re-seeding the global RNG from a clock-derived seed before each of the two
  calls and, when a seed is given, giving *every image in the batch the parameters of the first*
  (so batches of different sizes can share them). Here that is explicit: draw a
  :class:`DSASample` once with ``batch_size=1`` and apply it to both batches (a 1-row sample
  broadcasts over any batch); :func:`siamese_dsa` does exactly that.
- **Training-time augmentation** in the evaluation protocol (reference ``epoch(..., aug=True)``
  calls ``DiffAugment`` without a seed) draws one family per minibatch but *per-image*
  parameters: ``dsa(x, ..., shared=False)``.
- No global RNG: every draw comes from an explicit ``torch.Generator`` in a fixed order (family
  index, then each parameter in the order of the table above), so a seed reproduces a run.
- The geometric transforms use ``affine_grid``/``grid_sample`` with ``align_corners=False``
  (PyTorch's default since 1.3; the reference called them without the argument).
- For digits the flip family is left out of the strategy (:data:`DIGITS_STRATEGY`).
- The constants act on the images as given: the reference applies them to mean/std-standardised
  images, so brightness 1.0 there is a shift of ±0.5 standard deviations.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

import torch
from torch.nn import functional as F

from fairdd.config import check_choice, check_number
from fairdd.training import to_device

__all__ = [
    "DEFAULT_STRATEGY",
    "DIGITS_STRATEGY",
    "DSAParams",
    "check_dsa",
    "DSASample",
    "FAMILIES",
    "Family",
    "dsa",
    "dsa_apply",
    "dsa_sample",
    "parse_strategy",
    "siamese_dsa",
]

Family = Literal["color", "crop", "cutout", "flip", "scale", "rotate"]
FAMILIES: tuple[str, ...] = get_args(Family)
DEFAULT_STRATEGY = "color_crop_cutout_flip_scale_rotate"  # DSA / DM / MTT default
DIGITS_STRATEGY = "color_crop_cutout_scale_rotate"  # no mirror: a flipped digit is another symbol

# Keys of DSASample.values, per family (the order in which they are drawn).
_KEYS: dict[str, tuple[str, ...]] = {
    "color": ("brightness", "saturation", "contrast"),
    "crop": ("shift_y", "shift_x"),
    "cutout": ("centre_y", "centre_x"),
    "flip": ("flip",),
    "scale": ("scale_x", "scale_y"),
    "rotate": ("angle",),
}


@dataclass(frozen=True)
class DSAParams:
    """The constants of DSA (reference ``ParamDiffAug``); all values are the reference's.

    Attributes
    ----------
    prob_flip : probability of a left-right mirror (0.5).
    ratio_scale : zoom factors are uniform in ``[1/ratio_scale, ratio_scale]`` (1.2).
    ratio_rotate : rotation angles are uniform in ``±ratio_rotate`` degrees (15).
    ratio_crop_pad : the largest translation as a fraction of the side, rounded to pixels (0.125).
    ratio_cutout : side of the cut-out square as a fraction of the image side (0.5).
    brightness : additive shift ``(U − 0.5)·brightness`` in image units (1.0).
    saturation : saturation factor ``U·saturation`` (2.0, so in [0, 2]).
    contrast : contrast factor ``U + contrast`` (0.5, so in [0.5, 1.5]).
    mode : ``"single"`` draws one family per call (reference ``aug_mode 'S'``); ``"all"`` applies
        every family of the strategy in order (reference ``'M'``).
    """

    prob_flip: float = 0.5
    ratio_scale: float = 1.2
    ratio_rotate: float = 15.0
    ratio_crop_pad: float = 0.125
    ratio_cutout: float = 0.5
    brightness: float = 1.0
    saturation: float = 2.0
    contrast: float = 0.5
    mode: Literal["single", "all"] = "single"

    def __post_init__(self) -> None:
        check_number("prob_flip", self.prob_flip, minimum=0.0, maximum=1.0)
        check_number("ratio_scale", self.ratio_scale, minimum=1.0)
        check_number("ratio_rotate", self.ratio_rotate, minimum=0.0, maximum=180.0)
        check_number("ratio_crop_pad", self.ratio_crop_pad, minimum=0.0, maximum=1.0)
        check_number("ratio_cutout", self.ratio_cutout, minimum=0.0, maximum=1.0)
        check_number("brightness", self.brightness, minimum=0.0)
        check_number("saturation", self.saturation, minimum=0.0)
        check_number("contrast", self.contrast, minimum=0.0)
        check_choice("mode", self.mode, ("single", "all"))


@dataclass(frozen=True, eq=False)  # values hold tensors: compare samples by identity
class DSASample:
    """Drawn transformation parameters, to apply to one or several batches.

    Attributes
    ----------
    families : the families to apply, in order (one in ``"single"`` mode; empty: identity).
    values : per parameter a tensor of shape ``(n,)``: ``brightness`` (additive shift),
        ``saturation``, ``contrast`` (factors), ``shift_y``, ``shift_x`` (int64 pixels; positive
        moves the content down / right), ``centre_y``, ``centre_x`` (int64 pixel index of the
        cut-out square's centre, i.e. its first row/column is ``centre − size // 2``), ``flip``
        (bool), ``scale_x``, ``scale_y`` (sampling-grid factors: > 1 zooms out), ``angle``
        (radians, counter-clockwise in the sampling grid).
    image_size : ``(H, W)`` the integer parameters were drawn for.
    batch_size : n. A sample with n = 1 is shared by every image of any batch (siamese);
        otherwise it applies only to a batch of exactly n images, image i getting row i.
    cutout_size : ``(height, width)`` of the cut-out square in pixels (used by ``cutout``).
    """

    families: tuple[str, ...]
    values: Mapping[str, torch.Tensor] = field(default_factory=dict)
    image_size: tuple[int, int] = (32, 32)
    batch_size: int = 1
    cutout_size: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        for fam in self.families:
            check_choice("families", fam, FAMILIES)
            for key in _KEYS[fam]:
                if key not in self.values:
                    raise ValueError(f"values is missing {key!r}, needed by family {fam!r}")
                if self.values[key].shape != (self.batch_size,):
                    raise ValueError(
                        f"values[{key!r}] has shape {tuple(self.values[key].shape)}; expected ({self.batch_size},)"
                    )


def check_dsa(strategy: str, params: object) -> None:
    """Raise ``ValueError`` (naming the field) unless ``strategy`` parses and ``params`` is a
    :class:`DSAParams`: the check every config with a DSA setting runs."""
    try:
        parse_strategy(strategy)
    except ValueError as err:
        raise ValueError(f"dsa_strategy={strategy!r} is not allowed: {err}") from None
    if not isinstance(params, DSAParams):
        raise ValueError(f"dsa_params={params!r} must be a fairdd.augment.DSAParams")


def parse_strategy(strategy: str) -> tuple[str, ...]:
    """``"color_crop_flip"`` → ``("color", "crop", "flip")``; ``""``/``"none"`` → ``()``.

    Raises ``ValueError`` for an unknown or repeated family.
    """
    if not isinstance(strategy, str):
        raise ValueError(f"strategy={strategy!r} must be a string such as {DEFAULT_STRATEGY!r}")
    if strategy.lower() in ("", "none"):
        return ()
    parts = tuple(strategy.split("_"))
    for p in parts:
        if p not in FAMILIES:
            raise ValueError(f"strategy={strategy!r} has family {p!r}; allowed families are {sorted(FAMILIES)}")
    if len(set(parts)) != len(parts):
        raise ValueError(f"strategy={strategy!r} repeats a family")
    return parts


def dsa_sample(
    strategy: str,
    batch_size: int,
    *,
    image_size: tuple[int, int] | int,
    generator: torch.Generator,
    params: DSAParams = DSAParams(),
) -> DSASample:
    """Draw DSA parameters for ``batch_size`` images (1: one set shared by a whole batch).

    Parameters
    ----------
    strategy : families joined by ``_`` (:func:`parse_strategy`).
    batch_size : rows to draw; 1 for siamese use (apply the sample to the real and the
        synthetic batch, of any sizes).
    image_size : ``(H, W)`` or ``H`` of the images the sample will be applied to.
    generator : every random number comes from it (on its device), in a fixed order.
    params : the constants.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be an integer >= 1")
    h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    families = parse_strategy(strategy)
    if families and params.mode == "single":
        pick = int(torch.randint(len(families), (1,), generator=generator, device=generator.device).item())
        families = (families[pick],)
    g, n, dev = generator, batch_size, generator.device

    def uniform() -> torch.Tensor:
        return torch.rand(n, generator=g, device=dev)

    def integers(low: int, high: int) -> torch.Tensor:  # uniform on [low, high)
        return torch.randint(low, high, (n,), generator=g, device=dev)

    values: dict[str, torch.Tensor] = {}
    for fam in families:
        if fam == "color":
            values["brightness"] = (uniform() - 0.5) * params.brightness
            values["saturation"] = uniform() * params.saturation
            values["contrast"] = uniform() + params.contrast
        elif fam == "crop":
            # int(s·r + 0.5) as the reference: 28·0.125 = 3.5 → 4.
            max_y, max_x = int(h * params.ratio_crop_pad + 0.5), int(w * params.ratio_crop_pad + 0.5)
            values["shift_y"] = integers(-max_y, max_y + 1)
            values["shift_x"] = integers(-max_x, max_x + 1)
        elif fam == "cutout":
            size_y, size_x = _cutout_size(h, w, params)
            # Reference range: an even-sided square's centre may also sit at index H (only its
            # upper half visible), an odd-sided one's at most at H − 1.
            values["centre_y"] = integers(0, h + (1 - size_y % 2))
            values["centre_x"] = integers(0, w + (1 - size_x % 2))
        elif fam == "flip":
            values["flip"] = uniform() < params.prob_flip
        elif fam == "scale":
            lo, hi = 1.0 / params.ratio_scale, params.ratio_scale
            values["scale_x"] = uniform() * (hi - lo) + lo
            values["scale_y"] = uniform() * (hi - lo) + lo
        elif fam == "rotate":
            values["angle"] = (uniform() - 0.5) * 2.0 * math.radians(params.ratio_rotate)
    return DSASample(
        families=families, values=values, image_size=(h, w), batch_size=n, cutout_size=_cutout_size(h, w, params)
    )


def dsa_apply(x: torch.Tensor, sample: DSASample) -> torch.Tensor:
    """Apply drawn parameters to images ``x`` ``(B, C, H, W)``; differentiable in ``x``."""
    if x.dim() != 4:
        raise ValueError(f"x has shape {tuple(x.shape)}; expected (B, C, H, W)")
    b, _, h, w = x.shape
    if (h, w) != tuple(sample.image_size):
        raise ValueError(f"x is {h}×{w} but the sample was drawn for {sample.image_size[0]}×{sample.image_size[1]}")
    if sample.batch_size not in (1, b):
        raise ValueError(f"the sample has {sample.batch_size} rows; x has {b} images (use 1 row to share)")

    def v(key: str) -> torch.Tensor:
        return to_device(sample.values[key], x.device)  # no host sync on a GPU

    for fam in sample.families:
        if fam == "color":
            x = _colour(x, v("brightness").to(x.dtype), v("saturation").to(x.dtype), v("contrast").to(x.dtype))
        elif fam == "crop":
            x = _translate(x, v("shift_y"), v("shift_x"))
        elif fam == "cutout":
            x = _cutout(x, v("centre_y"), v("centre_x"), sample.cutout_size)
        elif fam == "flip":
            x = torch.where(v("flip").view(-1, 1, 1, 1), x.flip(3), x)
        elif fam == "scale":
            sx, sy = v("scale_x").to(x.dtype), v("scale_y").to(x.dtype)
            zero = torch.zeros_like(sx)
            theta = torch.stack([torch.stack([sx, zero, zero], 1), torch.stack([zero, sy, zero], 1)], 1)
            x = _warp(x, theta)
        elif fam == "rotate":
            a = v("angle").to(x.dtype)
            cos, sin, zero = torch.cos(a), torch.sin(a), torch.zeros_like(a)
            theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
            x = _warp(x, theta)
    return x


def dsa(
    x: torch.Tensor,
    strategy: str,
    *,
    generator: torch.Generator,
    params: DSAParams = DSAParams(),
    shared: bool = False,
) -> torch.Tensor:
    """Draw and apply in one call: per-image parameters, or one set for the batch (``shared``)."""
    sample = dsa_sample(
        strategy, 1 if shared else x.shape[0], image_size=tuple(x.shape[-2:]), generator=generator, params=params
    )
    return dsa_apply(x, sample)


def siamese_dsa(
    *batches: torch.Tensor,
    strategy: str,
    generator: torch.Generator,
    params: DSAParams = DSAParams(),
) -> tuple[torch.Tensor, ...]:
    """Augment several batches (e.g. real and synthetic images of one class) with the *same*
    transformation: one shared draw applied to each. Returns the batches in the same order."""
    if not batches:
        raise ValueError("siamese_dsa needs at least one batch")
    sample = dsa_sample(strategy, 1, image_size=tuple(batches[0].shape[-2:]), generator=generator, params=params)
    return tuple(dsa_apply(x, sample) for x in batches)


def _cutout_size(h: int, w: int, params: DSAParams) -> tuple[int, int]:
    return int(h * params.ratio_cutout + 0.5), int(w * params.ratio_cutout + 0.5)


def _colour(x: torch.Tensor, shift: torch.Tensor, sat: torch.Tensor, con: torch.Tensor) -> torch.Tensor:
    x = x + shift.view(-1, 1, 1, 1)
    mean_c = x.mean(dim=1, keepdim=True)  # (B, 1, H, W): grey value per pixel
    x = (x - mean_c) * sat.view(-1, 1, 1, 1) + mean_c
    mean = x.mean(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1): mean intensity per image
    return (x - mean) * con.view(-1, 1, 1, 1) + mean


def _translate(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """out[..., i, j] = x[..., i − dy, j − dx], zero where that falls outside; by two gathers."""
    b, c, h, w = x.shape
    rows = torch.arange(h, device=x.device).view(1, h) - dy.view(-1, 1)  # (n, H) source row
    cols = torch.arange(w, device=x.device).view(1, w) - dx.view(-1, 1)  # (n, W) source column
    row_ok = (rows >= 0) & (rows < h)
    col_ok = (cols >= 0) & (cols < w)
    rows = rows.clamp(0, h - 1).view(-1, 1, h, 1).expand(b, c, h, w)
    cols = cols.clamp(0, w - 1).view(-1, 1, 1, w).expand(b, c, h, w)
    out = x.gather(2, rows).gather(3, cols)
    mask = (row_ok.view(-1, 1, h, 1) & col_ok.view(-1, 1, 1, w)).to(x.dtype)
    return out * mask


def _cutout(x: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    _, _, h, w = x.shape
    top, left = cy - size[0] // 2, cx - size[1] // 2  # (n,) first cut row / column
    r = torch.arange(h, device=x.device).view(1, h)
    c = torch.arange(w, device=x.device).view(1, w)
    in_rows = (r >= top.view(-1, 1)) & (r < (top + size[0]).view(-1, 1))  # (n, H)
    in_cols = (c >= left.view(-1, 1)) & (c < (left + size[1]).view(-1, 1))  # (n, W)
    keep = ~(in_rows.view(-1, 1, h, 1) & in_cols.view(-1, 1, 1, w))
    return x * keep.to(x.dtype)


def _warp(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Bilinear resampling of x on the affine grid ``theta`` (n, 2, 3), zero outside."""
    b, c, h, w = x.shape
    grid = F.affine_grid(theta, [theta.shape[0], c, h, w], align_corners=False)
    if grid.shape[0] != b:
        grid = grid.expand(b, h, w, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
