"""Networks used by the studies.

ConvNet follows the dataset-condensation reference (VICO-UoE/DatasetCondensation@53f63a6,
``utils.py``/``networks.py``): depth × [conv3×3 → norm → act → pool], one linear head.
Its ``"instancenorm"`` is ``GroupNorm(C, C, affine=True)``. For 28×28 input the first conv
is padded by 3 so every data set ends in the same 128·4·4 = 2048 features; the reference
applies that only to 1-channel input, we apply it to any channel count (REFERENCES.md).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

__all__ = ["ConvNet", "Norm", "Pooling"]

Norm = Literal["instancenorm", "batchnorm", "layernorm", "groupnorm", "none"]
Pooling = Literal["avgpooling", "maxpooling", "none"]
Activation = Literal["relu", "leakyrelu", "sigmoid"]


def _norm_layer(norm: str, channels: int, shape: tuple[int, int, int]) -> nn.Module:
    if norm == "instancenorm":
        return nn.GroupNorm(channels, channels, affine=True)
    if norm == "batchnorm":
        return nn.BatchNorm2d(channels)
    if norm == "layernorm":
        return nn.LayerNorm(shape, elementwise_affine=True)
    if norm == "groupnorm":
        return nn.GroupNorm(4, channels, affine=True)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"norm={norm!r} is not allowed; choose one of ['batchnorm', 'groupnorm', 'instancenorm', 'layernorm', 'none']")


class ConvNet(nn.Module):
    """The DC/DSA/DM/MTT ConvNet.

    Parameters
    ----------
    channels : input channels (1 grey, 3 colour).
    num_classes : outputs of the linear head.
    image_size : input height = width (28 or 32 in the studies).
    width : feature maps per conv layer (reference 128).
    depth : number of conv blocks (reference 3).
    norm, activation, pooling : per-block choices (reference instancenorm, relu, avgpooling).
    """

    def __init__(
        self,
        channels: int,
        num_classes: int,
        image_size: int = 32,
        *,
        width: int = 128,
        depth: int = 3,
        norm: Norm = "instancenorm",
        activation: Activation = "relu",
        pooling: Pooling = "avgpooling",
    ) -> None:
        super().__init__()
        if activation not in ("relu", "leakyrelu", "sigmoid"):
            raise ValueError(f"activation={activation!r} is not allowed; choose one of ['leakyrelu', 'relu', 'sigmoid']")
        if pooling not in ("avgpooling", "maxpooling", "none"):
            raise ValueError(f"pooling={pooling!r} is not allowed; choose one of ['avgpooling', 'maxpooling', 'none']")
        if depth < 1 or width < 1:
            raise ValueError(f"depth={depth!r} and width={width!r} must be >= 1")
        # 28×28 input: pad the first conv by 3 so the map is 32×32 after it.
        size = 32 if image_size == 28 else image_size
        layers: list[nn.Module] = []
        in_ch = channels
        for d in range(depth):
            padding = 3 if (image_size == 28 and d == 0) else 1
            layers.append(nn.Conv2d(in_ch, width, kernel_size=3, padding=padding))
            layers.append(_norm_layer(norm, width, (width, size, size)))
            layers.append({"relu": nn.ReLU(inplace=True), "leakyrelu": nn.LeakyReLU(0.01), "sigmoid": nn.Sigmoid()}[activation])
            if pooling != "none":
                layers.append(nn.AvgPool2d(2, 2) if pooling == "avgpooling" else nn.MaxPool2d(2, 2))
                size //= 2
            in_ch = width
        self.features = nn.Sequential(*layers)
        self.feature_dim = width * size * size
        self.classifier = nn.Linear(self.feature_dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Flattened features before the head: (B, C, H, W) → (B, feature_dim)."""
        return self.features(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))
