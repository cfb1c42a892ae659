"""Our torch corruptions against imagecorruptions-imaug 1.1.5, the packaged numpy/OpenCV code
of Hendrycks & Dietterich's corruptions, used here as an oracle (a test dependency only).

imagecorruptions carries the ImageNet-C parameter tables, ours are CIFAR-10-C's (Hendrycks'
``make_cifar_c.py``, as Lu et al. use them). So each test calls our corruption function with
imagecorruptions' parameters at each of its five severities, on 32×32 images, and where the
corruption is random, numpy's ``uniform``/``normal``/``randint`` are patched for the call to
replay a torch generator in the order our code draws, so both see the same noise. Frost is
also checked end to end at our CIFAR-10-C severities against imagecorruptions' ``frost`` set
to ``make_cifar_c.py``'s recipe (its table, and its ``cv2.resize(fx=0.2, fy=0.2)``).

Not checked here, because the recipes differ on purpose: water Spatter (severities 1–3: our
Canny and distance transform are approximations), Snow at imagecorruptions' severities 1 and
4 (its zoomed flake layer is larger than the image, and imagecorruptions crops it top-left
after the motion blur where Hendrycks' CIFAR code and we trim it centrally before), and
Elastic's random affine step (imagecorruptions' ImageNet version has none).
"""

from __future__ import annotations

import hashlib
import types

import numpy as np
import pytest
import torch
from PIL import Image

from fairdd import fetch
from fairdd.data import _corruptions as C

try:
    import cv2
    import imagecorruptions.corruptions as ic
except ImportError as exc:  # not installed, or one of its dependencies (OpenCV, scikit-image, numba) is not
    pytest.skip(
        f"the oracle imagecorruptions-imaug==1.1.5 cannot be imported ({type(exc).__name__}: {exc}); "
        "`pip install -r requirements.txt` installs it",
        allow_module_level=True,
    )

TOL = 1e-5  # float32 (ours) against float64 (imagecorruptions), on the [0, 1] scale
CIFAR_FROST = ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45))  # make_cifar_c.py
IMAGENET_FROST = ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))  # imagecorruptions


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    """Four smooth 32×32 colour images, exactly representable as uint8."""
    low = torch.rand(4, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    x = torch.nn.functional.interpolate(low, size=32, mode="bilinear", align_corners=False).clamp(0.05, 0.95)
    return (x * 255).round() / 255


def _u8(x: torch.Tensor) -> np.ndarray:
    return (x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def _diff(ours: torch.Tensor, oracle: np.ndarray) -> float:
    """Largest absolute difference on the [0, 1] scale (imagecorruptions returns 0..255)."""
    return float(np.abs(ours.permute(1, 2, 0).double().numpy() - np.asarray(oracle, dtype=np.float64) / 255).max())


def _replay_torch(monkeypatch, seed: int) -> None:
    """numpy's uniform and normal draw from ``torch.Generator().manual_seed(seed)``, as ours do."""
    g = torch.Generator().manual_seed(seed)

    def uniform(low=0.0, high=1.0, size=None):
        return low + (high - low) * torch.rand(() if size is None else size, generator=g, dtype=torch.float64).numpy()

    def normal(loc=0.0, scale=1.0, size=None):
        return torch.randn(size, generator=g).double().numpy() * scale + loc  # ours: float32 normals

    monkeypatch.setattr(np.random, "uniform", uniform)
    monkeypatch.setattr(np.random, "normal", normal)


# --------------------------------------------------------------------------- frost


def test_the_oracles_frost_photographs_are_the_ones_we_fetch() -> None:
    import importlib.resources

    for name, digest in fetch.CHECKSUMS["frost"].items():
        data = (importlib.resources.files("imagecorruptions") / "frost" / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, name


def test_our_shrink_is_cv2_resize_by_0_2() -> None:
    bank = C._frost_photographs()
    for k, name in enumerate(C._FROST_DRAWN):
        bgr = cv2.imread(str(C._frost_folder() / name))
        shrunk = cv2.resize(bgr, (0, 0), fx=0.2, fy=0.2)[..., ::-1]  # make_cifar_c.py, then BGR -> RGB
        assert shrunk.shape[:2] == C._FROST_SHRUNK[k]
        h, w = C._FROST_SHRUNK[k]
        np.testing.assert_array_equal(bank[k, :, :h, :w].permute(1, 2, 0).numpy(), shrunk)


def _oracle_frost(monkeypatch, photo: int, top: int, left: int, table=None):
    """imagecorruptions' frost with the photograph and crop fixed, make_cifar_c.py's shrink in
    place of its enlarge-to-fit, and (``table``) another parameter table."""
    calls = iter([photo, top, left])
    seen = []

    def randint(*args):
        seen.append(args)
        return next(calls)

    monkeypatch.setattr(np.random, "randint", randint)
    resize = cv2.resize
    cv2_cifar = types.SimpleNamespace(
        imread=cv2.imread, INTER_CUBIC=cv2.INTER_CUBIC,
        resize=lambda image, dsize, interpolation: resize(image, (0, 0), fx=0.2, fy=0.2),
    )
    monkeypatch.setattr(ic, "cv2", cv2_cifar)
    fn = ic.frost
    if table is not None:
        consts = fn.__code__.co_consts
        assert IMAGENET_FROST in consts, "imagecorruptions' frost no longer holds its ImageNet table"
        code = fn.__code__.replace(co_consts=tuple(table if c == IMAGENET_FROST else c for c in consts))
        fn = types.FunctionType(code, fn.__globals__, fn.__name__)
    return fn, seen


# (photograph, top, left) for each of the five drawn photographs; 1, 3 and 4 at their largest offsets.
CROPS = [(0, 0, 0), (1, 30, 79), (2, 7, 19), (3, 37, 72), (4, 66, 99)]


@pytest.mark.parametrize("severity", range(1, 6))
def test_frost_matches_imagecorruptions_at_its_severities(images, monkeypatch, severity: int) -> None:
    worst = 0.0
    for i, (photo, top, left) in enumerate(CROPS):
        x = images[i % 4]
        fn, seen = _oracle_frost(monkeypatch, photo, top, left)
        oracle = fn(_u8(x), severity)
        h, w = C._FROST_SHRUNK[photo]
        assert seen == [(6,), (0, h - 32), (0, w - 32)]  # its draws: 6 photographs, crops as ours
        ours = C._frost_at(x[None], IMAGENET_FROST[severity - 1], *map(torch.tensor, ([photo], [top], [left])))
        worst = max(worst, _diff(ours[0], oracle))
    assert worst < TOL


@pytest.mark.parametrize("severity", range(1, 6))
def test_frost_end_to_end_matches_make_cifar_c(images, monkeypatch, severity: int) -> None:
    assert C.PARAMETERS["Frost"] == CIFAR_FROST
    draws = (torch.tensor([p for p, _, _ in CROPS]), torch.tensor([t for _, t, _ in CROPS]),
             torch.tensor([l for _, _, l in CROPS]))  # fmt: skip
    monkeypatch.setattr(C, "_frost_draws", lambda n, h, w, gen: draws)
    x = images[torch.arange(len(CROPS)) % 4]
    ours = C.apply_named_corruption(x, "Frost", severity, torch.Generator().manual_seed(0))
    for i, (photo, top, left) in enumerate(CROPS):
        fn, _ = _oracle_frost(monkeypatch, photo, top, left, table=CIFAR_FROST)
        assert _diff(ours[i], fn(_u8(x[i]), severity)) < TOL


# --------------------------------------------------------------------------- the others


DETERMINISTIC = {
    # ours, imagecorruptions' function, its table, PIL input, tolerance
    "Brightness": (C._brightness, ic.brightness, (0.1, 0.2, 0.3, 0.4, 0.5), False, TOL),
    "Contrast": (C._contrast, ic.contrast, (0.4, 0.3, 0.2, 0.1, 0.05), False, TOL),
    "Saturate": (C._saturate, ic.saturate, ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)), False, TOL),
    "JPEG": (C._jpeg, ic.jpeg_compression, (25, 18, 15, 10, 7), True, TOL),
    # imagecorruptions enlarges with NEAREST, CIFAR-10-C with BOX: the same pixels when
    # enlarging; PIL rounds the shrunk image to uint8 in between, we do not.
    "Pixelate": (C._pixelate, ic.pixelate, (0.6, 0.5, 0.4, 0.3, 0.25), True, 1 / 255 + TOL),
}


@pytest.mark.parametrize("severity", range(1, 6))
@pytest.mark.parametrize("name", sorted(DETERMINISTIC))
def test_deterministic_corruptions_match_imagecorruptions(images, name: str, severity: int) -> None:
    ours_fn, oracle_fn, table, pil, tol = DETERMINISTIC[name]
    p = table[severity - 1]
    for x in images:
        oracle = oracle_fn(Image.fromarray(_u8(x)) if pil else _u8(x), severity)
        assert _diff(ours_fn(x[None], p, torch.Generator())[0], oracle) < tol


RANDOM = {
    # ours, imagecorruptions' function, its severities checked, its table, PIL input, tolerance
    "Fog": (C._fog, ic.fog, (1, 2, 3, 4, 5), {1: (1.5, 2), 2: (2.0, 2), 3: (2.5, 1.7), 4: (2.5, 1.5), 5: (3.0, 1.4)},
            False, TOL),
    # Its flake layer is rounded to uint8 (CIFAR-10-C's too: a PNG round trip), ours is not:
    # up to 0.5/255 for each of the two layers added.
    "Snow": (C._snow, ic.snow, (2, 3, 5), {2: (0.2, 0.3, 2, 0.5, 12, 4, 0.7), 3: (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
                                           5: (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)}, False, 1 / 255 + TOL),
    "Spatter (mud)": (C._spatter, ic.spatter, (4, 5), {4: (0.65, 0.3, 1, 0.65, 1.5, 1), 5: (0.67, 0.4, 1, 0.65, 1.5, 1)},
                      True, TOL),
}  # fmt: skip


@pytest.mark.parametrize(
    ("name", "severity"), [(name, s) for name, spec in sorted(RANDOM.items()) for s in spec[2]]
)
def test_random_corruptions_match_imagecorruptions_on_the_same_draws(images, monkeypatch, name, severity) -> None:
    ours_fn, oracle_fn, _, table, pil, tol = RANDOM[name]
    for i, x in enumerate(images):
        _replay_torch(monkeypatch, seed=100 + i)
        oracle = oracle_fn(Image.fromarray(_u8(x)) if pil else _u8(x), severity)
        ours = ours_fn(x[None], table[severity], torch.Generator().manual_seed(100 + i))
        assert _diff(ours[0], oracle) < tol


@pytest.mark.parametrize("severity", range(1, 6))
def test_elastic_displacement_matches_imagecorruptions(images, monkeypatch, severity: int) -> None:
    """imagecorruptions' (ImageNet) elastic is our displacement step alone: ours with no affine
    jitter, σ = 0.01 · side and the displacement scale ``alpha · max_dx``."""
    alpha = 250 * (0.05, 0.065, 0.085, 0.1, 0.12)[severity - 1]
    max_dx = 32 * 0.005
    for i, x in enumerate(images):
        g = torch.Generator().manual_seed(100 + i)
        torch.rand(1, 3, 2, generator=g, dtype=torch.float64)  # our affine draw (jitter 0: the identity)
        fields = iter(torch.rand(1, 2, 32, 32, generator=g)[0].double().numpy())  # our dx, dy
        monkeypatch.setattr(np.random, "uniform", lambda low, high, size: low + (high - low) * next(fields))
        oracle = ic.elastic_transform(_u8(x), severity)
        ours = C._elastic(x[None], (alpha * max_dx / 32, 0.01, 0.0), torch.Generator().manual_seed(100 + i))
        assert _diff(ours[0], oracle) < TOL


def test_oracle_tables_are_imagecorruptions_own() -> None:
    """The tables above are read off imagecorruptions' code, so a new release that changes them fails here."""
    assert IMAGENET_FROST in ic.frost.__code__.co_consts
    consts = {
        "Brightness": ic.brightness, "Contrast": ic.contrast, "Saturate": ic.saturate, "JPEG": ic.jpeg_compression,
        "Pixelate": ic.pixelate,
    }
    for name, fn in consts.items():
        assert DETERMINISTIC[name][2] in fn.__code__.co_consts, name
    for name, fn in (("Fog", ic.fog), ("Snow", ic.snow), ("Spatter (mud)", ic.spatter)):
        table = next(c for c in fn.__code__.co_consts if isinstance(c, tuple) and len(c) == 5)
        for severity, p in RANDOM[name][3].items():
            assert tuple(table[severity - 1]) == p, (name, severity)
