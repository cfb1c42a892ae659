"""Shapes, hand-computed parameter counts, seeding and validation of the networks."""

import pytest
import torch
from torch import nn

from fairdd.models import (
    MLP,
    MODEL_NAMES,
    AlexNet,
    ConvNet,
    LeNet,
    NetworkSpec,
    build_model,
    count_parameters,
    resnet20,
    resnet56,
)


def conv(cin: int, cout: int, k: int, bias: bool = True) -> int:
    return cin * cout * k * k + (cout if bias else 0)


def linear(fin: int, fout: int) -> int:
    return fin * fout + fout


def test_convnet_parameter_count_by_hand() -> None:
    # 3 × [conv3×3 + GroupNorm(128,128) (γ, β)] + Linear(128·4·4, 10); 28×28 padded to 32×32.
    expected = conv(1, 128, 3) + 256 + 2 * (conv(128, 128, 3) + 256) + linear(2048, 10)
    assert expected == 317_706
    assert count_parameters(ConvNet(1, 10, 28)) == expected


def test_alexnet_parameter_count_by_hand() -> None:
    body = conv(128, 192, 5) + conv(192, 256, 3) + conv(256, 192, 3) + conv(192, 192, 3)
    assert count_parameters(AlexNet(1, 10, 28)) == conv(1, 128, 5) + body + linear(192 * 16, 10) == 1_865_802
    assert count_parameters(AlexNet(3, 10, 32)) == conv(3, 128, 5) + body + linear(192 * 16, 10)


def test_lenet_parameter_count_by_hand() -> None:
    tail = conv(6, 16, 5) + linear(400, 120) + linear(120, 84) + linear(84, 10)
    assert count_parameters(LeNet(1, 10, 28)) == conv(1, 6, 5) + tail == 61_706  # classic LeNet-5
    assert count_parameters(LeNet(3, 10, 32)) == conv(3, 6, 5) + tail


def resnet_count(n: int, channels: int = 3, classes: int = 10) -> int:
    total = conv(channels, 16, 3, bias=False) + 2 * 16
    cin = 16
    for width in (16, 32, 64):
        for _ in range(n):
            total += conv(cin, width, 3, bias=False) + conv(width, width, 3, bias=False) + 4 * width
            cin = width
    return total + linear(64, classes)


def test_resnet_parameter_counts() -> None:
    assert count_parameters(resnet20(3, 10)) == resnet_count(3) == 269_722  # "0.27M", He et al. table 6
    assert count_parameters(resnet56(3, 10)) == resnet_count(9) == 853_018  # "0.85M"
    assert count_parameters(resnet20(1, 100)) == resnet_count(3, 1, 100)


def test_mlp_count_and_hidden() -> None:
    m = MLP(768, 28)
    assert count_parameters(m) == linear(768, 300) + linear(300, 300) + linear(300, 28)
    x = torch.randn(5, 768)
    h = m.hidden(x)
    assert h.shape == (5, 300)
    assert h.abs().max() <= 1.0  # tanh output
    torch.testing.assert_close(m(x), m.classifier(h))
    # Xavier-normal weights, zero biases
    assert all(torch.count_nonzero(mod.bias) == 0 for mod in m.modules() if isinstance(mod, nn.Linear))
    std = m.body[0].weight.std().item()
    assert abs(std - (2.0 / (768 + 300)) ** 0.5) < 0.002


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32)])
def test_shapes_and_embed(name: str, channels: int, size: int) -> None:
    model = build_model(name, channels=channels, num_classes=7, image_size=size, seed=0)
    x = torch.rand(2, channels, size, size)
    out = model(x)
    assert out.shape == (2, 7)
    emb = model.embed(x)
    assert emb.shape == (2, model.feature_dim)
    torch.testing.assert_close(model.classifier(emb), out)


def test_reference_feature_sizes() -> None:
    assert ConvNet(3, 10, 28).feature_dim == ConvNet(1, 10, 32).feature_dim == 2048
    assert AlexNet(1, 10, 28).feature_dim == AlexNet(3, 10, 32).feature_dim == 192 * 4 * 4


def test_build_model_seed_is_reproducible_and_leaves_global_rng() -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = build_model("convnet", channels=1, num_classes=3, image_size=28, seed=5, width=8)
    assert torch.equal(torch.get_rng_state(), before)
    b = build_model("convnet", channels=1, num_classes=3, image_size=28, seed=5, width=8)
    c = build_model("convnet", channels=1, num_classes=3, image_size=28, seed=6, width=8)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.classifier.weight, c.classifier.weight)


def test_build_model_mlp_on_vectors() -> None:
    m = build_model("mlp", channels=12, num_classes=2, image_size=None)
    assert m(torch.randn(4, 12)).shape == (4, 2)


def test_build_model_rejects_unknown_name() -> None:
    with pytest.raises(ValueError, match="name='vgg11'"):
        build_model("vgg11", channels=3, num_classes=10, image_size=32)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "make,field",
    [
        (lambda: ConvNet(1, 10, 28, norm="weird"), "norm"),  # type: ignore[arg-type]
        (lambda: ConvNet(1, 10, 28, activation="gelu"), "activation"),  # type: ignore[arg-type]
        (lambda: MLP(10, 2, activation="gelu"), "activation"),  # type: ignore[arg-type]
        (lambda: MLP(10, 2, hidden=()), "hidden"),
        (lambda: LeNet(0, 10, 32), "channels"),
        (lambda: AlexNet(3, 10, 4), "image_size"),
        (lambda: build_model("convnet", channels=1, num_classes=2), "image_size"),
    ],
)
def test_invalid_arguments_name_the_field(make, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        make()


def test_network_spec_defaults_are_the_reference_convnet() -> None:
    spec = NetworkSpec()
    assert (spec.model, spec.width, spec.depth, spec.norm, spec.activation, spec.pooling) == (
        "convnet", 128, 3, "instancenorm", "relu", "avgpooling")
    assert spec.kwargs() == {"width": 128, "depth": 3, "norm": "instancenorm", "activation": "relu",
                             "pooling": "avgpooling"}
    assert NetworkSpec(model="alexnet").kwargs() == {} and NetworkSpec(model="mlp").kwargs() == {}
    hash(spec)


def test_network_spec_builds_what_build_model_builds() -> None:
    spec = NetworkSpec(width=8, depth=2, norm="batchnorm")
    a = spec.build(1, 3, 28, seed=5)
    b = build_model("convnet", channels=1, num_classes=3, image_size=28, seed=5, width=8, depth=2, norm="batchnorm")
    assert [p.shape for p in a.parameters()] == [p.shape for p in b.parameters()]
    assert all(torch.equal(pa, pb) for pa, pb in zip(a.parameters(), b.parameters()))
    assert NetworkSpec(model="mlp").build(12, 2, None)(torch.randn(4, 12)).shape == (4, 2)


@pytest.mark.parametrize(
    "field,value",
    [("model", "vgg"), ("width", 0), ("depth", 1.5), ("norm", "weird"), ("activation", "gelu"), ("pooling", "max")],
)
def test_network_spec_rejects_bad_values_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"^{field}="):
        NetworkSpec(**{field: value})
    with pytest.raises(TypeError):
        NetworkSpec("convnet")  # type: ignore[misc]  # keyword-only


@pytest.mark.parametrize(("name", "features", "reference_count"), [("resnet18", 512, 11_689_512),
                                                                 ("resnet50", 2048, 25_557_032)])
def test_torchvision_resnets_are_torchvisions(name: str, features: int, reference_count: int) -> None:
    """The same parameters as torchvision's network (its published counts at 1000 classes), the
    state dict torchvision's with ``fc`` renamed, and the real input shapes of the paper's data
    sets: CelebA and Tiny ImageNet as 64×64 RGB, ImageNet 224×224."""
    import torchvision

    model = build_model(name, channels=3, num_classes=1000, image_size=224, seed=0)
    assert count_parameters(model) == reference_count and model.feature_dim == features
    reference = getattr(torchvision.models, name)(weights=None)
    renamed = {("classifier." + k[3:] if k.startswith("fc.") else "body." + k): v for k, v in reference.state_dict().items()}
    model.load_state_dict(renamed)  # every key and shape matches
    model.eval(), reference.eval()
    x = torch.rand(1, 3, 224, 224)
    torch.testing.assert_close(model(x), reference(x))
    for channels, classes, size in [(3, 2, 64), (3, 200, 64), (1, 10, 32)]:  # CelebA smiling, Tiny ImageNet, grey
        small = build_model(name, channels=channels, num_classes=classes, image_size=size, seed=1)
        out = small(torch.rand(2, channels, size, size))
        assert out.shape == (2, classes) and torch.isfinite(out).all()


def test_every_kd_pair_names_a_network_spec_can_build() -> None:
    from fairdd.kd import PAIRS

    for teacher, student in PAIRS.values():
        NetworkSpec(model=teacher), NetworkSpec(model=student)  # raises on a name build_model does not know
