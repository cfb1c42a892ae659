"""fairdd.kd.fit_many / students: KD students side by side against fit / student, one by one.

Tolerance: trained weights and BatchNorm buffers at rtol 1e-4 / atol 1e-5, per-epoch losses
likewise (fp32 CPU; the vmapped step sums in another order, so the results are close, not
bit-identical); learning-rate schedules exactly. A resumed batched run is bit-identical.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from fairdd import kd
from fairdd.data import Dataset
from fairdd.models import NetworkSpec
from fairdd.seeding import generator as seeded_generator

torch.set_num_threads(1)

RTOL, ATOL = 1e-4, 1e-5
TINY = NetworkSpec(width=4, depth=1)
TEACHER = NetworkSpec(width=6, depth=1)


def _data(n: int = 24, k: int = 3, size: int = 8, *, grouped: bool = False) -> Dataset:
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % k
    images = torch.rand(n, 3, size, size, generator=g) + labels[:, None, None, None] * 0.3
    data = Dataset(name="toy", split="train", inputs=images, labels=labels, classes=tuple(str(c) for c in range(k)))
    if grouped:
        data = dataclasses.replace(data, attributes=(torch.arange(n) % 4 == 0).long(), attribute_values=("a", "b"))
    return data


def _config(**kw) -> kd.KDConfig:
    base = {"teacher": TEACHER, "student": TINY, "epochs": 3, "milestones": (1, 2), "batch_size": 10,
            "augment": False, "lr": 0.05, "temperature": 3.0, "alpha": 0.7}
    base.update(kw)
    return kd.KDConfig(**base)


#: A temperature sweep of one seed: the non-distilled student, Hinton's T², eq. 6 as printed,
#: and pure distillation.
SWEEP = ({"alpha": 0.0}, {"temperature": 1.0, "alpha": 0.8}, {"temperature": 4.0, "alpha": 0.8},
         {"temperature": 2.0, "alpha": 0.5, "t_squared": False}, {"temperature": 6.0, "alpha": 1.0})


def _assert_same(seq: list[torch.nn.Module], bat: list[torch.nn.Module], seq_logs, bat_logs) -> None:
    for i, (a, b, la, lb) in enumerate(zip(seq, bat, seq_logs, bat_logs)):
        for (name, p), (_, q) in zip([*a.named_parameters(), *a.named_buffers()], [*b.named_parameters(), *b.named_buffers()]):
            torch.testing.assert_close(q.float(), p.float(), rtol=RTOL, atol=ATOL, msg=lambda m, i=i, name=name: f"student {i} {name}: {m}")
        assert lb.epoch_lr == la.epoch_lr
        torch.testing.assert_close(torch.tensor(lb.epoch_loss), torch.tensor(la.epoch_loss), rtol=RTOL, atol=ATOL)


def _both(configs: list[kd.KDConfig], data: Dataset, **sources):
    """fit for each config (own θ0 i, generator seeded 100 + i) and fit_many on copies."""
    build = lambda i: configs[i].student.build(data.inputs.shape[1], data.num_classes,  # noqa: E731
                                               data.inputs.shape[-1] if data.inputs.dim() == 4 else None, seed=i)
    seq = [build(i) for i in range(len(configs))]
    seq_logs = []
    for i, (model, cfg) in enumerate(zip(seq, configs)):
        use = sources if cfg.alpha > 0 else {}
        seq_logs.append(kd.fit(model, data, cfg, generator=torch.Generator().manual_seed(100 + i), **use))
    bat = [build(i) for i in range(len(configs))]
    bat_logs = kd.fit_many(bat, data, configs, generators=[torch.Generator().manual_seed(100 + i) for i in range(len(configs))],
                           **sources)
    return seq, bat, seq_logs, bat_logs


def test_sweep_with_cached_logits_equals_sequential() -> None:
    data = _data()
    teacher = TEACHER.build(3, 3, 8, seed=9).eval()
    logits = kd.predict_logits(teacher, data.inputs)
    configs = [_config(**c) for c in SWEEP]
    _assert_same(*_both(configs, data, cached_logits=logits))


def test_sweep_with_augmentation_and_a_teacher_per_batch_equals_sequential() -> None:
    data = _data()
    teacher = TEACHER.build(3, 3, 8, seed=9).eval()
    configs = [_config(augment=True, crop_padding=2, **c) for c in SWEEP[:3]]
    _assert_same(*_both(configs, data, teacher=teacher))


def test_batchnorm_students_balanced_batches_and_clipping_equal_sequential() -> None:
    """ResNet-20 students (BatchNorm running statistics), the group-balanced resample and the
    per-student gradient clipping."""
    data = _data(grouped=True)
    teacher = TEACHER.build(3, 3, 8, seed=9).eval()
    configs = [_config(student=NetworkSpec(model="resnet20"), epochs=2, milestones=(1,), balanced_batches=True,
                       max_grad_norm=0.5, **c) for c in SWEEP[:3]]
    _assert_same(*_both(configs, data, teacher=teacher))


def test_tabular_mlp_students_equal_sequential() -> None:
    g = torch.Generator().manual_seed(1)
    labels = torch.arange(30) % 2
    data = Dataset(name="tab", split="train", inputs=torch.randn(30, 5, generator=g) + labels[:, None], labels=labels,
                   classes=("0", "1"))
    teacher = NetworkSpec(model="mlp").build(5, 2, None, seed=3).eval()
    configs = [_config(student=NetworkSpec(model="mlp_small"), teacher=NetworkSpec(model="mlp"), **c) for c in SWEEP[:3]]
    _assert_same(*_both(configs, data, teacher=teacher))


def test_students_equals_student_for_each_config() -> None:
    data = _data()
    teacher = TEACHER.build(3, 3, 8, seed=9).eval()
    configs = [_config(augment=True, crop_padding=1, **c) for c in SWEEP[:3]]
    side = kd.students(configs, data, seed=2, teacher_model=teacher)
    for cfg, (model, log) in zip(configs, side):
        alone, alone_log = kd.student(cfg, data, seed=2, teacher_model=teacher)
        _assert_same([alone], [model], [alone_log], [log])
        assert not model.training


def test_resume_is_bit_identical_and_a_foreign_checkpoint_is_refused(tmp_path) -> None:
    data = _data()
    teacher = TEACHER.build(3, 3, 8, seed=9).eval()
    configs = [_config(epochs=4, milestones=(2,), augment=True, crop_padding=1, **c) for c in SWEEP[:3]]
    straight = kd.students(configs, data, seed=0, teacher_model=teacher)
    path = tmp_path / "ckpt.pt"
    kd.students([dataclasses.replace(c, epochs=2) for c in configs], data, seed=0, teacher_model=teacher, checkpoint=path)
    resumed = kd.students(configs, data, seed=0, teacher_model=teacher, checkpoint=path)
    for (a, la), (b, lb) in zip(straight, resumed):
        assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
        assert la.epoch_loss == lb.epoch_loss and la.epoch_lr == lb.epoch_lr
    other = [dataclasses.replace(c, temperature=c.temperature + 1) for c in configs]
    with pytest.raises(ValueError, match="another batch of networks"):
        kd.students(other, data, seed=0, teacher_model=teacher, checkpoint=path)


def test_bad_batches_are_refused_before_training() -> None:
    data = _data()
    models = [TINY.build(3, 3, 8, seed=s) for s in range(2)]
    gens = [seeded_generator(s) for s in range(2)]
    with pytest.raises(ValueError, match="differ in lr"):
        kd.fit_many(models, data, [_config(alpha=0.0), _config(alpha=0.0, lr=0.1)], generators=gens)
    with pytest.raises(ValueError, match="one config and one generator per network"):
        kd.fit_many(models, data, [_config(alpha=0.0)], generators=gens)
    with pytest.raises(ValueError, match="needs a teacher"):
        kd.fit_many(models, data, [_config(alpha=0.0), _config(alpha=0.5)], generators=gens)
    with pytest.raises(ValueError, match="un-augmented"):
        kd.fit_many(models, data, [_config(augment=True)] * 2, generators=gens, cached_logits=torch.zeros(24, 3))
    before = [p.clone() for p in models[0].parameters()]
    with pytest.raises(ValueError, match="dropout"):
        kd.fit_many([torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Dropout(0.1), torch.nn.Linear(192, 3))] * 2, data,
                    [_config(alpha=0.0)] * 2, generators=gens)
    assert all(torch.equal(a, b) for a, b in zip(before, models[0].parameters()))
