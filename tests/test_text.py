"""Text: MOJI and BIOS loaders on tiny files in fairlib's formats, and embed_texts' pooling."""

import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from fairdd.data import BIOS_PROFESSIONS, default_text_encoder, embed_texts, load_bios, load_dataset, load_moji


def write_moji(root, split, rows=12, dim=6):
    folder = root / "moji" / split
    folder.mkdir(parents=True)
    for k, stem in enumerate(("pos_pos", "pos_neg", "neg_pos", "neg_neg")):
        # Row i of file k is [k, i, i, ...]: its origin can be read back.
        x = np.tile(np.arange(rows, dtype=np.float32)[:, None], (1, dim))
        x[:, 0] = k
        np.save(folder / f"{stem}.npy", x)


def test_moji_follows_fairlibs_counts_and_labels(tmp_path):
    write_moji(tmp_path, "train")
    ds = load_moji(tmp_path, "train", n=20)
    # n=20, p=0.5, ratio 0.8 (train): happy-AAE 8, happy-SAE 2, sad-AAE 2, sad-SAE 8.
    file_of_row = ds.inputs[:, 0].long()
    assert torch.bincount(file_of_row).tolist() == [8, 2, 2, 8]
    assert ds.labels.tolist() == [1] * 10 + [0] * 10  # pos_* = happy = 1
    assert ds.attributes.tolist() == [1] * 8 + [0] * 2 + [1] * 2 + [0] * 8  # *_pos = AAE = 1
    assert ds.inputs[:8, 1].tolist() == list(range(8))  # the first rows of each file
    assert ds.inputs.dtype == torch.float32 and ds.classes == ("sad", "happy")
    assert ds.attribute_name == "race" and ds.attribute_values == ("SAE", "AAE")


def test_moji_dev_is_balanced_and_truncates_to_the_files(tmp_path):
    write_moji(tmp_path, "dev", rows=3)
    ds = load_moji(tmp_path, "dev")  # n = 100 000 wants 25 000 per file; the files hold 3
    assert len(ds) == 12
    two = load_moji(tmp_path, "dev", n=8)  # ratio 0.5: 2 per file
    assert torch.bincount(two.inputs[:, 0].long()).tolist() == [2, 2, 2, 2]


def test_moji_missing_files_name_them(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"pos_pos\.npy.*moji/test.*fairlib"):
        load_moji(tmp_path, "test")
    with pytest.raises(ValueError, match="split"):
        load_moji(tmp_path, "valid")


def write_bios(root, split, n=5, dim=4):
    (root / "bios").mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame({
        "bert_avg_SE": [np.full(dim, i, dtype=np.float64) for i in range(n)],
        "profession_class": [i % 28 for i in range(0, 7 * n, 7)],
        "gender_class": [i % 2 for i in range(n)],
        "hard_text": [f"bio {i}" for i in range(n)],
    })
    df.to_pickle(root / "bios" / f"bios_{split}_df.pkl")
    return df


def test_bios_reads_fairlibs_pickle(tmp_path):
    df = write_bios(tmp_path, "train")
    ds = load_bios(tmp_path, "train")
    assert ds.inputs.shape == (5, 4) and ds.inputs.dtype == torch.float32
    assert ds.inputs[:, 0].tolist() == [0, 1, 2, 3, 4]
    assert ds.labels.tolist() == df["profession_class"].tolist()
    assert ds.attributes.tolist() == [0, 1, 0, 1, 0]
    assert ds.num_classes == 28 and ds.classes[13] == "nurse" and BIOS_PROFESSIONS == tuple(sorted(BIOS_PROFESSIONS))
    assert ds.attribute_values == ("male", "female")


def test_bios_missing_file_and_column(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"bios_dev_df\.pkl.*bios"):
        load_bios(tmp_path, "dev")
    write_bios(tmp_path, "test")
    with pytest.raises(ValueError, match="bert_cls_SE"):
        load_bios(tmp_path, "test", embedding="bert_cls_SE")


def test_registered_with_load_dataset(tmp_path):
    write_moji(tmp_path, "test")
    write_bios(tmp_path, "dev")
    assert len(load_dataset("moji", "test", root=tmp_path, n=8)) == 8
    assert load_dataset("bios", "dev", root=tmp_path).name == "bios"


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory):
    """A 1-layer random BERT with the bundled encoder's tokenizer: fast, and never online."""
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny_bert")
    src = default_text_encoder()
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(src / name, folder / name)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
    BertModel(cfg).save_pretrained(folder)
    return folder


def test_embed_texts_mean_pools_only_real_tokens(tiny_encoder):
    """Batched (padded) pooling equals each text embedded alone (no padding at all)."""
    from transformers import AutoModel, AutoTokenizer

    texts = ["a nurse.", "he writes software for a large company in the city", "she"]
    got = embed_texts(texts, tiny_encoder, batch_size=3, device="cpu")
    tok, enc = AutoTokenizer.from_pretrained(tiny_encoder), AutoModel.from_pretrained(tiny_encoder).eval()
    for i, t in enumerate(texts):
        with torch.no_grad():
            alone = enc(**tok([t], return_tensors="pt")).last_hidden_state[0].mean(0)
        torch.testing.assert_close(got[i], alone, rtol=1e-4, atol=1e-5)
    assert got.shape == (3, 8) and got.dtype == torch.float32
    torch.testing.assert_close(embed_texts(texts, tiny_encoder, batch_size=1, device="cpu"), got, rtol=1e-4, atol=1e-5)


def test_embed_texts_rejects_a_bare_string(tiny_encoder):
    with pytest.raises(ValueError, match="sequence of strings"):
        embed_texts("one text", tiny_encoder)


@pytest.mark.slow
def test_default_encoder_matches_sentence_transformers():
    """The offline default is all-MiniLM-L6-v2; sentence-transformers (mean pooling, then L2
    normalisation) is an independent implementation of the same pooling."""
    st = pytest.importorskip("sentence_transformers")
    texts = ["The nurse said she would come back.", "He is a software engineer."]
    ours = torch.nn.functional.normalize(embed_texts(texts, device="cpu"), dim=1)
    ref = st.SentenceTransformer(str(default_text_encoder()), device="cpu").encode(texts, convert_to_tensor=True)
    assert ours.shape == (2, 384)
    torch.testing.assert_close(ours, ref.cpu(), rtol=1e-4, atol=1e-5)
