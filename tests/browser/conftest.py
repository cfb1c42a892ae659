"""Fixtures for the real-browser test of the built book (tests/browser/test_book_browser.py).

The built HTML (``_build/html``, or ``$FAIRDD_BOOK_HTML``) is served by ``http.server`` on
127.0.0.1 from a thread, and opened in the system's headless Chromium (Debian ``chromium``,
``$FAIRDD_CHROMIUM`` overrides ``/usr/bin/chromium``) driven by Playwright for Python, which is
pointed at that browser: no ``playwright install``, no download.

Every test gets a tab in a fresh browser context (a first-time visitor) whose traffic is recorded: requests to anything but the local server
(or data:/blob:/about:) are recorded *and aborted*, so a test run never reaches the network even
on a machine that has one. The tests skip, saying why, when Playwright, Chromium or the built
book is missing; with ``FAIRDD_BROWSER_REQUIRED=1`` (CI) they fail instead.
"""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest

from .support import CHROMIUM_ARGS, Tab, book_dir, chromium_path, missing


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="session")
def site() -> Path:
    html = book_dir()
    if not (html / "index.html").is_file():
        missing(f"no built book at {html} (run `make book`, or set FAIRDD_BOOK_HTML)")
    return html


@pytest.fixture(scope="session")
def server(site: Path):
    """Base URL (ending in '/') of ``site`` served on 127.0.0.1 from a thread."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, name="book-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session; Playwright starts it with a fresh --user-data-dir
    (a temporary profile it deletes afterwards) and the closed-network flags of CHROMIUM_ARGS."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("Playwright for Python is not installed (pip install playwright==1.65.2)")
    executable = chromium_path()
    if executable is None:
        missing("no Chromium at /usr/bin/chromium (apt-get install chromium), or set FAIRDD_CHROMIUM")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def tab(browser, server):
    """A tab in a fresh browser context (empty storage and cache: a first-time visitor) whose
    outside requests are recorded and aborted."""
    context = browser.new_context(service_workers="block")  # every request goes through route()
    context.set_default_timeout(30_000)
    page = context.new_page()
    rec = Tab(page=page, base=server)

    def route(route) -> None:
        url = route.request.url
        if rec.is_local(url):
            route.continue_()
        else:
            rec.outside.append(url)
            route.abort("blockedbyclient")

    def on_request(request) -> None:
        rec.requests.append(request.url)
        if not rec.is_local(request.url):  # also what the router never saw
            rec.outside.append(request.url)

    def on_console(msg) -> None:
        if msg.type == "error":
            where = msg.location.get("url", "") if isinstance(msg.location, dict) else ""
            rec.console_errors.append(f"{msg.text} ({where})" if where else msg.text)

    def on_response(response) -> None:
        if response.status >= 400:
            rec.failed.append(f"HTTP {response.status} {response.url}")

    def on_failed(request) -> None:
        if rec.is_local(request.url):  # outside ones are aborted by us and listed already
            rec.failed.append(f"{request.failure} {request.url}")

    context.route("**/*", route)
    page.on("request", on_request)
    page.on("websocket", lambda ws: rec.outside.append(ws.url) if not rec.is_local(ws.url) else None)
    page.on("console", on_console)
    page.on("pageerror", lambda err: rec.page_errors.append(str(err)))
    page.on("response", on_response)
    page.on("requestfailed", on_failed)
    try:
        yield rec
    finally:
        context.close()
