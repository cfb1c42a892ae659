"""ZCA whitening as MTT's CIFAR pipeline does it.

Reference (GeorgeCazenavette/mtt-distillation@50dccea ``utils.py``): after per-channel
normalisation, ``kornia.enhance.ZCAWhitening(eps=0.1, compute_inv=True)`` is fitted on the
whole training set and applied to the training and the test images with that one fit; the
synthetic sets then live in the whitened space. This module is the same computation in torch
(kornia's ``zca_mean``, ``unbiased=True``), without the dependency:

.. math:: \\mu = \\frac1N \\sum_n x_n, \\qquad
          C = \\frac{1}{N - 1} \\sum_n (x_n - \\mu)(x_n - \\mu)^\\top = U S U^\\top,
.. math:: W = U (S + \\epsilon)^{-1/2} U^\\top, \\qquad W^{-1} = U (S + \\epsilon)^{1/2} U^\\top,
.. math:: z = (x - \\mu) W, \\qquad x = z W^{-1} + \\mu

over images flattened to vectors (``C·H·W`` features, one mean per pixel and channel).
``eps`` regularises the small eigenvalues (0.1 in the reference, in the units of the
normalised images).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["ZCA", "fit_zca"]

ZCA_EPS = 0.1  # MTT reference: K.enhance.ZCAWhitening(eps=0.1, compute_inv=True)


@dataclass(frozen=True)
class ZCA:
    """A fitted ZCA transform.

    Attributes
    ----------
    mean : ``(D,)`` per-feature mean of the fitting images (``D = C·H·W``).
    transform : ``(D, D)`` whitening matrix ``W``.
    inverse : ``(D, D)`` its inverse ``W^{-1}`` (kornia's ``compute_inv=True``).
    eps : the regulariser used.
    """

    mean: torch.Tensor
    transform: torch.Tensor
    inverse: torch.Tensor
    eps: float

    def apply(self, images: torch.Tensor) -> torch.Tensor:
        """Whiten ``(N, C, H, W)`` (or ``(N, D)``) images; same shape out."""
        flat = images.reshape(images.shape[0], -1)
        if flat.shape[1] != self.mean.numel():
            raise ValueError(f"images have {flat.shape[1]} features; the ZCA was fitted on {self.mean.numel()}")
        out = (flat - self.mean.to(flat)) @ self.transform.to(flat)
        return out.reshape(images.shape)

    def invert(self, images: torch.Tensor) -> torch.Tensor:
        """Map whitened images back (for display)."""
        flat = images.reshape(images.shape[0], -1)
        out = flat @ self.inverse.to(flat) + self.mean.to(flat)
        return out.reshape(images.shape)


def fit_zca(images: torch.Tensor, *, eps: float = ZCA_EPS) -> ZCA:
    """Fit ZCA whitening on ``images`` ``(N, ...)`` (the whole training set), unbiased
    covariance (``N − 1``), as kornia's ``ZCAWhitening(eps, compute_inv=True).fit``."""
    if images.dim() < 2 or images.shape[0] < 2:
        raise ValueError(f"images has shape {tuple(images.shape)}; need (N >= 2, ...)")
    if not eps > 0:
        raise ValueError(f"eps={eps!r} must be > 0")
    flat = images.reshape(images.shape[0], -1).to(torch.float64)
    mean = flat.mean(dim=0)
    centred = flat - mean
    cov = centred.T @ centred / (flat.shape[0] - 1)
    u, s, _ = torch.linalg.svd(cov)
    transform = u @ (torch.rsqrt(s + eps)[:, None] * u.T)
    inverse = u @ (torch.sqrt(s + eps)[:, None] * u.T)
    dtype = images.dtype if images.dtype.is_floating_point else torch.float32
    return ZCA(mean=mean.to(dtype), transform=transform.to(dtype), inverse=inverse.to(dtype), eps=float(eps))
