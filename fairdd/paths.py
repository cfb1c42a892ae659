"""Where fairdd keeps data and results.

Both roots default to folders beside the package (the repository checkout) and can be
moved with environment variables, so a notebook, a test and a sweep agree on them.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["REPO_ROOT", "data_root", "results_root"]

REPO_ROOT = Path(__file__).resolve().parent.parent


def data_root() -> Path:
    """Root of the on-disk data sets: ``$FAIRDD_DATA`` or ``<repo>/data``."""
    return Path(os.environ.get("FAIRDD_DATA", REPO_ROOT / "data"))


def results_root() -> Path:
    """Root of the run store: ``$FAIRDD_RESULTS`` or ``<repo>/results``."""
    return Path(os.environ.get("FAIRDD_RESULTS", REPO_ROOT / "results"))
