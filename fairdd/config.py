"""Validation helpers shared by every config dataclass, and the run profiles.

Each study defines a small frozen dataclass whose ``__post_init__`` calls these helpers;
a bad value raises ``ValueError`` naming the field, the value and what is allowed.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any, Literal, get_args

__all__ = [
    "Profile",
    "PROFILES",
    "check_choice",
    "check_int",
    "check_number",
    "check_profile",
    "check_sequence",
]

# smoke: CI, seconds per notebook. cpu: what `make book` runs on a 2-core machine, a
# stated reduction of the protocol. paper: the paper's protocol, meant for a GPU.
Profile = Literal["smoke", "cpu", "paper"]
PROFILES: tuple[str, ...] = get_args(Profile)


def check_choice(field: str, value: Any, allowed: Collection[Any]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{field}={value!r} is not allowed; choose one of {sorted(map(str, allowed))}")


def check_profile(value: Any, field: str = "profile") -> None:
    check_choice(field, value, PROFILES)


def check_int(field: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> None:
    """Raise ``ValueError`` unless ``value`` is an int (not bool) within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{field}={value!r} must be an integer")
    _check_range(field, value, minimum, maximum)


def check_number(
    field: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict_minimum: bool = False,
) -> None:
    """Raise ``ValueError`` unless ``value`` is a real number within the bounds.

    ``strict_minimum`` makes the lower bound exclusive (e.g. a learning rate > 0).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{field}={value!r} must be a number")
    if value != value:  # NaN
        raise ValueError(f"{field}={value!r} must not be NaN")
    if strict_minimum and minimum is not None and value <= minimum:
        raise ValueError(f"{field}={value!r} must be > {minimum}")
    _check_range(field, value, None if strict_minimum else minimum, maximum)


def check_sequence(field: str, values: Iterable[Any], check: Any) -> None:
    """Apply ``check(f"{field}[i]", v)`` to each element; reject an empty sequence."""
    values = list(values)
    if not values:
        raise ValueError(f"{field}={values!r} must not be empty")
    for i, v in enumerate(values):
        check(f"{field}[{i}]", v)


def _check_range(field: str, value: float, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and value < minimum:
        raise ValueError(f"{field}={value!r} must be >= {minimum}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{field}={value!r} must be <= {maximum}")
