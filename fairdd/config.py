"""Validation helpers shared by every config dataclass, and the run profiles.

Each study defines a small frozen dataclass whose ``__post_init__`` calls these helpers;
a bad value raises ``ValueError`` naming the field, the value and what is allowed.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, Literal, get_args

__all__ = [
    "Profile",
    "PROFILES",
    "assignments",
    "check_choice",
    "check_fraction",
    "check_int",
    "check_number",
    "check_profile",
    "check_seed",
    "check_sequence",
    "MAX_SEED",
    "Validator",
    "check_notebook_parameters",
    "device_name",
    "integer",
    "number",
    "one_of",
    "optional",
    "profile_name",
    "sequence",
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
    """Raise ``ValueError`` unless ``value`` is a real number within the bounds (a Python or
    numpy number; not a bool).

    ``strict_minimum`` makes the lower bound exclusive (e.g. a learning rate > 0).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy numbers are Real; numpy bools not
        raise ValueError(f"{field}={value!r} must be a number")
    if value != value:  # NaN
        raise ValueError(f"{field}={value!r} must not be NaN")
    if strict_minimum and minimum is not None and value <= minimum:
        raise ValueError(f"{field}={value!r} must be > {minimum}")
    _check_range(field, value, None if strict_minimum else minimum, maximum)


#: The largest seed accepted: seeds are non-negative signed 64-bit integers (what a torch
#: generator, a numpy SeedSequence and an int64 column of the run store all hold).
MAX_SEED = 2**63 - 1


def check_fraction(field: str, value: Any) -> None:
    """Raise ``ValueError`` unless ``value`` is a number strictly between 0 and 1 (a split
    fraction: 0 or 1 would leave one side of the split empty)."""
    check_number(field, value, minimum=0.0, maximum=1.0, strict_minimum=True)
    if value >= 1.0:
        raise ValueError(f"{field}={value!r} must be < 1 (1 would leave the train split empty); choose a value in (0, 1)")


def check_seed(field: str, value: Any) -> None:
    """Raise ``ValueError`` unless ``value`` is an int in ``[0, MAX_SEED]`` (0 .. 2**63 - 1)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{field}={value!r} must be an integer seed in [0, 2**63 - 1]")
    if not 0 <= value <= MAX_SEED:
        raise ValueError(f"{field}={value!r} is out of range; a seed is an integer in [0, 2**63 - 1]")


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


# --------------------------------------------------------------------- notebook parameters

#: ``validator(field, value)`` raises ``ValueError`` naming the field, the value and what is
#: allowed; the helpers below build the common ones.
Validator = Callable[[str, Any], None]

# Names every IPython kernel defines in a notebook's namespace.
_KERNEL_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit", "open"})


def one_of(*allowed: Any) -> Validator:
    """A validator accepting exactly the values ``allowed``."""
    return lambda field, value: check_choice(field, value, allowed)


def integer(*, minimum: int | None = None, maximum: int | None = None) -> Validator:
    """A validator of an int (not bool) within ``[minimum, maximum]``."""
    return lambda field, value: check_int(field, value, minimum=minimum, maximum=maximum)


def number(*, minimum: float | None = None, maximum: float | None = None, strict_minimum: bool = False) -> Validator:
    """A validator of a real number within the bounds (see :func:`check_number`)."""
    return lambda field, value: check_number(
        field, value, minimum=minimum, maximum=maximum, strict_minimum=strict_minimum
    )


def optional(validator: Validator) -> Validator:
    """``None``, or a value ``validator`` accepts."""

    def check(field: str, value: Any) -> None:
        if value is not None:
            validator(field, value)

    return check


def assignments(field: str, value: Any) -> None:
    """A validator of a list (possibly empty) of ``key=value`` strings: a page's ``overrides``, in
    the grammar of the ``fairdd`` command's ``--set`` (the values are checked when the config is built)."""
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{field}={value!r} must be a list of key=value strings, e.g. ['seeds=0,1']")
    bad = [v for v in value if not isinstance(v, str) or "=" not in v or not v.partition("=")[0].strip()]
    if bad:
        raise ValueError(f"{field}: {bad!r} are not key=value strings (e.g. 'temperatures=1,3' or 'data.train_per_class=50')")


def sequence(validator: Validator, *, contains: Collection[Any] = ()) -> Validator:
    """A non-empty list or tuple whose every element ``validator`` accepts and which holds
    every value of ``contains`` (the values the notebook reads by name)."""

    def check(field: str, value: Any) -> None:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{field}={value!r} must be a list")
        check_sequence(field, value, validator)
        absent = [c for c in contains if c not in value]
        if absent:
            raise ValueError(f"{field}={list(value)!r} must include {absent}: the notebook shows those values")

    return check


def profile_name(field: str, value: Any) -> None:
    """Validator of a run profile (one of :data:`PROFILES`)."""
    check_choice(field, value, PROFILES)


def device_name(field: str, value: Any) -> None:
    """Validator of a torch device name: ``"cpu"``, ``"cuda"`` or ``"cuda:<n>"`` (available), ``"mps"``."""
    if not isinstance(value, str) or not re.fullmatch(r"cpu|mps|cuda(:\d+)?", value):
        raise ValueError(f"{field}={value!r} is not allowed; choose 'cpu', 'cuda', 'cuda:<index>' or 'mps'")
    if value.startswith("cuda"):
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(value.split(":")[1]) if ":" in value else 0
        if index >= count:
            raise ValueError(f"{field}={value!r}: this machine has {count} CUDA device(s); use 'cpu'")
    elif value == "mps":
        import torch

        if not torch.backends.mps.is_available():
            raise ValueError(f"{field}={value!r}: MPS is not available on this machine; use 'cpu'")


def check_notebook_parameters(namespace: Mapping[str, Any], **validators: Validator) -> None:
    """Check a notebook's parameters: call it first in the cell after the ``parameters`` cell.

    ``check_notebook_parameters(globals(), profile=profile_name, processes=optional(integer(minimum=1)))``
    declares the notebook's parameters (the keyword names) and how each is checked. Papermill
    (``-p name value``) injects its values in a cell after the ``parameters`` cell; a name that
    is not declared (a misspelling such as ``profil``) raises, instead of being ignored while
    the default runs. Every declared parameter must be defined, and each value must pass its
    validator, so a bad value fails here, before any data is loaded.

    Parameters
    ----------
    namespace : the notebook's ``globals()``. Its data values (None, bool, numbers, strings,
        lists, tuples, dicts) bound to public names are the parameters; modules, functions and
        classes (imports) and IPython's own names are not.
    **validators : parameter name → ``validator(field, value)`` (see :func:`one_of`,
        :func:`integer`, :func:`number`, :func:`optional`, :func:`sequence`, :func:`profile_name`,
        :func:`device_name`).

    Raises
    ------
    ValueError
        Naming the unknown or missing parameters (and the declared ones), or the bad value.
    """
    if not validators:
        raise ValueError("check_notebook_parameters needs the declared parameters as keyword arguments")
    data_types = (type(None), bool, int, float, str, list, tuple, dict)
    given = {
        name
        for name, value in namespace.items()
        if not name.startswith("_") and name not in _KERNEL_NAMES and isinstance(value, data_types)
    }
    unknown = sorted(given - set(validators))
    if unknown:
        raise ValueError(
            f"unknown notebook parameter(s) {unknown}; this notebook takes {sorted(validators)} "
            "(check the spelling of papermill's -p names)"
        )
    missing = sorted(set(validators) - set(namespace))
    if missing:
        raise ValueError(f"notebook parameter(s) {missing} are not defined; the parameters cell must set {sorted(validators)}")
    for name, validator in validators.items():
        validator(name, namespace[name])
