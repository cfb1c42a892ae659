"""Networks used by the studies, and :func:`build_model` to make one by name.

Every network maps ``(B, C, H, W)`` (or ``(B, D)`` for :class:`MLP`) to ``(B, num_classes)``
logits and exposes ``embed(x)``: the input of its last linear layer, ``(B, feature_dim)``,
which is what distribution matching compares and what an adversary or a probe reads.

- :class:`ConvNet` follows the dataset-condensation reference (VICO-UoE/DatasetCondensation@53f63a6,
  ``networks.py``): depth × [conv3×3 → norm → act → pool], one linear head. Its
  ``"instancenorm"`` is ``GroupNorm(C, C, affine=True)``. For 28×28 input the first conv is
  padded by 3 so every data set ends in the same 128·4·4 = 2048 features; the reference applies
  that only to 1-channel input (``networks.py``, ``ConvNet._make_layers``: ``padding=3 if
  channel == 1 and im_size[0] == 28``), we apply it to any channel count.
  With ``fast_kernels=True`` its 2×2 average pooling runs as a depthwise stride-2 convolution
  with fixed weights ¼ (:class:`AvgPool2x2`): the same function, a faster CPU kernel.
- :class:`AlexNet` is the reference's small "AlexNet" (no norm, no dropout); the first conv is
  padded by 4 for 28×28 input (reference: for 1-channel input) so both sizes end in 192·4·4.
- :class:`LeNet` is the reference's LeNet-5 (ReLU and max-pooling, as in the DC code, not the
  1998 tanh/subsampling): padded by 2 for 28×28 input, unpadded for 32×32, so both reach 16·5·5.
- :func:`resnet20`, :func:`resnet56` are the CIFAR ResNets of He et al. (2016, §4.2) with the
  parameter-free **option A** shortcut (stride-2 subsampling and zero-padded channels), the
  variant whose sizes the paper reports (0.27M and 0.85M).
- ``"resnet18"``, ``"resnet50"`` are torchvision's ImageNet ResNets (:class:`TorchvisionResNet`,
  randomly initialised), Mohammadshahi & Ioannou's ResNet-50 → ResNet-18 pair for CelebA, Tiny
  ImageNet and ImageNet; a first convolution for other than 3 input channels.
- :class:`MLP` is the classifier of Han et al. 2022, "Towards Fair Supervised Dataset
  Distillation for Text Classification": in → 300 tanh → 300 tanh → classes, Xavier-normal
  weights and zero biases (HanXudong/fairlib); ``hidden(x)`` is what its adversary reads.
  :func:`init_theta0` draws that θ0 from an explicit generator. ``"mlp_small"`` is the same
  class with one hidden layer of :data:`SMALL_MLP_HIDDEN` tanh units: the smaller student of
  our tabular stand-ins for Mohammadshahi & Ioannou, "What's Left After Distillation? How
  Knowledge Transfer Impacts Fairness and Bias" (:mod:`fairdd.kd`).

:class:`NetworkSpec` is the one way a config names a network (model and constructor
arguments): the distillation configs and :class:`fairdd.evaluate.EvalConfig` hold one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import torch
from torch import nn
from torch.nn import functional as F

from fairdd.config import check_choice, check_int
from fairdd.seeding import torch_seeded
from fairdd.training import keep_freed_memory

__all__ = [
    "IMAGE_MODELS",
    "MLP",
    "MODEL_NAMES",
    "NORMS",
    "SMALL_MLP_HIDDEN",
    "AlexNet",
    "AvgPool2x2",
    "ConvNet",
    "LeNet",
    "ModelName",
    "NetworkSpec",
    "Norm",
    "Pooling",
    "ResNetCifar",
    "TorchvisionResNet",
    "build_model",
    "count_parameters",
    "init_theta0",
    "resnet20",
    "resnet56",
]

#: Hidden widths of ``"mlp_small"`` (one layer of 64 instead of the MLP's two of 300), the
#: student network of our tabular stand-ins for Mohammadshahi & Ioannou.
SMALL_MLP_HIDDEN: tuple[int, ...] = (64,)

Norm = Literal["instancenorm", "batchnorm", "layernorm", "groupnorm", "none"]
Pooling = Literal["avgpooling", "maxpooling", "none"]
Activation = Literal["relu", "leakyrelu", "sigmoid"]
ModelName = Literal["convnet", "alexnet", "lenet", "resnet20", "resnet56", "resnet18", "resnet50", "mlp", "mlp_small"]
MODEL_NAMES: tuple[str, ...] = get_args(ModelName)
#: The networks that take images (all but the MLPs): what a distillation may use.
IMAGE_MODELS: tuple[str, ...] = tuple(m for m in MODEL_NAMES if not m.startswith("mlp"))
NORMS: tuple[str, ...] = get_args(Norm)
POOLINGS: tuple[str, ...] = get_args(Pooling)
ACTIVATIONS: tuple[str, ...] = get_args(Activation)


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


class AvgPool2x2(nn.Module):
    """``nn.AvgPool2d(2, 2)`` as a depthwise convolution: kernel 2×2 of ¼, stride 2, one group per
    channel. The same function (¼ is a power of two, so each product is exact and only the
    summation order may differ); on the CPU the convolution kernel is faster than PyTorch's
    channels-first average pooling, forward and backward (``benchmarks/bench_profile.py``
    measures both). Channels-last input is pooled by ``F.avg_pool2d`` itself, whose
    channels-last kernel is already the fast one. The weight is made per call (tiny), so the module has no parameters or
    buffers and follows the input's device and dtype; autograd, double backward (DC, MTT) and
    ``vmap`` go through ``F.conv2d``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
            return F.avg_pool2d(x, 2, 2)  # channels-last pooling is vectorised over channels already
        c = x.shape[-3]
        weight = torch.full((c, 1, 2, 2), 0.25, dtype=x.dtype, device=x.device)
        return F.conv2d(x, weight, stride=2, groups=c)


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
    fast_kernels : average pooling by :class:`AvgPool2x2` instead of ``nn.AvgPool2d`` (the same
        function; see :attr:`NetworkSpec.fast_kernels`). The parameters are the same either way.
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
        fast_kernels: bool = False,
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
                if pooling == "maxpooling":
                    layers.append(nn.MaxPool2d(2, 2))
                else:
                    layers.append(AvgPool2x2() if fast_kernels else nn.AvgPool2d(2, 2))
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


class AlexNet(nn.Module):
    """The dataset-distillation "AlexNet" (reference ``networks.py``): five convs, no norm, no dropout.

    Conv(c,128,5) ReLU MaxPool2 → Conv(128,192,5,p2) ReLU MaxPool2 → Conv(192,256,3,p1) ReLU →
    Conv(256,192,3,p1) ReLU → Conv(192,192,3,p1) ReLU MaxPool2 → Linear(192·s·s, classes),
    with s = 4 for 28×28 and 32×32 input.

    Parameters
    ----------
    channels : input channels.
    num_classes : outputs of the linear head.
    image_size : input height = width. The first conv is padded by 4 for 28×28 (→ 32×32 after
        it) and by 2 otherwise.
    """

    def __init__(self, channels: int, num_classes: int, image_size: int = 32) -> None:
        super().__init__()
        _check_dims(channels=channels, num_classes=num_classes, image_size=image_size)
        padding = 4 if image_size == 28 else 2
        self.features = nn.Sequential(
            nn.Conv2d(channels, 128, kernel_size=5, padding=padding),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(128, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(192, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 192, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(192, 192, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, 2),
        )
        size = (image_size + 2 * padding - 4) // 2 // 2 // 2
        if size < 1:
            raise ValueError(f"image_size={image_size!r} is too small for AlexNet; use >= 8")
        self.feature_dim = 192 * size * size
        self.classifier = nn.Linear(self.feature_dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, 192·s·s) flattened conv features."""
        return self.features(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


class LeNet(nn.Module):
    """LeNet-5 as in the dataset-condensation reference, for grey or colour input.

    Conv(c,6,5) ReLU MaxPool2 → Conv(6,16,5) ReLU MaxPool2 → Linear(16·5·5,120) ReLU →
    Linear(120,84) ReLU → Linear(84, classes). ReLU and max-pooling replace the 1998 paper's
    tanh and trainable subsampling, as in the reference and in common "LeNet-5" student models.

    Parameters
    ----------
    channels : input channels (1 grey, 3 colour: "adapted for colour" means only this).
    num_classes : outputs of the last layer.
    image_size : input height = width. 28×28 input is padded by 2 in the first conv (the
        1998 network's 32×32 retina); any other size is not padded (32×32 → 16·5·5).
    """

    def __init__(self, channels: int, num_classes: int, image_size: int = 32) -> None:
        super().__init__()
        _check_dims(channels=channels, num_classes=num_classes, image_size=image_size)
        padding = 2 if image_size == 28 else 0
        self.features = nn.Sequential(
            nn.Conv2d(channels, 6, kernel_size=5, padding=padding),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(6, 16, kernel_size=5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, 2),
        )
        size = ((image_size + 2 * padding - 4) // 2 - 4) // 2
        if size < 1:
            raise ValueError(f"image_size={image_size!r} is too small for LeNet; use >= 16")
        self.fc1 = nn.Linear(16 * size * size, 120)
        self.fc2 = nn.Linear(120, 84)
        self.classifier = nn.Linear(84, num_classes)
        self.feature_dim = 84

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, 84), the input of the last linear layer."""
        h = self.features(x).flatten(1)
        return F.relu(self.fc2(F.relu(self.fc1(h))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


class _BasicBlock(nn.Module):
    """conv3×3-BN-ReLU-conv3×3-BN plus an option-A shortcut, then ReLU (He et al. 2016, fig. 2)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.stride = stride
        # Option A: identity, or stride-2 subsampling with the new channels zero-filled
        # (no parameters), split evenly before and after the old ones.
        self.pad = out_ch - in_ch

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.pad:
            x = F.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self._shortcut(x))


class ResNetCifar(nn.Module):
    """The CIFAR ResNet of He et al. (2016, §4.2): 6n + 2 layers, widths 16/32/64.

    conv3×3(16)-BN-ReLU → 3 stages of n basic blocks (16, 32, 64 maps; stride 2 entering stages
    2 and 3) → global average pool → Linear(64, classes). Shortcuts are option A (parameter
    free). Convolutions are Kaiming-normal initialised (fan-out, as torchvision's ResNets).
    Works for any input size ≥ 4 (global pooling); the paper uses 32×32.

    Parameters
    ----------
    channels : input channels.
    num_classes : outputs of the linear head.
    blocks_per_stage : n (3 → ResNet-20, 9 → ResNet-56).
    """

    def __init__(self, channels: int, num_classes: int, blocks_per_stage: int) -> None:
        super().__init__()
        _check_dims(channels=channels, num_classes=num_classes)
        if isinstance(blocks_per_stage, bool) or not isinstance(blocks_per_stage, int) or blocks_per_stage < 1:
            raise ValueError(f"blocks_per_stage={blocks_per_stage!r} must be an integer >= 1")
        self.stem = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True)
        )
        stages: list[nn.Module] = []
        in_ch = 16
        for i, out_ch in enumerate((16, 32, 64)):
            for b in range(blocks_per_stage):
                stages.append(_BasicBlock(in_ch, out_ch, stride=2 if (i > 0 and b == 0) else 1))
                in_ch = out_ch
        self.stages = nn.Sequential(*stages)
        self.feature_dim = 64
        self.classifier = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, 64) globally average-pooled features."""
        return self.stages(self.stem(x)).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


def resnet20(channels: int, num_classes: int) -> ResNetCifar:
    """ResNet-20 (n = 3, 269,722 parameters for 3 channels and 10 classes: "0.27M")."""
    return ResNetCifar(channels, num_classes, blocks_per_stage=3)


def resnet56(channels: int, num_classes: int) -> ResNetCifar:
    """ResNet-56 (n = 9, 853,018 parameters for 3 channels and 10 classes: "0.85M")."""
    return ResNetCifar(channels, num_classes, blocks_per_stage=9)


class TorchvisionResNet(nn.Module):
    """torchvision's ResNet-18 or ResNet-50 (He et al. 2016, ImageNet form), randomly initialised.

    The torchvision network is kept whole as ``body`` (its ``fc`` replaced by an identity, so its
    output is the pooled features) and its last layer is ``classifier``: ``body.*`` and
    ``classifier.*`` are torchvision's state-dict entries with ``fc.*`` renamed, so pretrained
    weights load by that renaming. For ``channels != 3`` the first convolution takes that many
    channels (same shape otherwise). Any input size of at least 32×32 works (global pooling).
    """

    def __init__(self, depth: Literal[18, 50], channels: int, num_classes: int) -> None:
        super().__init__()
        from torchvision.models import resnet18, resnet50

        _check_dims(channels=channels, num_classes=num_classes)
        if depth not in (18, 50):
            raise ValueError(f"depth={depth!r} is not allowed; choose one of [18, 50]")
        net = (resnet18 if depth == 18 else resnet50)(weights=None, num_classes=num_classes)
        if channels != 3:
            net.conv1 = nn.Conv2d(channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
            nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")  # as torchvision
        self.classifier = net.fc
        net.fc = nn.Identity()
        self.body = net
        self.feature_dim = self.classifier.in_features

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, 512 or 2048) globally average-pooled features."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


class MLP(nn.Module):
    """Han et al.'s classifier: in → 300 tanh → 300 tanh → classes (HanXudong/fairlib).

    Image input ``(B, C, H, W)`` is flattened. Linear weights are Xavier-normal and biases
    zero, so θ0 is reproducible from the seed and shared by distillation and retraining.

    Parameters
    ----------
    in_features : D of the ``(B, D)`` input (or C·H·W of an image).
    num_classes : outputs of the last layer.
    hidden : widths of the hidden layers (Han et al.: (300, 300)).
    activation : ``"tanh"`` (Han et al.) or ``"relu"``.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden: Sequence[int] = (300, 300),
        activation: Literal["tanh", "relu"] = "tanh",
    ) -> None:
        super().__init__()
        _check_dims(in_features=in_features, num_classes=num_classes)
        if activation not in ("tanh", "relu"):
            raise ValueError(f"activation={activation!r} is not allowed; choose one of ['relu', 'tanh']")
        hidden = tuple(hidden)
        if not hidden or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden):
            raise ValueError(f"hidden={hidden!r} must be a non-empty sequence of integers >= 1")
        act: type[nn.Module] = nn.Tanh if activation == "tanh" else nn.ReLU
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), act()]
            width = h
        self.body = nn.Sequential(*layers)
        self.feature_dim = width
        self.classifier = nn.Linear(width, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) or (B, C, H, W) → (B, hidden[-1]), the last hidden state (after the activation)."""
        return self.body(x.flatten(1))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`hidden`."""
        return self.hidden(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.hidden(x))


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of scalar parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def build_model(
    name: ModelName,
    *,
    channels: int,
    num_classes: int,
    image_size: int | None = None,
    seed: int | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Make a network by name.

    Parameters
    ----------
    name : one of ``MODEL_NAMES``.
    channels : input channels; for ``"mlp"`` on vector input, the input dimension D.
    num_classes : number of outputs.
    image_size : input height = width; ``None`` for vector input (``"mlp"`` only). ResNets
        ignore it (global pooling).
    seed : when given, the parameters are initialised under ``torch.manual_seed(seed)`` inside
        ``torch.random.fork_rng``, so the same seed gives the same θ0 and the caller's global
        RNG is left as it was. ``None`` uses the global RNG.
    **kwargs : passed to the constructor (``width``, ``depth``, ``norm``... for ``"convnet"``;
        ``hidden``, ``activation``, ``in_features`` for ``"mlp"``).

    Returns
    -------
    The network on the CPU, in training mode.
    """
    if name not in MODEL_NAMES:
        raise ValueError(f"name={name!r} is not allowed; choose one of {sorted(MODEL_NAMES)}")
    if not name.startswith("mlp") and image_size is None and not name.startswith("resnet"):
        raise ValueError(f"image_size=None is only allowed for the MLPs and the ResNets, not {name!r}")
    with torch_seeded(seed):
        if name == "convnet":
            return ConvNet(channels, num_classes, image_size, **kwargs)
        if name == "alexnet":
            return AlexNet(channels, num_classes, image_size, **kwargs)
        if name == "lenet":
            return LeNet(channels, num_classes, image_size, **kwargs)
        if name == "resnet20":
            return resnet20(channels, num_classes, **kwargs)
        if name == "resnet56":
            return resnet56(channels, num_classes, **kwargs)
        if name in ("resnet18", "resnet50"):
            return TorchvisionResNet(int(name[len("resnet"):]), channels, num_classes, **kwargs)  # type: ignore[arg-type]
        in_features = kwargs.pop("in_features", channels * (image_size or 1) ** 2)
        if name == "mlp_small":
            kwargs.setdefault("hidden", SMALL_MLP_HIDDEN)
        return MLP(in_features, num_classes, **kwargs)


def _check_dims(**dims: int) -> None:
    for field, value in dims.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{field}={value!r} must be an integer >= 1")


def init_theta0(model: nn.Module, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """θ0 of Han et al.'s MLP: Xavier-normal weights and zero biases for every Linear, drawn
    from ``generator`` (see :func:`fairdd.seeding.stream_generator` with ``THETA0``).

    Returns a name → tensor dict in ``model.named_parameters()`` order (on CPU, float32),
    usable with :func:`torch.func.functional_call`.
    """
    theta = {}
    for name, p in model.named_parameters():
        t = torch.empty(p.shape, dtype=p.dtype)
        if name.endswith("weight"):
            nn.init.xavier_normal_(t, generator=generator)
        else:
            nn.init.zeros_(t)
        theta[name] = t
    return theta


@dataclass(frozen=True, kw_only=True)
class NetworkSpec:
    """A network by name and constructor arguments: what :func:`build_model` builds.

    Attributes
    ----------
    model : one of :data:`MODEL_NAMES` (reference ``"convnet"``).
    width : ConvNet feature maps per conv layer (reference 128).
    depth : ConvNet conv blocks (reference 3).
    norm : ConvNet normalisation (reference ``"instancenorm"``, i.e. ``GroupNorm(C, C)``).
    activation : ConvNet activation (reference ``"relu"``).
    pooling : ConvNet pooling (reference ``"avgpooling"``).

    fast_kernels : the faster CPU path of every loop that trains or runs this network
        (evaluation, DC/DSA, DM, MTT, KD): :meth:`build` makes the process's allocator keep
        freed memory for reuse (:func:`fairdd.training.keep_freed_memory`: no page faults on
        every step's fresh activations), the ConvNet pools with :class:`AvgPool2x2`, and DM
        embeds its real batches channels-first (its ``channels_last`` is ignored). The
        same functions and parameters; results equal the default path's within float tolerance
        (summation order), not necessarily bit for bit, so the field is part of the run id when
        on and left out at its default (recorded runs keep their ids). Default off.
        ``benchmarks/bench_flops.py`` measures the ratio, ``benchmarks/bench_profile.py`` where
        the time goes; ``tests/test_fast_kernels.py`` holds the tolerances.

    ``width``, ``depth``, ``norm``, ``activation`` and ``pooling`` apply to ``"convnet"``
    only; the other networks have fixed shapes (the MLP is Han et al.'s 300-300 tanh one).
    Defaults are the DC/DSA/DM/MTT references' ConvNet-128-3, instance norm, ReLU, average
    pooling. A bad value raises ``ValueError`` naming the field, the value and what is allowed.
    """

    model: ModelName = "convnet"
    width: int = 128
    depth: int = 3
    norm: Norm = "instancenorm"
    activation: Activation = "relu"
    pooling: Pooling = "avgpooling"
    fast_kernels: bool = field(default=False, metadata={"run_id": "unless_default"})

    def __post_init__(self) -> None:
        check_choice("model", self.model, MODEL_NAMES)
        if not isinstance(self.fast_kernels, bool):
            raise ValueError(f"fast_kernels={self.fast_kernels!r} must be True or False")
        check_int("width", self.width, minimum=1)
        check_int("depth", self.depth, minimum=1)
        check_choice("norm", self.norm, NORMS)
        check_choice("activation", self.activation, ACTIVATIONS)
        check_choice("pooling", self.pooling, POOLINGS)

    def kwargs(self) -> dict[str, Any]:
        """The constructor arguments :func:`build_model` gets besides the shapes (``{}`` for
        every network but the ConvNet; ``fast_kernels`` only when on)."""
        if self.model == "convnet":
            kwargs: dict[str, Any] = {
                "width": self.width,
                "depth": self.depth,
                "norm": self.norm,
                "activation": self.activation,
                "pooling": self.pooling,
            }
            if self.fast_kernels:
                kwargs["fast_kernels"] = True
            return kwargs
        return {}

    def build(self, channels: int, num_classes: int, image_size: int | None, *, seed: int | None = None) -> nn.Module:
        """``build_model(self.model, channels=..., num_classes=..., image_size=..., seed=seed,
        **self.kwargs())``: the network on the CPU, in training mode. With ``fast_kernels``
        it also calls :func:`fairdd.training.keep_freed_memory` (process-wide)."""
        if self.fast_kernels:
            keep_freed_memory()
        return build_model(
            self.model, channels=channels, num_classes=num_classes, image_size=image_size, seed=seed, **self.kwargs()
        )
