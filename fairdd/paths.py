"""Where fairdd keeps data and results.

Both roots default to folders beside the package (the repository checkout) and can be
moved with environment variables, so a notebook, a test and a sweep agree on them.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["REPO_ROOT", "data_root", "results_root"]

REPO_ROOT = Path(__file__).resolve().parent.parent


def _root(variable: str, default: Path) -> Path:
    value = os.environ.get(variable)
    if value is None:
        return default
    if not value.strip():
        raise ValueError(
            f"${variable} is set but empty ({value!r}); set it to a folder, or unset it to use the default {default}"
        )
    return Path(value)


def data_root() -> Path:
    """Root of the on-disk data sets: ``$FAIRDD_DATA`` or ``<repo>/data``.

    An empty ``$FAIRDD_DATA`` is refused (``ValueError``) rather than read as the current folder.
    """
    return _root("FAIRDD_DATA", REPO_ROOT / "data")


def results_root() -> Path:
    """Root of the run store: ``$FAIRDD_RESULTS`` or ``<repo>/results`` (an empty value is refused)."""
    return _root("FAIRDD_RESULTS", REPO_ROOT / "results")
