"""The ten CIFAR-10-C corruptions of Lu et al.'s CCIFAR10-DD, in batched torch.

Hendrycks & Dietterich (2019) define each corruption with a numpy/OpenCV/ImageMagick
function and a five-level parameter table for 32×32 images; Lu et al. 2024, "Exploring the
Impact of Dataset Bias on Dataset Distillation"
(``yaolu-zjut/Biased-DD@34f4231:corrupted_cifar10_protocol.py``), use those tables and call
them with severities 2–5. Every function here takes a batch ``(n, 3, H, W)`` in [0, 1],
one severity 1–5 (the CIFAR-10-C level) and a CPU ``torch.Generator`` that supplies every
random draw, and applies the same parameter table to the whole batch. The tables are
copied verbatim into :data:`PARAMETERS`; "32" in them becomes the image side.

How faithful each one is:

==========  =================================================================================
corruption  implementation
==========  =================================================================================
Snow        as the original: Gaussian flake layer, clipped zoom, threshold, ImageMagick's
            motion blur (a one-sided Gaussian-weighted line of ``2·radius + 1`` taps at
            integer offsets, edge pixels repeated), grey-lift of the image, flakes added twice
            (rotated 180°). The flake layer is not written to and re-read from PNG.
Frost       as the original (``make_cifar_c.py``): one of the frost photographs ``frost1.png``
            … ``frost5.jpg``, chosen like ``np.random.randint(5)`` (so ``frost6.jpg`` is never
            drawn), shrunk by 0.2 as ``cv2.resize(fx=0.2, fy=0.2)`` does (bilinear at an exact
            factor 5 lands on pixel ``5i + 2``: the shrink is that subsampling, bit for bit),
            a uniform ``H × W`` crop (offsets ``0 … H' − H − 1``, as numpy's ``randint``), then
            ``clip(c0 · x + c1 · frost)``. The photographs are CIFAR-10-C's own, taken from the
            PyPI wheel ``imagecorruptions-imaug==1.1.5`` by ``python -m fairdd.fetch frost``
            into ``<data root>/frost/`` and SHA-256-checked when read; a missing one is a
            ``FileNotFoundError`` that names it. ``frost2.png`` and ``frost3.png`` hold the
            same pixels (they differ in PNG metadata only), as shipped. Images up to 62 × 104
            pixels (the smallest shrunk photograph is 63 × 105). The table is CIFAR-10-C's
            (Hendrycks' ``make_cifar_c.py``, Lu et al.'s); imagecorruptions' own ``frost`` has
            the ImageNet table and enlarges the photograph to 1.1 × the image instead.
Fog         as the original (diamond-square "plasma" fractal of side ``2^⌈log2 H⌉``, cropped).
Brightness  as the original (HSV value + c), in closed form: scaling RGB by V'/V leaves
            hue and saturation unchanged.
Contrast    as the original (per-image, per-channel mean).
Spatter     mud (severities 4–5) as the original. Water (1–3) **approximates** OpenCV:
            Canny edges become Sobel ``|gx| + |gy|`` thresholded at 150, plus pixels above 50
            next to those (one hysteresis step, no non-maximum suppression); the L2 distance
            transform becomes a chamfer (1, √2) distance; histogram equalisation, the emboss
            filter and the 3×3 blurs follow OpenCV's definitions.
Elastic     as the original (random affine from three jittered points, reflect-101 border,
            then Gaussian-smoothed displacement fields, half-sample-symmetric border) with
            bilinear sampling by ``grid_sample``.
JPEG        as the original: real JPEG encode/decode at the table's quality
            (``torchvision.io``, libjpeg) of the image rounded to uint8.
Pixelate    as the original: PIL's BOX resampling down to ``int(H · c)`` and back,
            written as two resampling matrices.
Saturate    as the original (HSV saturation ``· c0 + c1``), in closed form. Grey pixels have
            hue 0 (red) in skimage's convention, so ``c1 > 0`` (severities 4–5) tints them
            red and severities 1–3 leave a grey image unchanged.
==========  =================================================================================

The originals round to uint8 between steps; we stay in float32 throughout, except JPEG.

``tests/test_corruptions_oracle.py`` runs these functions against imagecorruptions-imaug
1.1.5 (the same numpy/OpenCV code, packaged, with the ImageNet-C tables) on the same random
draws: Frost, Fog, Brightness, Contrast, mud Spatter, JPEG, Saturate and Elastic's
displacement step agree to 1e-5, Pixelate and Snow to 1/255 (the uint8 rounding above).
Water Spatter, being approximated, is not compared.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

__all__ = ["CORRUPTIONS", "FROST_FILES", "PARAMETERS", "apply_named_corruption"]

#: Attribute index -> corruption, in Lu et al.'s order.
CORRUPTIONS = ("Snow", "Frost", "Fog", "Brightness", "Contrast", "Spatter", "Elastic", "JPEG", "Pixelate", "Saturate")

#: CIFAR-10-C parameter tables (severity 1..5), from corrupted_cifar10_protocol.py.
PARAMETERS: dict[str, tuple] = {
    # (flake mean, flake std, zoom, threshold, blur radius, blur sigma, image weight)
    "Snow": (
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
    ),
    "Frost": ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),  # (image weight, frost weight)
    "Fog": ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),  # (fog weight, wibble decay)
    "Brightness": (0.05, 0.1, 0.15, 0.2, 0.3),  # added to HSV value
    "Contrast": (0.75, 0.5, 0.4, 0.3, 0.15),  # factor on the deviation from the mean
    # (liquid mean, liquid std, blur sigma, threshold, intensity / mud sigma, 0 water | 1 mud)
    "Spatter": (
        (0.62, 0.1, 0.7, 0.7, 0.5, 0),
        (0.65, 0.1, 0.8, 0.7, 0.5, 0),
        (0.65, 0.3, 1, 0.69, 0.5, 0),
        (0.65, 0.1, 0.7, 0.69, 0.6, 1),
        (0.65, 0.1, 0.5, 0.68, 0.6, 1),
    ),
    # fractions of the image side: (displacement scale, displacement sigma, affine jitter)
    "Elastic": ((0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)),
    "JPEG": (80, 65, 58, 50, 40),  # quality
    "Pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),  # downscale factor
    "Saturate": ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)),  # (factor, offset) on HSV saturation
}

_GREY = (0.299, 0.587, 0.114)  # OpenCV's RGB -> grey weights
_WATER = (175 / 255, 238 / 255, 238 / 255)  # pale turquoise, RGB
_MUD = (63 / 255, 42 / 255, 20 / 255)  # mud brown, RGB


# --------------------------------------------------------------------------- helpers


def _draw(gen: torch.Generator, like: torch.Tensor, *shape: int, kind: str = "rand") -> torch.Tensor:
    """Random numbers drawn on the CPU generator (same stream on every device), moved to ``like``."""
    fn = torch.rand if kind == "rand" else torch.randn
    return fn(*shape, generator=gen).to(device=like.device, dtype=like.dtype)


def _pad_symmetric(x: torch.Tensor, r: int) -> torch.Tensor:
    """Half-sample symmetric padding (scipy's ``reflect``: d c b a | a b c d | d c b a)."""
    if r == 0:
        return x
    x = torch.cat([x[..., :r].flip(-1), x, x[..., -r:].flip(-1)], dim=-1)
    return torch.cat([x[..., :r, :].flip(-2), x, x[..., -r:, :].flip(-2)], dim=-2)


def _gaussian_blur(x: torch.Tensor, sigma: float, *, truncate: float = 4.0, mode: str = "replicate") -> torch.Tensor:
    """Separable Gaussian filter of every channel of ``(n, c, H, W)``, scipy's kernel radius.

    ``mode``: ``"replicate"`` (skimage's default ``nearest``) or ``"symmetric"`` (scipy's
    ``reflect``).
    """
    if sigma <= 0:
        return x
    n, c, h, w = x.shape
    r = int(truncate * sigma + 0.5)
    if mode == "symmetric":
        r = min(r, h, w)
        padded = _pad_symmetric(x, r)
    else:
        padded = F.pad(x, (r, r, r, r), mode="replicate")
    k = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (k / sigma) ** 2)
    k = k / k.sum()
    y = F.conv2d(padded.reshape(n * c, 1, h + 2 * r, w + 2 * r), k.view(1, 1, 1, -1))
    y = F.conv2d(y, k.view(1, 1, -1, 1))
    return y.view(n, c, h, w)


def _box3(x: torch.Tensor) -> torch.Tensor:
    """OpenCV ``blur(x, (3, 3))``: 3×3 mean with a reflect-101 border."""
    return F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), 3, stride=1)


def _grey(x: torch.Tensor) -> torch.Tensor:
    w = torch.tensor(_GREY, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


def _plasma_fractal(n: int, mapsize: int, decay: float, gen: torch.Generator) -> torch.Tensor:
    """Diamond-square height maps ``(n, mapsize, mapsize)`` in [0, 1] (CIFAR-10-C's fog)."""
    m = mapsize
    a = torch.zeros(n, m, m, dtype=torch.float64)
    step, wibble = m, 100.0

    def wibbled_mean(total: torch.Tensor) -> torch.Tensor:
        # The original adds wibble · U(-wibble, wibble): noise of size wibble², not wibble.
        return total / 4 + wibble * (torch.rand(total.shape, generator=gen, dtype=torch.float64) * 2 - 1) * wibble

    while step >= 2:
        half = step // 2
        corners = a[:, 0:m:step, 0:m:step]
        squares = corners + corners.roll(-1, dims=1)
        squares = squares + squares.roll(-1, dims=2)
        a[:, half:m:step, half:m:step] = wibbled_mean(squares)
        centres = a[:, half:m:step, half:m:step]
        corners = a[:, 0:m:step, 0:m:step]
        left = (centres + centres.roll(1, dims=1)) + (corners + corners.roll(-1, dims=2))
        a[:, 0:m:step, half:m:step] = wibbled_mean(left)
        top = (centres + centres.roll(1, dims=2)) + (corners + corners.roll(-1, dims=1))
        a[:, half:m:step, 0:m:step] = wibbled_mean(top)
        step //= 2
        wibble /= decay
    a = a - a.amin(dim=(1, 2), keepdim=True)
    return (a / a.amax(dim=(1, 2), keepdim=True)).float()


def _fractal_like(x: torch.Tensor, decay: float, gen: torch.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    mapsize = 1 << max(1, math.ceil(math.log2(max(h, w))))
    return _plasma_fractal(n, mapsize, decay, gen)[:, None, :h, :w].to(x.device, x.dtype)


def _clipped_zoom(x: torch.Tensor, zoom: float) -> torch.Tensor:
    """Zoom into the centre by ``zoom`` keeping the size (scipy order-1 zoom = align_corners)."""
    h, w = x.shape[-2:]
    ch, cw = math.ceil(h / zoom), math.ceil(w / zoom)
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = x[..., top : top + ch, left : left + cw]
    oh, ow = round(ch * zoom), round(cw * zoom)
    if (oh, ow) != (ch, cw):
        crop = F.interpolate(crop, size=(oh, ow), mode="bilinear", align_corners=True)
    th, tw = (oh - h) // 2, (ow - w) // 2
    return crop[..., th : th + h, tw : tw + w]


def _motion_blur(layer: torch.Tensor, radius: float, sigma: float, degrees: torch.Tensor) -> torch.Tensor:
    """ImageMagick ``MotionBlurImage`` of ``(n, 1, H, W)``, one angle (degrees) per image."""
    n, _, h, w = layer.shape
    width = int(2 * math.ceil(radius) + 1)
    taps = torch.arange(width, dtype=torch.float64)
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).to(layer.dtype)
    angle = degrees.to(torch.float64).cpu() * math.pi / 180
    # ImageMagick rounds i·(cos, sin) with ceil(v - 0.5) to integer pixel offsets.
    ox = torch.ceil(taps[None] * angle.cos()[:, None] - 0.5).long().to(layer.device)  # (n, width)
    oy = torch.ceil(taps[None] * angle.sin()[:, None] - 0.5).long().to(layer.device)
    rows = torch.arange(h, device=layer.device).view(1, h, 1)
    cols = torch.arange(w, device=layer.device).view(1, 1, w)
    flat = layer.reshape(n, h * w)
    out = torch.zeros(n, h * w, dtype=layer.dtype, device=layer.device)
    for i in range(width):
        r = (rows + oy[:, i].view(n, 1, 1)).clamp(0, h - 1)  # edge pixels repeat beyond the border
        c = (cols + ox[:, i].view(n, 1, 1)).clamp(0, w - 1)
        out += kernel[i] * flat.gather(1, (r * w + c).view(n, -1))
    return out.view(n, 1, h, w)


def _box_resample_matrix(in_size: int, out_size: int) -> torch.Tensor:
    """PIL's BOX resampling from ``in_size`` to ``out_size`` as an ``(out, in)`` matrix."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 0.5 * filterscale
    mat = torch.zeros(out_size, in_size, dtype=torch.float64)
    for o in range(out_size):
        centre = (o + 0.5) * scale
        lo = max(int(centre - support + 0.5), 0)
        hi = min(int(centre + support + 0.5), in_size)
        for i in range(lo, hi):
            u = (i - centre + 0.5) / filterscale
            if -0.5 < u <= 0.5:  # PIL's box filter
                mat[o, i] = 1.0
        mat[o] /= mat[o].sum()
    return mat.float()


# --------------------------------------------------------------------------- corruptions


def _snow(x: torch.Tensor, p: tuple, gen: torch.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    layer = _draw(gen, x, n, 1, h, w, kind="randn") * p[1] + p[0]
    layer = _clipped_zoom(layer, p[2])
    layer = torch.where(layer < p[3], torch.zeros_like(layer), layer).clamp(0, 1)
    angles = torch.rand(n, generator=gen, dtype=torch.float64) * 90 - 135  # U(-135°, -45°)
    layer = _motion_blur(layer, p[4], p[5], angles)
    x = p[6] * x + (1 - p[6]) * torch.maximum(x, _grey(x) * 1.5 + 0.5)
    return (x + layer + layer.flip(-1, -2)).clamp(0, 1)


#: CIFAR-10-C's frost photographs, as ``python -m fairdd.fetch frost`` puts them in
#: ``<data root>/frost/``: file -> decoded (height, width). ``make_cifar_c.py`` draws from the
#: first five only (``np.random.randint(5)``).
FROST_FILES = {
    "frost1.png": (600, 900),
    "frost2.png": (315, 560),
    "frost3.png": (315, 560),
    "frost4.jpg": (350, 527),
    "frost5.jpg": (495, 660),
    "frost6.jpg": (323, 485),
}
_FROST_DRAWN = tuple(FROST_FILES)[:5]
# cv2.resize(fx=0.2) keeps round(0.2 · side) = ceil((side - 2) / 5) pixels: pixel i at 5i + 2.
_FROST_SHRUNK = tuple(((h + 2) // 5, (w + 2) // 5) for h, w in (FROST_FILES[f] for f in _FROST_DRAWN))
_FROST_FIX = "run `python -m fairdd.fetch frost` (make data) to fetch CIFAR-10-C's frost photographs"
_FROST_CACHE: dict[tuple, torch.Tensor] = {}


def _frost_folder() -> Path:
    from fairdd.paths import data_root

    return data_root() / "frost"


def _frost_photographs() -> torch.Tensor:
    """The five drawn photographs shrunk as ``make_cifar_c.py`` does, RGB, zero-padded into one
    uint8 ``(5, 3, 120, 180)`` tensor (cached per folder, file size and modification time)."""
    from fairdd.data._files import check_file, fail

    folder = _frost_folder()
    paths = [folder / name for name in _FROST_DRAWN]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise FileNotFoundError(
            f"Frost needs CIFAR-10-C's frost photographs, and {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} missing; {_FROST_FIX} (or point $FAIRDD_DATA at the "
            "data root that holds frost/)"
        )
    key = (str(folder.resolve()), *((p.stat().st_mtime_ns, p.stat().st_size) for p in paths))
    if key not in _FROST_CACHE:
        from torchvision.io import ImageReadMode, decode_image, read_file

        height = max(h for h, _ in _FROST_SHRUNK)
        width = max(w for _, w in _FROST_SHRUNK)
        bank = torch.zeros(len(paths), 3, height, width, dtype=torch.uint8)
        for k, path in enumerate(paths):
            check_file(path, "frost photograph", _FROST_FIX)  # SHA-256 in the data root
            try:
                image = decode_image(read_file(str(path)), mode=ImageReadMode.RGB)  # drops PNG alpha, as cv2.imread
            except RuntimeError as exc:
                raise fail(path, "frost photograph", f"cannot be decoded ({exc})", _FROST_FIX) from exc
            expected = (3, *FROST_FILES[path.name])
            if tuple(image.shape) != expected:
                raise fail(path, "frost photograph", f"decodes to {tuple(image.shape)}; expected {expected}", _FROST_FIX)
            shrunk = image[:, 2::5, 2::5]
            bank[k, :, : shrunk.shape[1], : shrunk.shape[2]] = shrunk
        _FROST_CACHE.clear()
        _FROST_CACHE[key] = bank
    return _FROST_CACHE[key]


def _frost_draws(n: int, h: int, w: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Photograph index ``(n,)`` in 0..4 and crop corner ``(n,)``, ``(n,)`` for each image."""
    sizes = torch.tensor(_FROST_SHRUNK)
    rows, cols = int(sizes[:, 0].min()), int(sizes[:, 1].min())
    if h >= rows or w >= cols:  # randint(0, H' - H) needs H' > H
        raise ValueError(
            f"Frost crops {h}×{w} pixels from CIFAR-10-C's frost photographs shrunk by 0.2, the smallest of "
            f"which has {rows} rows and {cols} columns: images of at most {rows - 1}×{cols - 1} pixels"
        )
    idx = torch.randint(len(_FROST_DRAWN), (n,), generator=gen)
    spans = sizes[idx] - torch.tensor([h, w])  # randint(0, H' - H) has H' - H choices
    corner = (torch.rand(n, 2, generator=gen, dtype=torch.float64) * spans).floor().long()
    corner = torch.minimum(corner, spans - 1)
    return idx, corner[:, 0], corner[:, 1]


def _frost_at(x: torch.Tensor, p: tuple, idx: torch.Tensor, top: torch.Tensor, left: torch.Tensor) -> torch.Tensor:
    """``clip(c0 · x + c1 · frost)`` with the crop of photograph ``idx`` at ``(top, left)``."""
    h, w = x.shape[-2:]
    bank = _frost_photographs()
    rows = top.view(-1, 1, 1) + torch.arange(h).view(1, h, 1)
    cols = left.view(-1, 1, 1) + torch.arange(w).view(1, 1, w)
    crops = bank[idx.view(-1, 1, 1), :, rows, cols]  # (n, h, w, 3): the indexed dimensions come first
    frost = crops.permute(0, 3, 1, 2).to(device=x.device, dtype=x.dtype) / 255
    return (p[0] * x + p[1] * frost).clamp(0, 1)


def _frost(x: torch.Tensor, p: tuple, gen: torch.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    _frost_photographs()  # a missing photograph fails before any draw
    return _frost_at(x, p, *_frost_draws(n, h, w, gen))


def _fog(x: torch.Tensor, p: tuple, gen: torch.Generator) -> torch.Tensor:
    peak = x.amax(dim=(1, 2, 3), keepdim=True)
    x = x + p[0] * _fractal_like(x, p[1], gen)
    return (x * peak / (peak + p[0])).clamp(0, 1)


def _brightness(x: torch.Tensor, c: float, gen: torch.Generator) -> torch.Tensor:
    v = x.amax(dim=1, keepdim=True)
    v_new = (v + c).clamp(0, 1)
    scaled = x * (v_new / v.clamp_min(1e-12))
    return torch.where(v > 0, scaled, v_new.expand_as(x)).clamp(0, 1)


def _contrast(x: torch.Tensor, c: float, gen: torch.Generator) -> torch.Tensor:
    mean = x.mean(dim=(2, 3), keepdim=True)
    return ((x - mean) * c + mean).clamp(0, 1)


def _saturate(x: torch.Tensor, p: tuple, gen: torch.Generator) -> torch.Tensor:
    v = x.amax(dim=1, keepdim=True)
    delta = v - x.amin(dim=1, keepdim=True)
    s = torch.where(v > 0, delta / v.clamp_min(1e-12), torch.zeros_like(v))
    s_new = (s * p[0] + p[1]).clamp(0, 1)
    # Each channel is V·(1 - S·w) with w set by the hue alone; keep w, swap S for S'.
    coloured = v - (v - x) * (s_new / s.clamp_min(1e-12))
    red_hue = torch.tensor((0.0, 1.0, 1.0), dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    grey = v * (1 - s_new * red_hue)  # grey pixels have hue 0 (red)
    return torch.where(delta > 0, coloured, grey).clamp(0, 1)


def _chamfer_distance(edges: torch.Tensor, limit: float) -> torch.Tensor:
    """Distance (chamfer 1, √2) to the nearest edge pixel, capped at ``limit``; ``(n, 1, H, W)``."""
    big = torch.full_like(edges, float(limit), dtype=torch.float32)
    d = torch.where(edges, torch.zeros_like(big), big)
    for _ in range(math.ceil(limit)):
        p = F.pad(d, (1, 1, 1, 1), value=float(limit))
        h, w = d.shape[-2:]
        steps = [p[..., 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] + math.hypot(dy, dx)
                 for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]  # fmt: skip
        d = torch.minimum(d, torch.stack(steps).amin(dim=0))
    return d.clamp(max=limit)


def _equalize_hist(x: torch.Tensor) -> torch.Tensor:
    """OpenCV ``equalizeHist`` of integer-valued ``(n, 1, H, W)`` in [0, 255], per image."""
    n = x.shape[0]
    v = x.reshape(n, -1).long()
    hist = torch.zeros(n, 256, dtype=torch.float64, device=x.device).scatter_add_(
        1, v, torch.ones_like(v, dtype=torch.float64)
    )
    total = v.shape[1]
    first = (hist > 0).float().argmax(dim=1, keepdim=True)  # lowest value present
    first_count = hist.gather(1, first)
    cdf = hist.cumsum(dim=1) - first_count  # pixels in (first, value]
    lut = torch.round(cdf * 255 / (total - first_count).clamp_min(1)).clamp(0, 255)
    out = lut.gather(1, v).float()
    constant = first_count.squeeze(1) == total  # one grey level: OpenCV leaves it as is
    out[constant] = v[constant].float()
    return out.view_as(x)


def _spatter(x: torch.Tensor, p: tuple, gen: torch.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    liquid = _draw(gen, x, n, 1, h, w, kind="randn") * p[1] + p[0]
    liquid = _gaussian_blur(liquid, p[2])
    liquid = torch.where(liquid < p[3], torch.zeros_like(liquid), liquid)
    if p[5] == 1:  # mud
        m = _gaussian_blur((liquid > p[3]).to(x.dtype), p[4])
        m = torch.where(m < 0.8, torch.zeros_like(m), m)
        mud = torch.tensor(_MUD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * (1 - m) + mud * m).clamp(0, 1)
    # Water: distance to the edges of the liquid layer, equalised and embossed.
    level = (liquid * 255).clamp(0, 255).floor()
    sobel_x = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=x.dtype, device=x.device)
    padded = F.pad(level, (1, 1, 1, 1), mode="reflect")
    gx = F.conv2d(padded, sobel_x.view(1, 1, 3, 3))
    gy = F.conv2d(padded, sobel_x.t().contiguous().view(1, 1, 3, 3))
    magnitude = gx.abs() + gy.abs()
    strong = magnitude >= 150
    edges = strong | ((magnitude >= 50) & (F.max_pool2d(strong.float(), 3, 1, 1) > 0))
    dist = _chamfer_distance(edges, 20.0)
    dist = _equalize_hist(_box3(dist).floor())
    emboss = torch.tensor([[-2.0, -1, 0], [-1, 1, 1], [0, 1, 2]], dtype=x.dtype, device=x.device)
    dist = F.conv2d(F.pad(dist, (1, 1, 1, 1), mode="reflect"), emboss.view(1, 1, 3, 3))
    dist = _box3(dist.round().clamp(0, 255))
    m = liquid * dist
    peak = m.amax(dim=(2, 3), keepdim=True)
    m = torch.where(peak > 0, m / peak.clamp_min(1e-12), torch.zeros_like(m)) * p[4]
    water = torch.tensor(_WATER, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x + m * water).clamp(0, 1)


def _elastic(x: torch.Tensor, p: tuple, gen: torch.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    side = min(h, w)
    alpha, sigma, jitter = (f * side for f in p)
    # Random affine: three points around the centre, each moved by U(-jitter, jitter) px.
    cy, cx = h // 2, w // 2
    s = side // 3
    src = torch.tensor([[cx + s, cy + s], [cx + s, cy - s], [cx - s, cy - s]], dtype=torch.float64)  # (x, y)
    dst = src + (torch.rand(n, 3, 2, generator=gen, dtype=torch.float64) * 2 - 1) * jitter
    ones = torch.ones(n, 3, 1, dtype=torch.float64)
    # Forward map A (2×3) with A·[src; 1] = dst; warpAffine samples the source at A⁻¹(pixel).
    forward = torch.linalg.solve(torch.cat([src.expand(n, 3, 2), ones], 2), dst).transpose(1, 2)  # (n, 2, 3)
    full = torch.cat([forward, torch.tensor([0.0, 0, 1], dtype=torch.float64).expand(n, 1, 3)], 1)
    inverse = torch.linalg.inv(full)[:, :2]  # (n, 2, 3)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    pix = torch.stack([xs, ys, torch.ones_like(xs)], -1).view(1, h * w, 3)
    src_xy = (pix @ inverse.transpose(1, 2)).view(n, h, w, 2)
    # align_corners=True: -1/+1 are the centres of the border pixels, and 'reflection'
    # then mirrors about them (OpenCV's BORDER_REFLECT_101).
    grid = torch.stack([src_xy[..., 0] / (w - 1), src_xy[..., 1] / (h - 1)], -1) * 2 - 1
    x = F.grid_sample(x, grid.to(x.device, x.dtype), mode="bilinear", padding_mode="reflection", align_corners=True)
    if alpha == 0:
        return x.clamp(0, 1)
    fields = torch.rand(n, 2, h, w, generator=gen) * 2 - 1  # dx, dy ~ U(-1, 1) per pixel
    fields = _gaussian_blur(fields, sigma, truncate=3.0, mode="symmetric") * alpha
    dx, dy = fields[:, 0].double(), fields[:, 1].double()
    # align_corners=False: ±1 are the outer pixel edges, and 'reflection' mirrors about them
    # (scipy's half-sample 'reflect' of map_coordinates).
    grid = torch.stack([(2 * (xs + dx) + 1) / w - 1, (2 * (ys + dy) + 1) / h - 1], -1)
    x = F.grid_sample(x, grid.to(x.device, x.dtype), mode="bilinear", padding_mode="reflection", align_corners=False)
    return x.clamp(0, 1)


def _jpeg(x: torch.Tensor, quality: int, gen: torch.Generator) -> torch.Tensor:
    from torchvision.io import decode_jpeg, encode_jpeg

    as_bytes = (x.detach().cpu() * 255).round().clamp(0, 255).to(torch.uint8)
    decoded = decode_jpeg(encode_jpeg(list(as_bytes), quality=quality))
    return torch.stack(decoded).to(device=x.device, dtype=x.dtype) / 255


def _pixelate(x: torch.Tensor, c: float, gen: torch.Generator) -> torch.Tensor:
    h, w = x.shape[-2:]
    sh, sw = int(h * c), int(w * c)
    down_h, down_w = _box_resample_matrix(h, sh), _box_resample_matrix(w, sw)
    up_h, up_w = _box_resample_matrix(sh, h), _box_resample_matrix(sw, w)
    rows = (up_h @ down_h).to(x.device, x.dtype)  # (H, H)
    cols = (up_w @ down_w).to(x.device, x.dtype)  # (W, W)
    return (rows @ x @ cols.t()).clamp(0, 1)


_FUNCTIONS: dict[str, Callable[[torch.Tensor, object, torch.Generator], torch.Tensor]] = {
    "Snow": _snow,
    "Frost": _frost,
    "Fog": _fog,
    "Brightness": _brightness,
    "Contrast": _contrast,
    "Spatter": _spatter,
    "Elastic": _elastic,
    "JPEG": _jpeg,
    "Pixelate": _pixelate,
    "Saturate": _saturate,
}


def apply_named_corruption(x: torch.Tensor, name: str, severity: int, generator: torch.Generator) -> torch.Tensor:
    """Apply corruption ``name`` at ``severity`` (1–5) to every image of ``(n, 3, H, W)``."""
    if x.shape[0] == 0:
        return x.clone()
    return _FUNCTIONS[name](x, PARAMETERS[name][severity - 1], generator)
