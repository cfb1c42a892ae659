"""The typed container every loader returns."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

__all__ = ["Dataset", "check_training_inputs"]


def check_training_inputs(field: str, inputs: torch.Tensor) -> None:
    """Refuse an empty or non-finite (NaN, ±inf) training tensor before any work is done."""
    if not isinstance(inputs, torch.Tensor):
        raise ValueError(f"{field} must be a torch.Tensor, got {type(inputs).__name__}")
    if inputs.shape[0] == 0 or inputs.numel() == 0:
        raise ValueError(f"{field} has shape {tuple(inputs.shape)}: the training set is empty")
    if not inputs.dtype.is_floating_point:
        raise ValueError(f"{field} must be a float tensor, got dtype {inputs.dtype}")
    finite = torch.isfinite(inputs)
    if not bool(finite.all()):
        rows = (~finite).reshape(inputs.shape[0], -1).any(dim=1).nonzero().flatten()
        raise ValueError(
            f"{field} holds NaN or infinite values in {rows.numel()} of its {inputs.shape[0]} rows "
            f"(first: row {int(rows[0])}); clean or drop them before training"
        )


@dataclass(frozen=True)
class Dataset:
    """A data set held as tensors (small enough to sit whole in memory or on the device).

    Attributes
    ----------
    name, split : which data set and which split (``"train"`` or ``"test"``).
    inputs : images ``(N, C, H, W)`` float32 in [0, 1], or feature vectors ``(N, D)`` float32.
    labels : ``(N,)`` int64 class indices in ``[0, len(classes))``.
    attributes : ``(N,)`` int64 protected or bias attribute, or ``None`` where the data set has none.
    classes : class names, index = label.
    attribute_name : what ``attributes`` encodes (``"sex"``, ``"race"``, ``"colour"``, ...), or ``None``.
    attribute_values : names of the attribute values, index = attribute, or ``None``.
    """

    name: str
    split: str
    inputs: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    attributes: torch.Tensor | None = None
    attribute_name: str | None = None
    attribute_values: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        n = self.inputs.shape[0]
        if self.labels.shape != (n,):
            raise ValueError(f"labels has shape {tuple(self.labels.shape)}; expected ({n},)")
        if self.attributes is not None and self.attributes.shape != (n,):
            raise ValueError(f"attributes has shape {tuple(self.attributes.shape)}; expected ({n},)")
        if not self.classes:
            raise ValueError(f"{self.name!r}: classes must name at least one class")
        for field, values, names in (
            ("labels", self.labels, self.classes),
            ("attributes", self.attributes, self.attribute_values),
        ):
            if values is None or values.numel() == 0:
                continue
            if values.dtype.is_floating_point or values.dtype.is_complex or values.dtype == torch.bool:
                raise ValueError(f"{self.name!r}: {field} must be integer class indices, got dtype {values.dtype}")
            low, high = int(values.min()), int(values.max())
            if low < 0 or (names is not None and high >= len(names)):
                allowed = f"0..{len(names) - 1} ({field[:-1]} names {tuple(names)!r:.120})" if names else ">= 0"
                raise ValueError(f"{self.name!r} ({self.split}): {field} hold {low}..{high}; allowed {allowed}")

    def __len__(self) -> int:
        return self.inputs.shape[0]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, index: torch.Tensor) -> "Dataset":
        """The rows at ``index`` (a long index or a boolean mask), as a new Dataset."""
        return Dataset(
            name=self.name,
            split=self.split,
            inputs=self.inputs[index],
            labels=self.labels[index],
            classes=self.classes,
            attributes=None if self.attributes is None else self.attributes[index],
            attribute_name=self.attribute_name,
            attribute_values=self.attribute_values,
        )

    def content_digest(self) -> str:
        """sha256 hex of the inputs and labels (shapes, dtypes and bytes): what a cache of work
        derived from this data set (MTT's experts, a KD teacher) is keyed by, so it follows the data."""
        h = hashlib.sha256()
        for t in (self.inputs, self.labels):
            t = t.detach().cpu().contiguous()
            h.update(str((tuple(t.shape), str(t.dtype))).encode())
            h.update(t.numpy().tobytes())
        return h.hexdigest()

    def to(self, device: torch.device | str) -> "Dataset":
        return Dataset(
            name=self.name,
            split=self.split,
            inputs=self.inputs.to(device),
            labels=self.labels.to(device),
            classes=self.classes,
            attributes=None if self.attributes is None else self.attributes.to(device),
            attribute_name=self.attribute_name,
            attribute_values=self.attribute_values,
        )

    @classmethod
    def concat(cls, *datasets: "Dataset", name: str | None = None, split: str | None = None) -> "Dataset":
        """The rows of ``datasets`` one after the other, as a new Dataset.

        Parameters
        ----------
        *datasets : one or more Datasets with the same ``classes``, ``attribute_name`` and
            ``attribute_values``, and either all with ``attributes`` or all without.
        name, split : of the result; default: those of the first data set.

        Returns
        -------
        Dataset
            ``inputs``, ``labels`` (and ``attributes``) concatenated in the given order.
        """
        if not datasets:
            raise ValueError("Dataset.concat needs at least one data set")
        first = datasets[0]
        for other in datasets[1:]:
            for field in ("classes", "attribute_name", "attribute_values"):
                if getattr(other, field) != getattr(first, field):
                    raise ValueError(
                        f"cannot concatenate {first.name!r} and {other.name!r}: their {field} differ "
                        f"({getattr(first, field)!r} vs {getattr(other, field)!r})"
                    )
        with_attributes = {d.attributes is not None for d in datasets}
        if len(with_attributes) > 1:
            raise ValueError("cannot concatenate data sets with attributes and data sets without")
        return cls(
            name=first.name if name is None else name,
            split=first.split if split is None else split,
            inputs=torch.cat([d.inputs for d in datasets]),
            labels=torch.cat([d.labels for d in datasets]),
            classes=first.classes,
            attributes=torch.cat([d.attributes for d in datasets]) if first.attributes is not None else None,
            attribute_name=first.attribute_name,
            attribute_values=first.attribute_values,
        )
