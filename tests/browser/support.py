"""Helpers of the browser test (tests/browser): where the book and the browser are, and a
recording tab. The fixtures are in conftest.py."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_SCHEMES = ("data", "blob", "about")


def book_dir() -> Path:
    """The built HTML book: ``$FAIRDD_BOOK_HTML`` or ``<repo>/_build/html``."""
    return Path(os.environ.get("FAIRDD_BOOK_HTML") or ROOT / "_build" / "html").resolve()


def chromium_path() -> str | None:
    """``$FAIRDD_CHROMIUM`` if set, else /usr/bin/chromium (Debian's ``chromium``) or one on PATH."""
    wanted = os.environ.get("FAIRDD_CHROMIUM")
    if wanted:
        return wanted if os.access(wanted, os.X_OK) else None
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


def missing(reason: str) -> None:
    """Skip (on a developer's machine) or fail (``FAIRDD_BROWSER_REQUIRED=1``, in CI)."""
    if os.environ.get("FAIRDD_BROWSER_REQUIRED", "") not in ("", "0"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@dataclasses.dataclass(repr=False)
class Tab:
    """A browser tab and what it did: console errors, page errors, outside and failed requests."""

    page: object
    base: str
    console_errors: list[str] = dataclasses.field(default_factory=list)
    page_errors: list[str] = dataclasses.field(default_factory=list)
    requests: list[str] = dataclasses.field(default_factory=list)
    outside: list[str] = dataclasses.field(default_factory=list)
    failed: list[str] = dataclasses.field(default_factory=list)

    def __repr__(self) -> str:
        return f"<Tab {self.page.url} ({len(self.requests)} requests)>"

    def is_local(self, url: str) -> bool:
        if urlsplit(url).scheme in LOCAL_SCHEMES:
            return True
        return url.startswith(self.base)

    def url(self, relpath: str) -> str:
        return self.base + relpath.lstrip("/")

    def problems(self) -> list[str]:
        """What went wrong since the tab opened, one line each (empty: nothing)."""
        lines = [f"request to outside the machine: {u}" for u in dict.fromkeys(self.outside)]
        lines += [f"console error: {m}" for m in self.console_errors]
        lines += [f"page error: {m}" for m in self.page_errors]
        lines += [f"failed request: {m}" for m in self.failed]
        return lines
