"""Text teachers and students through fairdd.kd (tiny random transformers, no download)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from fairdd import kd
from fairdd.data import Dataset


@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory) -> str:
    """A folder holding a tiny BERT encoder (4 layers, 16-d, vocabulary 40, no classification
    head) with random weights: a "pretrained" source that needs no download."""
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny_bert")
    config = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=4, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16, pad_token_id=0)
    torch.manual_seed(123)
    BertModel(config).save_pretrained(folder)
    return str(folder)


def toy_corpus(n: int = 24, length: int = 7, seed: int = 0) -> Dataset:
    """Token ids with right padding; label = whether token 5 occurs, group = whether token 6 does."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(7, 40, (n, length), generator=g)
    ids[:, 0] = 2
    lengths = torch.randint(3, length + 1, (n,), generator=g)
    labels = torch.arange(n) % 2
    groups = (torch.arange(n) // 2) % 2
    ids[labels == 1, 1] = 5
    ids[groups == 1, 2] = 6
    ids[torch.arange(length)[None, :] >= lengths[:, None]] = 0
    return Dataset(name="toy", split="train", inputs=ids, labels=labels, classes=("a", "b"), attributes=groups,
                   attribute_name="group", attribute_values=("x", "y"))


def tiny_config(source: str, **overrides) -> kd.KDConfig:
    teacher = kd.TextNetworkSpec(source=source)
    student = kd.TextNetworkSpec(source=source, layers=(0, 2))
    base = kd.KDConfig(teacher=teacher, student=student, epochs=3, milestones=(2,), lr=0.05, batch_size=8,
                       augment=False, flip=False, temperature=4.0, alpha=0.8)
    return dataclasses.replace(base, **overrides)


def _params(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.state_dict().values()]


def test_distilbert_initialisation_copies_every_other_layer(tiny_source) -> None:
    from transformers import BertModel

    source = BertModel.from_pretrained(tiny_source)
    student = kd.TextNetworkSpec(source=tiny_source, layers=(0, 2)).build(7, 2, seed=0)
    assert len(student.encoder_layers) == 2 and student.model.config.num_hidden_layers == 2
    for kept, original in zip(student.encoder_layers, (0, 2)):
        theirs = source.encoder.layer[original].state_dict()
        ours = kept.state_dict()
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    # Not the skipped layer, and the embeddings come along unchanged.
    assert not torch.equal(student.encoder_layers[1].output.dense.weight, source.encoder.layer[1].output.dense.weight)
    assert torch.equal(student.model.bert.embeddings.word_embeddings.weight, source.embeddings.word_embeddings.weight)
    # The new head is drawn from the seed.
    again = kd.TextNetworkSpec(source=tiny_source, layers=(0, 2)).build(7, 2, seed=0)
    other = kd.TextNetworkSpec(source=tiny_source, layers=(0, 2)).build(7, 2, seed=1)
    assert torch.equal(again.model.classifier.weight, student.model.classifier.weight)
    assert not torch.equal(other.model.classifier.weight, student.model.classifier.weight)
    with pytest.raises(ValueError, match="has 4 encoder layers"):
        kd.TextNetworkSpec(source=tiny_source, layers=(0, 4)).build(7, 2, seed=0)


def test_random_transformer_and_frozen_parts(tiny_source) -> None:
    spec = kd.TextNetworkSpec(source=tiny_source, pretrained=False, config=(("num_hidden_layers", 1),),
                              frozen_embeddings=True, frozen_layers=1)
    model = spec.build(7, 3, seed=0)
    assert len(model.encoder_layers) == 1 and model.model.config.hidden_dropout_prob == 0.0
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in model.named_parameters() if n.startswith("model.classifier") or ".pooler." in n}
    with pytest.raises(ValueError, match="config field 'hidden_sizes'"):
        kd.TextNetworkSpec(source=tiny_source, config=(("hidden_sizes", 3),)).build(7, 2, seed=0)
    with pytest.raises(ValueError, match="int64 token ids"):
        model(torch.zeros(2, 3))
    # Trailing padding columns change nothing.
    ids = toy_corpus().inputs[:4]
    padded = torch.cat([ids, torch.zeros(4, 5, dtype=torch.int64)], 1)
    model.eval()
    torch.testing.assert_close(model(ids), model(padded))


def test_text_teacher_and_students_through_fit(tiny_source, tmp_path) -> None:
    data = toy_corpus()
    cfg = tiny_config(tiny_source)
    spec = cfg.teacher_spec(0)
    teacher, record = kd.teacher(spec, data, root=tmp_path)
    assert len(record["epoch_loss"]) == 3 and not teacher.training
    again, _ = kd.teacher(spec, data, root=tmp_path)  # read back from the cache
    assert all(torch.equal(a, b) for a, b in zip(_params(teacher), _params(again)))
    logits = kd.teacher_logits(spec, data, teacher, root=tmp_path, batch_size=5)
    assert logits.shape == (24, 2)
    # The logits cache: a student distilled from the cached logits equals one distilled from the
    # teacher batch by batch (float tolerance: batches are trimmed to their own longest post).
    cached, log = kd.student(cfg, data, seed=1, cached_logits=logits)
    live, _ = kd.student(cfg, data, seed=1, teacher_model=teacher)
    for a, b in zip(_params(cached), _params(live)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    nds, _ = kd.student(dataclasses.replace(cfg, alpha=0.0, temperature=1.0), data, seed=1)
    assert not all(torch.allclose(a, b) for a, b in zip(_params(cached), _params(nds)))
    assert len(log.epoch_loss) == 3 and log.epoch_lr == [0.05, 0.05, 0.05 * 0.1]
    with pytest.raises(ValueError, match="TextNetworkSpec student trains one by one"):
        kd.students([cfg], data, seed=1, cached_logits=logits)
    with pytest.raises(ValueError, match="augment=True needs images"):
        kd.student(dataclasses.replace(cfg, augment=True), data, seed=1, cached_logits=logits)


def test_text_student_resumes_bit_for_bit(tiny_source, tmp_path) -> None:
    data = toy_corpus()
    cfg = tiny_config(tiny_source)
    logits = torch.randn(len(data), 2, generator=torch.Generator().manual_seed(3))
    straight, log = kd.student(cfg, data, seed=4, cached_logits=logits)
    # Two epochs, "killed", then the third from the checkpoint.
    ckpt = tmp_path / "student.pt"
    kd.student(dataclasses.replace(cfg, epochs=2), data, seed=4, cached_logits=logits, checkpoint=ckpt)
    resumed, log2 = kd.student(cfg, data, seed=4, cached_logits=logits, checkpoint=ckpt)
    assert all(torch.equal(a, b) for a, b in zip(_params(straight), _params(resumed)))
    assert log2.epoch_loss == log.epoch_loss
