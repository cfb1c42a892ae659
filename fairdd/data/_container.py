"""The typed container every loader returns."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Dataset"]


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
