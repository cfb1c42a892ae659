"""Tests for the class-wise fairness study (fairdd.studies.classwise and its report)."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from fairdd import results
from fairdd.data import BiasSpec, StudyData, fit_zca, load_dataset, stratified_subset
from fairdd.distill import DMConfig, MTTConfig
from fairdd.evaluate import EvalConfig
from fairdd.studies import _dd, classwise, classwise_report as report

# ----------------------------------------------------------------------------- cells


def test_sweep_cells_counts_unique_and_configs_embedded() -> None:
    config = classwise.ClasswiseStudyConfig.for_profile("cpu", source="fashion_mnist")
    cells = config.cells()
    n_dd = sum(len(config.method_ipcs(m)) for m in config.methods) * len(config.seeds)
    assert config.method_ipcs("mtt") == config.mtt_ipcs and set(config.mtt_ipcs) < set(config.ipcs)
    assert len(cells) == n_dd + len(config.seeds)
    assert len(set(cells)) == len(cells)
    assert len({results.run_id(c) for c in cells}) == len(cells)
    for cell in cells:
        assert cell.data == config.data
        assert len(cell.evaluations) == len(config.architectures)
        assert all(isinstance(e, EvalConfig) for e in cell.evaluations)
        if cell.method == "whole":
            assert cell.distill is None and cell.images_per_class is None
            assert all(e == dataclasses.replace(config.whole, network=e.network) for e in cell.evaluations)
        else:
            assert all(e == dataclasses.replace(config.evaluation, network=e.network) for e in cell.evaluations)
            if cell.method == classwise.CONTROL:
                assert cell.distill is None and cell.images_per_class in config.ipcs
            else:
                assert cell.distill == getattr(config, cell.method)
                assert isinstance(cell.distill, MTTConfig if cell.method == "mtt" else DMConfig)
            # cpu: the classifiers on fast kernels, MTT's distillation network not (slower there)
            assert all(e.network.fast_kernels for e in cell.evaluations)
    assert config.dm.network.fast_kernels and not config.mtt.network.fast_kernels
    # A config change reaches the run id (nothing is looked up from a profile name later).
    longer = dataclasses.replace(config.evaluation, epochs=config.evaluation.epochs + 1)
    other = dataclasses.replace(config, evaluation=longer).cells()
    assert {results.run_id(c) for c in other[:n_dd]}.isdisjoint(results.run_id(c) for c in cells[:n_dd])


def test_paper_profile_is_the_papers_sweep() -> None:
    config = classwise.ClasswiseStudyConfig.for_profile("paper", source="cifar10")
    assert config.ipcs == (1, 5, 10, 15, 20, 25, 30)
    assert len(config.seeds) == 10 and config.evaluation.num_networks == config.whole.num_networks == 10
    assert config.evaluation.epochs == 1000 and config.evaluation.dsa and config.whole.epochs == 50
    convnet, alexnet = config.cell("mtt", 1, 0).evaluations
    assert convnet.network == config.mtt.network and alexnet.network.model == "alexnet"
    assert convnet.dsa_strategy == config.mtt.dsa_strategy
    assert config.architectures == ("convnet", "alexnet") and config.data.zca
    assert not classwise.ClasswiseStudyConfig.for_profile("cpu", source="fashion_mnist").data.zca
    assert len(config.cells()) == 2 * 7 * 10 + 10


def test_hundred_class_task_is_convnet_only_and_names_its_stand_in(tmp_path) -> None:
    paper = classwise.ClasswiseStudyConfig.for_profile("paper", num_classes=100, source="cifar100")
    assert paper.ipcs == (1, 5, 10, 15, 20, 25, 30, 35) and paper.architectures == ("convnet",)
    assert paper.data.zca and classwise.dataset_label(paper.data) == "CIFAR-100"
    cpu = classwise.ClasswiseStudyConfig.for_profile("cpu", num_classes=100, source="mnist")
    assert cpu.architectures == ("convnet",) and cpu.methods == ("mtt", "random") and not cpu.data.zca
    assert classwise.dataset_label(cpu.data) == "MNIST digits (stand-in for CIFAR-100)"
    with pytest.raises(ValueError, match="num_classes=20"):
        classwise.ClasswiseStudyConfig.for_profile("cpu", num_classes=20)


def test_default_source_is_cifar_only_when_its_files_are_present(tmp_path) -> None:
    assert classwise.default_source(10, root=tmp_path) == "fashion_mnist"
    assert classwise.default_source(100, root=tmp_path) == "mnist"
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name in ("train", "test"):
        (folder / name).write_bytes(b"")
    assert classwise.default_source(100, root=tmp_path) == "mnist"  # meta missing
    (folder / "meta").write_bytes(b"")
    assert classwise.default_source(100, root=tmp_path) == "cifar100"


def test_config_rejects_repeats_and_other_data() -> None:
    with pytest.raises(ValueError, match="ipcs"):
        classwise.ClasswiseStudyConfig.for_profile("smoke", source="fashion_mnist", ipcs=(1, 1))
    with pytest.raises(ValueError, match="seeds"):
        classwise.ClasswiseStudyConfig.for_profile("smoke", source="fashion_mnist", seeds=(0, 0))
    with pytest.raises(ValueError, match="data.source"):
        classwise.ClasswiseStudyConfig.for_profile("smoke", source="fashion_mnist", data=StudyData("adult"))
    with pytest.raises(ValueError, match="bias"):
        classwise.ClasswiseStudyConfig.for_profile(
            "smoke", source="fashion_mnist", data=StudyData("mnist", bias=BiasSpec("colour", 1)))
    with pytest.raises(ValueError, match="whole"):
        classwise.ClasswiseStudyConfig.for_profile("smoke", source="fashion_mnist", whole=None)
    with pytest.raises(ValueError, match="side_by_side"):
        classwise.ClasswiseStudyConfig.for_profile("smoke", source="fashion_mnist", side_by_side="yes")
    with pytest.raises(ValueError, match="mtt_ipcs"):
        classwise.ClasswiseStudyConfig.for_profile("smoke", source="fashion_mnist", mtt_ipcs=(3,))
    with pytest.raises(ValueError, match="at least one"):
        classwise.ClasswiseStudyConfig.for_profile("smoke", source="fashion_mnist", methods=("random",))
    with pytest.raises(ValueError, match="distill"):
        classwise.ClasswiseCell(data=StudyData("mnist"), method="random", images_per_class=1, seed=0,
                                distill=DMConfig(), evaluations=(EvalConfig(),))


def test_study_data_is_the_study_data_spec_s_stratified_draw() -> None:
    """The splits are StudyData.load's class-stratified subsets (train seeded data_seed, test
    data_seed + 1: fairdd.seeding.subset_seeds), then normalised."""
    data = StudyData("mnist", train_per_class=5, test_per_class=3, data_seed=4)
    train, test = classwise.study_data(data)
    raw_train, raw_test, _ = data.load()
    assert torch.bincount(train.labels).tolist() == [5] * 10 and torch.bincount(test.labels).tolist() == [3] * 10
    assert torch.equal(train.labels, raw_train.labels) and torch.equal(test.labels, raw_test.labels)
    full = load_dataset("mnist", "train")
    expected = stratified_subset(full, 5, 4)
    assert torch.equal(raw_train.inputs, expected.inputs)
    table = classwise.describe_profile(classwise.ClasswiseStudyConfig.for_profile("cpu", source="fashion_mnist"))
    assert list(table.columns) == ["setting", "this build", "paper"]
    assert dict(zip(table["setting"], table["paper"]))["distilled sets (random subsets) per IPC"] == "10"


# ----------------------------------------------------------------------------- report


def _rows(acc: np.ndarray, *, method: str = "mtt", ipc: float = 1.0, arch: str = "ConvNet") -> pd.DataFrame:
    frame = pd.DataFrame(acc, columns=[f"acc_class_{k}" for k in range(acc.shape[1])])
    frame["accuracy"] = acc.mean(axis=1)
    frame["method"], frame["ipc"], frame["architecture"], frame["dataset"] = method, ipc, arch, "toy"
    return frame


def test_two_sigma_filter_drops_the_outlier_run() -> None:
    rng = np.random.default_rng(0)
    acc = 0.5 + 0.01 * rng.standard_normal((20, 3))
    acc[7, 1] = 0.95  # one run far beyond 2σ in class 1
    kept = report.two_sigma_filter(_rows(acc))
    assert 7 not in kept.index
    # The filter by hand: per class mean ± 2 · std(ddof=1) over the runs.
    mean, sd = acc.mean(0), acc.std(0, ddof=1)
    expected = ~(np.abs(acc - mean) > 2 * sd).any(axis=1)
    assert list(kept.index) == list(np.flatnonzero(expected))


def test_trend_test_recovers_a_known_slope() -> None:
    rng = np.random.default_rng(1)
    x = np.repeat([1, 5, 10, 20], 25).astype(float)
    y = 0.3 + 0.02 * x + 0.01 * rng.standard_normal(x.size)
    out = report.trend_test(x, y)
    assert out["ci_low"] < 0.02 < out["ci_high"] and out["ci_low"] > 0
    assert out["p_value"] < 1e-10
    flat = report.trend_test(x, 0.3 + 0.01 * rng.standard_normal(x.size))
    assert flat["ci_low"] < 0 < flat["ci_high"]


def test_variance_is_population_variance_in_pp2() -> None:
    acc = np.array([[0.2, 0.4, 0.6, 0.8]])
    measured = report.model_measures(_rows(acc))
    assert measured["classwise_variance"].iloc[0] == pytest.approx(np.var(acc, ddof=0) * 1e4)
    assert measured["gap"].iloc[0] == pytest.approx(0.6)
    assert measured["worst_class"].iloc[0] == pytest.approx(0.2)


# ----------------------------------------------------------------------------- ZCA


def test_zca_matches_numpy() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(200, 1, 4, 4, generator=g) * torch.linspace(0.2, 2, 16).view(1, 1, 4, 4)
    zca = fit_zca(x, eps=0.1)
    flat = x.reshape(200, -1).double().numpy()
    mean = flat.mean(0)
    cov = (flat - mean).T @ (flat - mean) / (len(flat) - 1)
    s, u = np.linalg.eigh(cov)
    w = u @ np.diag(1 / np.sqrt(s + 0.1)) @ u.T
    np.testing.assert_allclose(zca.apply(x).reshape(200, -1).numpy(), (flat - mean) @ w, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(zca.invert(zca.apply(x)).numpy(), x.numpy(), atol=1e-4)
    # Whitened covariance: eigenvalues s / (s + eps), i.e. the identity up to the regulariser.
    z = zca.apply(x).reshape(200, -1).double().numpy()
    np.testing.assert_allclose(np.linalg.eigvalsh(np.cov(z.T)), np.sort(s / (s + 0.1)), atol=1e-4)


# ----------------------------------------------------------------------------- end to end


def test_smoke_run_through_the_store(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FAIRDD_RESULTS", str(tmp_path))  # MTT's expert cache lives there too
    config = classwise.ClasswiseStudyConfig.for_profile(
        "smoke", source="fashion_mnist", ipcs=(1,), architectures=("convnet",)
    )
    rows = classwise.run_study(config, processes=1, root=tmp_path)
    n_models = len(config.cells()) * config.evaluation.num_networks
    assert len(rows) == n_models
    assert {f"acc_class_{k}" for k in range(10)} <= set(rows.columns)
    assert set(rows["method"]) == {"mtt", "dm", "random", "whole"}
    assert rows["dataset"].iloc[0] == "Fashion-MNIST (stand-in for CIFAR-10)"
    assert len(report.summary_table(rows)) == 4
    assert len(report.claims(rows)) == 8  # claims 1, 2, 3a, 3b per distiller
    assert classwise.synthetic_images(config.cell("mtt", 1, 0), root=tmp_path).shape == (10, 1, 28, 28)

    def boom(*args, **kwargs):
        raise AssertionError("a finished cell was computed again")

    monkeypatch.setattr(classwise, "evaluate_synthetic", boom)
    monkeypatch.setattr(_dd, "distill", boom)
    again = classwise.run_study(config, processes=1, root=tmp_path)
    pd.testing.assert_frame_equal(again, rows)


def test_side_by_side_groups_an_ipcs_dm_sets_and_matches_one_by_one(tmp_path, monkeypatch) -> None:
    """side_by_side: the DM cells of one IPC are one distill_side_by_side call in one worker
    job (the skeleton's compute_together), every set's classifiers are trained side by side,
    the rows equal the one-by-one rows within float tolerance, and the run ids are their own."""
    monkeypatch.setenv("FAIRDD_RESULTS", str(tmp_path))
    base = classwise.ClasswiseStudyConfig.for_profile(
        "smoke", source="fashion_mnist", ipcs=(1, 2), architectures=("convnet",), methods=("dm",)
    )
    calls: list[list[int]] = []
    real = classwise.distill_side_by_side

    def spy(*args, **kwargs):
        calls.append(list(kwargs["seeds"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(classwise, "distill_side_by_side", spy)
    on = dataclasses.replace(base, side_by_side=True)
    alone = classwise.run_study(base, processes=1, root=tmp_path / "a")
    together = classwise.run_study(on, processes=1, root=tmp_path / "b")
    assert sorted(calls) == [list(base.seeds)] * 2  # one call per IPC, every seed in it
    dm = together["method"] == "dm"
    assert set(together.loc[dm, "side_by_side"]) == {True}
    assert all(e.side_by_side for c in on.cells() for e in c.evaluations)
    assert set(alone["run_id"]).isdisjoint(together["run_id"])
    np.testing.assert_allclose(together["accuracy"], alone["accuracy"], atol=0.05)
    for ipc in base.ipcs:
        for seed in base.seeds:
            a = _dd.load_synthetic(classwise.STUDY, base.cell("dm", ipc, seed), tmp_path / "a")["images"]
            b = _dd.load_synthetic(classwise.STUDY, on.cell("dm", ipc, seed), tmp_path / "b")["images"]
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
    assert not (tmp_path / "b" / "classwise_dd" / "checkpoints").exists() or not any(
        (tmp_path / "b" / "classwise_dd" / "checkpoints").iterdir())
    with pytest.raises(ValueError, match="'dm' only"):
        dataclasses.replace(base.cell("whole", None, 0), side_by_side=True)
    # Off, the switch is not in the run id (the recorded runs keep theirs).
    assert "side_by_side" not in results.canonical_config(base.cell("dm", 1, 0))
    # A side-by-side cell computed alone (a key with one unfinished cell) goes through compute.
    single = classwise.run_study(dataclasses.replace(on, seeds=(0,)), processes=1, root=tmp_path / "c")
    assert set(single.loc[single["method"] == "dm", "side_by_side"]) == {True}
