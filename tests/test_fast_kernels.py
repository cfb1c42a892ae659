"""NetworkSpec(fast_kernels=True): the faster CPU path, run by run against the default path.

Tolerance: weights, images and losses agree at rtol=1e-4, atol=1e-5 after a few steps or
iterations (fp32 CPU; the depthwise-convolution pooling sums the four values of a window in
another order than ``avg_pool2d``, so results are close, not necessarily bit for bit). With the
switch off, the network and the run ids are today's exactly.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn
from torch.func import functional_call, vmap
from torch.nn import functional as F

from fairdd import kd, models
from fairdd.distill import DCConfig, DMConfig, MTTConfig, distill
from fairdd.evaluate import EvalConfig, evaluate_synthetic, train_network
from fairdd.models import AvgPool2x2, NetworkSpec, build_model
from fairdd.results import canonical_config, run_id
from fairdd.seeding import generator as seeded_generator
from fairdd.training import keep_freed_memory
from tests.test_distill_common import toy_dataset

torch.set_num_threads(1)
RTOL, ATOL = 1e-4, 1e-5
SLOW, FAST = NetworkSpec(width=8, depth=2), NetworkSpec(width=8, depth=2, fast_kernels=True)


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=RTOL, atol=ATOL)


# ------------------------------------------------------------------------- the switch itself


def test_switch_is_validated_and_only_in_the_run_id_when_on() -> None:
    with pytest.raises(ValueError, match="fast_kernels=1 must be True or False"):
        NetworkSpec(fast_kernels=1)  # type: ignore[arg-type]
    assert "fast_kernels" not in canonical_config(NetworkSpec())
    cfg = DMConfig.for_profile("smoke")
    same = dataclasses.replace(cfg, network=dataclasses.replace(cfg.network, fast_kernels=False))
    fast = dataclasses.replace(cfg, network=dataclasses.replace(cfg.network, fast_kernels=True))
    assert run_id(same) == run_id(cfg) != run_id(fast)
    assert run_id(EvalConfig(network=FAST)) != run_id(EvalConfig(network=SLOW))


def test_off_builds_todays_network_and_leaves_the_allocator(monkeypatch) -> None:
    def refuse() -> bool:
        raise AssertionError("keep_freed_memory called with fast_kernels off")

    monkeypatch.setattr(models, "keep_freed_memory", refuse)
    net = SLOW.build(1, 4, 8, seed=3)
    today = build_model("convnet", channels=1, num_classes=4, image_size=8, seed=3, width=8, depth=2)
    assert [type(m) for m in net.modules()] == [type(m) for m in today.modules()]
    assert any(isinstance(m, nn.AvgPool2d) for m in net.modules())
    x = torch.randn(5, 1, 8, 8)
    assert torch.equal(net(x), today(x))


def test_on_has_the_same_parameters_and_pools_by_convolution() -> None:
    for spec in (FAST, dataclasses.replace(FAST, model="lenet"), dataclasses.replace(FAST, pooling="maxpooling")):
        slow = dataclasses.replace(spec, fast_kernels=False).build(3, 5, 32, seed=1)
        fast = spec.build(3, 5, 32, seed=1)
        assert list(slow.state_dict()) == list(fast.state_dict())
        assert all(torch.equal(a, b) for a, b in zip(slow.state_dict().values(), fast.state_dict().values()))
        x = torch.randn(4, 3, 32, 32)
        _close(fast(x), slow(x))
    assert any(isinstance(m, AvgPool2x2) for m in FAST.build(1, 4, 8).modules())
    assert keep_freed_memory() in (True, False)


@pytest.mark.parametrize("channels_last", [False, True])
def test_avgpool2x2_is_avg_pool2d_forward_backward_and_double_backward(channels_last: bool) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 9, 8, generator=g)  # odd height: the last row is dropped by both
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    pooled = [AvgPool2x2()(x), F.avg_pool2d(x, 2, 2)]
    _close(pooled[0], pooled[1])
    w = torch.randn(pooled[1].shape, generator=g)
    grads = [torch.autograd.grad((p * w).sum().pow(2), x, create_graph=True)[0] for p in pooled]
    _close(grads[0], grads[1])
    second = [torch.autograd.grad(gr.pow(2).sum(), x)[0] for gr in grads]
    _close(second[0], second[1])
    assert second[1].abs().sum() > 0


def test_avgpool2x2_under_vmap_and_in_bf16() -> None:
    net, fast = SLOW.build(1, 4, 8, seed=0), FAST.build(1, 4, 8, seed=0)
    params = {k: torch.stack([v, v + 0.01]) for k, v in net.named_parameters()}
    x = torch.randn(2, 6, 1, 8, 8)
    out = [vmap(lambda p, xx, m=m: functional_call(m, p, (xx,)))(params, x) for m in (net, fast)]
    _close(out[1], out[0])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = AvgPool2x2()(torch.randn(2, 3, 4, 4).bfloat16())
    assert y.dtype == torch.bfloat16 and y.shape == (2, 3, 2, 2)


# ------------------------------------------------------------------------- run by run


def test_evaluation_run_matches() -> None:
    train = toy_dataset()
    cfg = EvalConfig(network=SLOW, epochs=3, batch_size=16, dsa=True, num_networks=1)
    weights = []
    for spec in (SLOW, FAST):
        net = spec.build(1, 4, 8, seed=5)
        log = train_network(net, train.inputs, train.labels, dataclasses.replace(cfg, network=spec),
                             generator=seeded_generator(9))
        weights.append((net.state_dict(), log.epoch_loss))
    (slow, slow_loss), (fast, fast_loss) = weights
    for key in slow:
        _close(fast[key], slow[key])
    _close(torch.tensor(fast_loss), torch.tensor(slow_loss))
    assert not torch.equal(slow["classifier.weight"], SLOW.build(1, 4, 8, seed=5).state_dict()["classifier.weight"])
    rows = [evaluate_synthetic(train.inputs, train.labels, train, dataclasses.replace(cfg, network=s), seed=2)[0]
            for s in (SLOW, FAST)]
    assert rows[0]["accuracy"] == pytest.approx(rows[1]["accuracy"], abs=1 / len(train))
    assert rows[0]["final_train_loss"] == pytest.approx(rows[1]["final_train_loss"], rel=RTOL, abs=ATOL)


def _assert_same_sets(cfg, *, ipc: int = 2) -> None:
    train = toy_dataset()
    fast_cfg = dataclasses.replace(cfg, network=dataclasses.replace(cfg.network, fast_kernels=True))
    slow = distill(train, cfg, images_per_class=ipc, seed=4, progress=False)
    fast = distill(train, fast_cfg, images_per_class=ipc, seed=4, progress=False)
    _close(fast.images, slow.images)
    assert len(fast.losses) == len(slow.losses) == cfg.iterations
    _close(torch.tensor(fast.losses), torch.tensor(slow.losses))
    if slow.learning_rate is not None:
        assert fast.learning_rate == pytest.approx(slow.learning_rate, rel=RTOL, abs=ATOL)
    start = distill(train, dataclasses.replace(cfg, iterations=1), images_per_class=ipc, seed=4, progress=False)
    assert not torch.equal(slow.images, start.images)  # the sets moved: not a comparison of initial images


@pytest.mark.parametrize("channels_last", [False, True])
def test_dm_run_matches(channels_last: bool) -> None:
    _assert_same_sets(DMConfig(iterations=4, batch_real=8, network=SLOW, channels_last=channels_last))


@pytest.mark.parametrize("augment", [False, True])
def test_dc_run_matches(augment: bool) -> None:
    _assert_same_sets(DCConfig(iterations=3, batch_real=8, augment=augment, init="real", network=SLOW,
                               loops={2: (2, 2)}))


def test_mtt_run_matches(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FAIRDD_RESULTS", str(tmp_path))
    cfg = MTTConfig(iterations=3, num_experts=1, expert_train_epochs=3, expert_batch=16, max_start_epoch=2,
                    expert_epochs=1, syn_steps=3, lr_img=100.0, network=SLOW)
    _assert_same_sets(cfg)


def test_kd_student_matches() -> None:
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(24) % 3
    images = torch.rand(24, 3, 8, 8, generator=g) + labels[:, None, None, None] * 0.3
    from fairdd.data import Dataset

    data = Dataset(name="toy", split="train", inputs=images, labels=labels, classes=("0", "1", "2"))
    base = {"teacher": NetworkSpec(width=6, depth=1), "epochs": 3, "milestones": (1, 2), "batch_size": 8,
            "augment": True, "lr": 0.05, "temperature": 3.0, "alpha": 0.7}
    teacher = NetworkSpec(width=6, depth=1).build(3, 3, 8, seed=0)
    out = []
    for spec in (SLOW, FAST):
        model, log = kd.student(kd.KDConfig(student=spec, **base), data, seed=1, teacher_model=teacher)
        out.append((model.state_dict(), log.epoch_loss))
    for key in out[0][0]:
        _close(out[1][0][key], out[0][0][key])
    _close(torch.tensor(out[1][1]), torch.tensor(out[0][1]))
