"""The attribute probe: a network that reads the bias attribute of an image.

Lu et al. 2024, "Exploring the Impact of Dataset Bias on Dataset Distillation", asks
whether synthetic sets distilled from biased data encode the spurious attribute. To measure
that on a synthetic set (:func:`set_measures`) we train a small network to
predict the attribute (colour or corruption, 10 values) on the *unbiased* (``r = 0.1``)
colouring of the training images (:func:`fairdd.data.probe_data`), so it never saw attribute
and label together, in the fixed input space of the data set
(:func:`fairdd.data.normalization_stats`).

:func:`attribute_probe` trains it once through the run store (study :data:`PROBE_STUDY`,
weights in ``<results>/bias_dd_probe/weights/<run_id>.pt``) and then reads it from disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from fairdd import results, seeding
from fairdd.data import NUM_ATTRIBUTES, StudyData, dataset_label, normalization_stats, probe_data, source_images
from fairdd.evaluate import EvalConfig, predict, train_network
from fairdd.metrics import attribute_alignment, attribute_entropy, pairwise_distance
from fairdd.paths import results_root

__all__ = ["PROBE_STUDY", "ProbeSpec", "attribute_probe", "set_measures"]

PROBE_STUDY = "bias_dd_probe"


@dataclass(frozen=True)
class ProbeSpec:
    """The attribute probe: a network trained to predict the bias attribute.

    Attributes
    ----------
    data : the biased data set whose attribute it reads (a :class:`fairdd.data.StudyData` with a ``bias``).
    training : network and protocol (``num_networks`` is ignored: one probe).
    seed : its initialisation and batch order.
    """

    data: StudyData
    training: EvalConfig
    seed: int = 0


def _probe_file(spec: ProbeSpec, root: str | Path | None) -> Path:
    return (Path(root) if root is not None else results_root()) / PROBE_STUDY / "weights" / f"{results.run_id(spec)}.pt"


def _probe_model(spec: ProbeSpec, channels: int, image_size: int) -> torch.nn.Module:
    return spec.training.network.build(channels, NUM_ATTRIBUTES, image_size, seed=spec.seed)


def _train_probe(spec: ProbeSpec, path: Path) -> list[dict[str, Any]]:
    train, test = probe_data(spec.data)
    model = _probe_model(spec, train.inputs.shape[1], train.inputs.shape[-1])
    log = train_network(
        model, train.inputs, train.attributes, spec.training, generator=seeding.generator(spec.seed)
    )
    predicted = predict(model, test.inputs)
    results.save_checkpoint(path, {"state_dict": model.state_dict()})
    return [{
        "dataset": dataset_label(spec.data),
        "probe_accuracy": float((predicted == test.attributes).double().mean()),
        "probe_train_time_s": log.train_time_s,
        "num_train": len(train),
        "num_test": len(test),
    }]


def attribute_probe(spec: ProbeSpec, *, root: str | Path | None = None) -> tuple[torch.nn.Module, pd.DataFrame]:
    """The trained attribute probe of a data set (trained once, then read from disk), in eval
    mode on the CPU, and its run-store row (held-out attribute accuracy on unbiased test images)."""
    path = _probe_file(spec, root)
    missing = not path.is_file()
    rows = results.run(
        PROBE_STUDY, spec, lambda: _train_probe(spec, path), root=root,
        force=missing and results.is_finished(PROBE_STUDY, spec, root=root),
    )
    train, _ = source_images(spec.data)
    mean, _ = normalization_stats(spec.data)  # (C,): the channels of the biased images
    model = _probe_model(spec, mean.numel(), train.inputs.shape[-1])
    model.load_state_dict(results.load_checkpoint(path)["state_dict"])
    return model.eval(), rows


def set_measures(
    images: torch.Tensor, labels: torch.Tensor, probe: torch.nn.Module, *, num_classes: int
) -> dict[str, float]:
    """Bias and diversity of a (synthetic) set, read with an attribute probe.

    Parameters
    ----------
    images : torch.Tensor, shape (N, C, H, W)
        The set, in the input space of ``probe``.
    labels : torch.Tensor of int, shape (N,)
        Class of each image.
    probe : torch.nn.Module
        A network that predicts the bias attribute (:func:`attribute_probe`).
    num_classes : int
        Number of classes K.

    Returns
    -------
    dict
        The mean over classes (NaN classes left out) of ``aligned_fraction``
        (:func:`fairdd.metrics.attribute_alignment` of the probe's predictions), ``attribute_entropy``
        (:func:`fairdd.metrics.attribute_entropy`) and ``pairwise_distance`` (:func:`fairdd.metrics.pairwise_distance`).
    """
    predicted = predict(probe, images).cpu()
    return {
        "aligned_fraction": float(np.nanmean(attribute_alignment(predicted, labels, num_classes=num_classes).numpy())),
        "attribute_entropy": float(np.nanmean(attribute_entropy(predicted, labels, num_classes=num_classes).numpy())),
        "pairwise_distance": float(np.nanmean(pairwise_distance(images, labels, num_classes=num_classes).numpy())),
    }
