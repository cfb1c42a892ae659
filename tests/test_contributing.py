"""CONTRIBUTING.md, followed by a test, so the guide cannot drift from the code.

For each of its four paths (a data set, a distillation method, a metric, a chapter) the test
reads the files and the ``NAME`` in ``file`` places the guide lists, checks each exists, and
then takes exactly those steps for a toy of its own, at the ``smoke`` profile, in a temporary
run store and records folder: a toy data set, a toy distillation method (run through the
method table, the methods' shared tests and the methods chapter), a toy metric, and a toy
chapter that uses all three and is run by the ``fairdd`` command, recorded and verified.
A table the guide names is edited as a contributor would edit its line (monkeypatched for the
test); a step the test takes that the guide does not list, or one it lists that the test does
not take, fails.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import json
import re
import sys
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

import numpy as np
import pytest
import torch

from fairdd.data import Dataset
from fairdd.distill._common import (
    DistillConfig,
    Init,
    SyntheticSet,
    fingerprint,
    initial_images,
    make_sampler,
    optimise,
    seeded_model,
    synthetic_labels,
)
from fairdd.models import NetworkSpec
from fairdd.seeding import generator as seeded_generator

ROOT = Path(__file__).resolve().parents[1]
GUIDE = (ROOT / "CONTRIBUTING.md").read_text()
PATHS = ("Add a data set", "Add a distillation method", "Add a metric", "Add a chapter")


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", GUIDE, re.S | re.M)
    assert match, f"CONTRIBUTING.md has no section '## {title}'"
    return match.group(1)


_FILE = re.compile(r"`((?:[\w.<>-]+/)*[\w.<>-]+\.(?:py|ipynb|yml|json|toml|md|csv)|(?:[\w<>-]+/)+)`")
_PLACE = re.compile(r"`([A-Za-z_]\w*)`\s+(?:in|of)\s+`((?:[\w.<>-]+/)*[\w.<>-]+\.(?:py|yml))`")


def files(text: str) -> set[str]:
    """Every file or folder a section names (in backticks)."""
    return set(_FILE.findall(text))


def places(text: str) -> set[tuple[str, str]]:
    """Every ``NAME`` in ``file`` a section names: a table, registry or function to edit."""
    return set(_PLACE.findall(text))


def _module(path: str) -> ModuleType:
    return importlib.import_module(path.removesuffix(".py").removesuffix("/__init__").replace("/", "."))


def _defined(symbol: str, path: str) -> bool:
    text = (ROOT / path).read_text()
    if path.endswith(".yml"):
        return symbol in text
    return re.search(rf"^\s*(?:def |class )?{symbol}\b\s*(?::|=|\()", text, re.M) is not None


@pytest.mark.parametrize("title", PATHS)
def test_every_file_and_place_the_guide_names_exists(title: str) -> None:
    text = section(title)
    assert files(text), f"'{title}' names no file"
    for name in sorted(files(text)):
        known = name.split("<")[0]  # a placeholder (<name>, <study>): its folder exists
        target = ROOT / (known if "<" not in name else known.rsplit("/", 1)[0] if "/" in known else ".")
        assert target.exists(), f"CONTRIBUTING.md, '{title}': {name} does not exist"
    for symbol, path in sorted(places(text)):
        if "<" in path:
            continue
        assert (ROOT / path).is_file(), f"CONTRIBUTING.md, '{title}': {path} does not exist"
        assert _defined(symbol, path), f"CONTRIBUTING.md, '{title}': {symbol} is not defined in {path}"


class Steps:
    """The edits a toy contribution makes, each a ``NAME`` in ``file`` of the guide."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.taken: set[tuple[str, str]] = set()

    def edit(self, symbol: str, path: str, new: Any) -> None:
        """Give ``path``'s ``symbol`` the value its edited source line would give; every module
        that imported the old object by name sees the new one."""
        module = _module(path)
        old = getattr(module, symbol)
        if isinstance(old, dict):
            for key, value in new.items():
                self.monkeypatch.setitem(old, key, value)
        else:
            for mod in list(sys.modules.values()):
                for attr, value in list(getattr(mod, "__dict__", {}).items()):
                    if value is old:
                        self.monkeypatch.setattr(mod, attr, new)
        self.taken.add((symbol, path))

    def derived(self, symbol: str, path: str, new: Any) -> None:
        """A module-level name computed from an edited table (not a step of its own)."""
        module = _module(path)
        old = getattr(module, symbol)
        for mod in list(sys.modules.values()):
            for attr, value in list(getattr(mod, "__dict__", {}).items()):
                if value is old:
                    self.monkeypatch.setattr(mod, attr, new)


# ------------------------------------------------------------------------- the toy data set
# A registry-shipped data set: its fetcher writes one CSV (label, split, 16 pixel values), its
# loader reads it through fairdd.data._files.check_file (so its checksum is checked on read).

def fetch_toy(dest: Path, work: Path) -> None:
    from fairdd import fetch

    g = np.random.default_rng(0)
    lines = ["label,split,group," + ",".join(f"p{i}" for i in range(64))]
    for split, n in (("train", 12), ("test", 8)):
        for label in range(2):
            for _ in range(n):
                pattern = np.full(64, 0.25 + 0.5 * label) + 0.1 * g.standard_normal(64)
                group = int(g.integers(2))
                lines.append(f"{label},{split},{group}," + ",".join(f"{v:.4f}" for v in np.clip(pattern, 0, 1)))
    fetch._atomic_write(dest / "toy.csv", ("\n".join(lines) + "\n").encode())


def load_toy(root: Path, split: str) -> Dataset:
    """The toy set's ``split``: ``(N, 1, 8, 8)`` images in [0, 1], classes ``dark``/``light``, a
    protected ``group`` (a/b)."""
    from fairdd.data._files import check_file, fail

    path = check_file(Path(root) / "toy" / "toy.csv", "toy")
    table = np.genfromtxt(path, delimiter=",", names=True, dtype=None, encoding="ascii")
    if table.dtype.names[:3] != ("label", "split", "group") or len(table.dtype.names) != 67:
        raise fail(path, "toy", f"has columns {table.dtype.names[:3]}..., not label, split, group and 64 pixels")
    rows = table[table["split"] == split]
    pixels = np.stack([rows[f"p{i}"] for i in range(64)], 1).astype(np.float32)
    return Dataset("toy", split, torch.from_numpy(pixels).view(-1, 1, 8, 8), torch.from_numpy(rows["label"].astype(np.int64)),
                   classes=("dark", "light"), attributes=torch.from_numpy(rows["group"].astype(np.int64)),
                   attribute_name="group", attribute_values=("a", "b"))


def add_toy_data_set(steps: Steps, tmp_path: Path) -> None:
    """'Add a data set', step by step."""
    from fairdd import fetch
    from fairdd.data import _files, _load, load_dataset

    steps.monkeypatch.setenv("FAIRDD_DATA", str(tmp_path / "data"))
    table = tmp_path / "_checksums.json"
    table.write_text(fetch._CHECKSUM_FILE.read_text())
    steps.monkeypatch.setattr(fetch, "_CHECKSUM_FILE", table)
    steps.monkeypatch.setattr(fetch, "CHECKSUMS", json.loads(table.read_text()))
    steps.monkeypatch.setattr(_files, "_CHECKSUM_FILE", table)
    # 1. The loader (above). 2. Its line in the loader table.
    steps.edit("_TABLE", "fairdd/data/_load.py", {"toy": _load.Loader(load_toy)})
    steps.derived("DATASETS", "fairdd/data/_load.py", tuple(_load._TABLE))
    # 3. The fetcher; an asset without checksums is refused; --write-checksums records them.
    steps.edit("ASSETS", "fairdd/fetch.py", {"toy": (lambda: fetch.data_root() / "toy", fetch_toy)})
    with pytest.raises(RuntimeError, match="python -m fairdd.fetch --write-checksums toy"):
        fetch.fetch("toy")
    assert fetch.main(["toy", "--write-checksums"]) == 0
    assert set(json.loads(table.read_text())["toy"]) == {"toy.csv"}
    steps.edit("_FETCHED_ROOTS", "fairdd/data/_files.py", {"toy": "toy"})
    assert fetch.main(["toy"]) == 0
    # 4. What its test in tests/test_data_loaders.py checks: shapes, classes, a damaged file refused.
    train, test = load_dataset("toy", "train"), load_dataset("toy", "test")
    assert train.inputs.shape == (24, 1, 8, 8) and test.inputs.shape == (16, 1, 8, 8)
    assert torch.bincount(train.labels).tolist() == [12, 12]
    csv = tmp_path / "data" / "toy" / "toy.csv"
    good = csv.read_bytes()
    csv.write_bytes(good.replace(b"0.", b"1.", 1))
    with pytest.raises(_files.DataFileError, match="SHA-256"):
        load_dataset("toy", "train")
    csv.write_bytes(good)


# ------------------------------------------------------------------------- the toy method
# Distribution matching without augmentation (DM's loss, Zhao & Bilen 2023), written as the
# guide says: a config on DistillConfig, a run on optimise and seeded_model.

@dataclasses.dataclass(frozen=True, kw_only=True)
class ToyConfig(DistillConfig):
    network: NetworkSpec = dataclasses.field(default_factory=lambda: NetworkSpec(width=8, depth=2))
    iterations: int = 4
    lr_img: float = 1.0
    init: Init = "real"
    augment: bool = False
    checkpoint_every: int = 2
    batch_real: int = 8

    @property
    def method(self) -> str:
        return "toy"

    @classmethod
    def for_profile(cls, profile: str) -> "ToyConfig":
        """``"paper"``: the defaults; ``"smoke"``: two iterations. A ``"cpu"`` protocol is a study's."""
        from fairdd.config import check_choice

        check_choice("profile", profile, ("smoke", "paper"))
        return cls(iterations=2) if profile == "smoke" else cls()


def run_toy(train: Dataset, cfg: ToyConfig, *, images_per_class: int, seed: int, checkpoint_dir, progress: bool,
            device: torch.device, sample_weights, callback) -> SyntheticSet:
    k, ipc = train.num_classes, images_per_class
    generator = seeded_generator(seed)
    sampler = make_sampler(train, cfg, sample_weights)
    syn = initial_images(train, sampler, cfg.init, ipc, generator).to(device).requires_grad_(True)
    opt = torch.optim.SGD([syn], lr=cfg.lr_img, momentum=cfg.momentum_img)

    def step(_: int) -> torch.Tensor:
        net = seeded_model(cfg, train, generator, device).requires_grad_(False)
        loss = sum(((net.embed(train.inputs[sampler.sample(c, cfg.batch_real, generator)]).mean(0)
                     - net.embed(syn[c * ipc:(c + 1) * ipc]).mean(0)) ** 2).sum() for c in range(k))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.detach()

    losses = optimise(step, tensors={"images": syn}, optimizers={"images": opt}, generator=generator,
                      iterations=cfg.iterations, checkpoint_dir=checkpoint_dir, checkpoint_every=cfg.checkpoint_every,
                      run_id=fingerprint(cfg, train, ipc, seed), progress=progress, callback=callback, desc="toy")
    return SyntheticSet(images=syn.detach().cpu().clone(), labels=synthetic_labels(k, ipc), learning_rate=None,
                        losses=tuple(losses), method="toy", images_per_class=ipc, seed=seed, config=cfg)


def add_toy_method(steps: Steps, tmp_path: Path) -> None:
    """'Add a distillation method', step by step."""
    from fairdd.distill import _methods, config_for, distill
    from tests import test_distill_methods as shared

    steps.edit("METHODS", "fairdd/distill/_methods.py",
               MappingProxyType({**_methods.METHODS, "toy": _methods.Method(ToyConfig, run_toy, ToyConfig.for_profile)}))
    assert config_for("toy", "smoke") == ToyConfig(iterations=2)
    # The shared tests of every method, for it.
    steps.edit("CONFIGS", "tests/test_distill_methods.py", {"toy": ToyConfig(iterations=10, init="noise", lr_img=10.0)})
    shared.test_matching_loss_falls("toy")
    shared.test_gradients_reach_every_synthetic_image("toy")
    shared.test_same_seed_same_set_other_seed_other_set("toy")
    shared.test_resume_after_interruption_equals_an_uninterrupted_run("toy", 3, tmp_path / "resume")
    out = distill(shared.toy_dataset(), ToyConfig(), images_per_class=2, seed=0, progress=False)
    assert out.method == "toy" and out.images.shape == (8, 1, 8, 8)
    # 3. Its counting rule: DM's, without augmentation.
    from fairdd.studies import _work

    rule = _work.distillation

    def distillation(method: str, cfg: Any, **sizes: Any) -> list[_work.Work]:
        if not isinstance(cfg, ToyConfig):
            return rule(method, cfg, **sizes)
        net, shape, k = _work.Network(spec=cfg.network), tuple(sizes["shape"]), sizes["classes"]
        return [_work.Work(f"distillation:{method}", net, shape, k, kind="forward", batch=cfg.batch_real,
                           steps=cfg.iterations * k, note="real embeddings: iterations × K"),
                _work.Work(f"distillation:{method}", net, shape, k, batch=k * sizes["ipc"], steps=cfg.iterations,
                           note="synthetic embeddings and the image backward: iterations")]

    steps.edit("distillation", "fairdd/studies/_work.py", distillation)
    # 5. The methods page: its name, and its config (a field named as the method, its smoke and
    # cpu configs in for_profile), then one of the page's cells at smoke.
    from fairdd.studies import methods

    steps.edit("DISTILLATION_METHODS", "fairdd/studies/methods.py", (*methods.DISTILLATION_METHODS, "toy"))
    page = methods.MethodsStudyConfig

    @dataclasses.dataclass(frozen=True)
    class MethodsStudyConfig(page):
        toy: ToyConfig = ToyConfig()

        def __post_init__(self) -> None:
            super().__post_init__()
            if not isinstance(self.toy, ToyConfig):
                raise ValueError(f"toy={self.toy!r} must be a ToyConfig")

        @classmethod
        def for_profile(cls, profile: str, **overrides: Any) -> MethodsStudyConfig:
            toy = {"smoke": ToyConfig(iterations=2), "cpu": ToyConfig(iterations=50)}.get(profile, ToyConfig())
            return super().for_profile(profile, **{"toy": toy, **overrides})

    steps.edit("MethodsStudyConfig", "fairdd/studies/methods.py", MethodsStudyConfig)
    from fairdd.data import StudyData

    config = methods.MethodsStudyConfig.for_profile("smoke", methods=("toy",), data=StudyData("toy"))
    assert [c.distill for c in config.cells()] == [ToyConfig(iterations=2)]
    rows = methods.run_study(config, processes=1, root=tmp_path / "methods")
    assert list(rows["method"]) == ["toy"] and rows["accuracy"].between(0, 1).all()
    assert methods.STUDY.work(config.cells()[0])[0].component == "distillation:toy"


# ------------------------------------------------------------------------- the toy metric


def group_accuracy_gap(y_true, y_pred, *, sensitive_features) -> float:
    r"""The accuracy gap between the best and the worst group.

    .. math:: \max_a \mathrm{acc}_a - \min_a \mathrm{acc}_a, \quad
       \mathrm{acc}_a = \frac{|\{i : a_i = a,\ \hat y_i = y_i\}|}{|\{i : a_i = a\}|}
    """
    from fairdd import metrics

    by_group = metrics.group_accuracy(y_true, y_pred, sensitive_features=sensitive_features)
    if not by_group:
        raise ValueError("sensitive_features is empty: no group to compare")
    return float(max(by_group.values()) - min(by_group.values()))


def add_toy_metric(steps: Steps) -> None:
    """'Add a metric', step by step."""
    from fairdd import evaluate, metrics

    steps.monkeypatch.setattr(metrics, "group_accuracy_gap", group_accuracy_gap, raising=False)
    steps.edit("__all__", "fairdd/metrics.py", [*metrics.__all__, "group_accuracy_gap"])
    # Its test (tests/test_metrics.py): a hand-written case, and fairlearn's MetricFrame.
    from fairlearn.metrics import MetricFrame
    from sklearn.metrics import accuracy_score

    y, p, a = [0, 1, 1, 0, 1, 0], [0, 1, 0, 0, 0, 1], [0, 0, 0, 1, 1, 1]
    assert metrics.group_accuracy_gap(y, p, sensitive_features=a) == pytest.approx(2 / 3 - 1 / 3)
    frame = MetricFrame(metrics=accuracy_score, y_true=y, y_pred=p, sensitive_features=a)
    assert metrics.group_accuracy_gap(y, p, sensitive_features=a) == pytest.approx(frame.difference())
    # Every DD chapter's evaluation rows get it: one more column of accuracy_report.
    report = evaluate.accuracy_report

    def with_gap(predictions: torch.Tensor, test: Dataset) -> dict[str, float]:
        row = report(predictions, test)
        if test.attributes is not None:
            row["group_accuracy_gap"] = metrics.group_accuracy_gap(test.labels, predictions, sensitive_features=test.attributes)
        return row

    steps.edit("accuracy_report", "fairdd/evaluate.py", with_gap)


# ------------------------------------------------------------------------- the toy chapter
# fairdd/studies/<study>.py for a toy chapter: the toy method's sets of the toy data set against
# random real subsets of the same size, evaluated on the shared protocol (whose rows carry the
# toy metric). Written to a temporary folder and imported by name, as a study module is.

TOY_CHAPTER = '''
"""A toy chapter: the toy method against a random real subset, on the toy data set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from fairdd.config import check_choice, check_profile
from fairdd.data import StudyData
from fairdd.distill import config_for
from fairdd.evaluate import EvalConfig, evaluate_synthetic
from fairdd.models import NetworkSpec
from fairdd.studies import _work
from fairdd.studies._dd import training_set
from fairdd.studies._study import Root, Study

SOURCES = ("toy",)
METHODS = ("toy", "random")
IPC = 2


@dataclass(frozen=True)
class ToyChapterCell:
    method: str
    seed: int
    data: StudyData
    distill: Any
    evaluation: EvalConfig


@dataclass(frozen=True)
class ToyChapterConfig:
    profile: str
    seeds: tuple[int, ...] = (0,)
    data: StudyData = StudyData("toy")
    evaluation: EvalConfig = EvalConfig(network=NetworkSpec(width=8, depth=2), epochs=3, num_networks=1)

    def __post_init__(self) -> None:
        check_profile(self.profile)
        check_choice("data.source", self.data.source, SOURCES)

    @classmethod
    def for_profile(cls, profile: str, **overrides: Any) -> "ToyChapterConfig":
        check_profile(profile)
        return cls(profile=profile, **overrides)

    def cells(self) -> list[ToyChapterCell]:
        return [ToyChapterCell(m, s, self.data, config_for("toy", "smoke") if m == "toy" else None, self.evaluation)
                for m in METHODS for s in self.seeds]


def cell_rows(cell: ToyChapterCell, root: Root) -> list[dict]:
    train, test, _ = cell.data.load()
    images, labels, _, seconds = training_set(STUDY, cell, train, cell.method, images_per_class=IPC, seed=cell.seed,
                                              distill_config=cell.distill, root=root)
    return [{"method": cell.method, "seed": cell.seed, **row}
            for row in evaluate_synthetic(images, labels, test, cell.evaluation, seed=cell.seed)]


def cell_work(cell: ToyChapterCell) -> list[_work.Work]:
    n, shape, classes = _work.train_size(cell.data)
    out = _work.evaluation(cell.evaluation, classes * IPC, shape, classes)
    if cell.distill is not None:
        out += _work.distillation(cell.method, cell.distill, n=n, shape=shape, classes=classes, ipc=IPC,
                                  data_key=cell.data)
    return out


STUDY = Study(name="toy_chapter", compute=cell_rows, work=cell_work)
BOOK_VARIANTS = ({}, {"seeds": (1,)})


def run_study(config: ToyChapterConfig, *, processes: int | None = None, root: Root = None) -> pd.DataFrame:
    return STUDY.run(config.cells(), processes=processes, root=root)


def describe_profile(config: ToyChapterConfig) -> pd.DataFrame:
    return pd.DataFrame([{"setting": "seeds", "this build": len(config.seeds), "paper": "-"}])


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    return rows.groupby("method")[["accuracy", "group_accuracy_gap"]].mean()
'''


def add_toy_chapter(steps: Steps, tmp_path: Path) -> ModuleType:
    """'Add a chapter', step by step (after the toy data set, method and metric)."""
    from fairdd import cli, records
    from fairdd.studies import config_class

    # 1. The study module.
    folder = tmp_path / "chapter"
    folder.mkdir()
    (folder / "toy_chapter.py").write_text(TOY_CHAPTER)
    spec = importlib.util.spec_from_file_location("toy_chapter", folder / "toy_chapter.py")
    module = importlib.util.module_from_spec(spec)
    steps.monkeypatch.setitem(sys.modules, "toy_chapter", module)  # importable by name, for this test only
    spec.loader.exec_module(module)
    # 2. Its line in STUDIES: the command finds it, and its config class.
    steps.edit("STUDIES", "fairdd/studies/__init__.py", {"toy_chapter": "toy_chapter"})
    assert config_class("toy_chapter") is module.ToyChapterConfig
    # The command runs every variant of the page at smoke into a fresh run store.
    results_root, records_root = tmp_path / "results", tmp_path / "records"
    for variant in module.BOOK_VARIANTS:
        sets = [f"{k}={','.join(map(str, v))}" for k, v in variant.items()]
        argv = ["run", "toy_chapter", "--profile", "smoke", "--processes", "1", "--root", str(results_root)]
        assert cli.main(argv + (["--set", *sets] if sets else [])) == 0
    rows = module.run_study(module.ToyChapterConfig.for_profile("smoke"), processes=1, root=results_root)
    assert set(rows["method"]) == {"toy", "random"} and rows["group_accuracy_gap"].notna().all()
    # 3-4. The notebook and _toc.yml: checked on the repository's own chapters (below).
    # 6. Record its runs, then verify them: recomputed from nothing, equal to the records.
    recorded = records.record("smoke", source=results_root, root=records_root)
    assert (records_root / "smoke" / "toy_chapter").is_dir() and (records_root / "smoke" / "INDEX.json").is_file()
    assert len(list((records_root / "smoke" / "toy_chapter").glob("*/DONE"))) == 4, recorded
    assert records.verify("smoke", studies=["toy_chapter"], records=records_root, processes=1, per_study=True) == []
    return module


# --------------------------------------------------------------------------- the four paths

#: Places a path of the guide lists that the toy contribution does not take, and why.
NOT_TAKEN = {
    "Add a data set": {
        ("BIAS_SOURCES", "fairdd/data/_spec.py"): "the toy set is not a source of a colour or corruption bias",
        ("_TABULAR", "fairdd/data/_spec.py"): "the toy set's attribute is read on the test split, not named",
    },
    "Add a distillation method": {
        ("PAPER_FASHION_MNIST", "fairdd/studies/methods.py"): "no paper publishes the toy method's numbers",
    },
    "Add a metric": {},
    "Add a chapter": {},
}


def test_a_toy_data_set_method_metric_and_chapter_through_the_guides_steps(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("FAIRDD_RESULTS", str(tmp_path / "store"))
    for title, add in (("Add a data set", lambda s: add_toy_data_set(s, tmp_path)),
                       ("Add a distillation method", lambda s: add_toy_method(s, tmp_path)),
                       ("Add a metric", add_toy_metric),
                       ("Add a chapter", lambda s: add_toy_chapter(s, tmp_path))):
        steps = Steps(monkeypatch)
        add(steps)
        listed = {(s, p) for s, p in places(section(title)) if "<" not in p}
        skipped = NOT_TAKEN[title]
        assert set(skipped) <= listed, f"NOT_TAKEN names {sorted(set(skipped) - listed)}, which '{title}' does not list"
        assert steps.taken == listed - set(skipped), (
            f"CONTRIBUTING.md, '{title}': the guide lists {sorted(listed - set(skipped) - steps.taken)} that the toy "
            f"contribution does not take, or leaves out {sorted(steps.taken - listed)} that it needs"
        )


def test_every_chapter_notebook_is_in_the_toc_and_follows_the_outline() -> None:
    """'Add a chapter' steps 3 and 4 on the repository's own chapters."""
    import nbformat

    toc = (ROOT / "_toc.yml").read_text()
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert f"file: book/chapters/{notebook.stem}\n" in toc, f"{notebook.name} is not in _toc.yml"
        cells = nbformat.read(notebook, as_version=4).cells
        tagged = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1 and "profile" in tagged[0].source, f"{notebook.name}: one parameters cell with profile"
        assert not any(c.cell_type == "code" and re.search(r"^def |^class ", c.source, re.M) for c in cells), \
            f"{notebook.name} defines a function or class"


def test_every_study_module_is_registered() -> None:
    """'Add a chapter' step 2 on the repository's own chapters: every module of fairdd/studies that
    declares a ``STUDY`` is in ``STUDIES``."""
    from fairdd.studies import STUDIES

    declared = {p.stem for p in (ROOT / "fairdd" / "studies").glob("*.py")
                if re.search(r"^STUDY = Study\(", p.read_text(), re.M)}
    assert declared == {m.rsplit(".", 1)[1] for m in STUDIES.values()}
