"""The built book in a real browser: headless Chromium (system package) through Playwright.

Run after `make book` (or point FAIRDD_BOOK_HTML at a built site):

    .venv/bin/python -m pytest -q tests/browser

Every page of the built site (every .html outside _static/_sources/_images) must load with
HTTP 200, log no console error and throw no page error, request nothing from outside the machine
(nor refer an inline script to an outside URL, e.g. the lazy thebe loader), show all its images,
and have its formulas typeset by the book's own MathJax. The search page must find a word of the
book, and the "next" links must walk the chapters in the order of the sidebar.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urldefrag

import pytest

from .support import book_dir, missing

SEARCH_TERM = "distillation"
SPECIAL = {"index.html", "search.html", "genindex.html"}  # redirect, search, index: own checks
MATH_RE = re.compile(r'class="math[ "]')  # Sphinx's <span|div class="math notranslate ...">
OUTSIDE_URL_JS = r"""() => {
  const urls = [];
  const attr = (sel, name) => document.querySelectorAll(sel).forEach(e => {
    const v = e.getAttribute(name); if (v) urls.push([sel, new URL(v, document.baseURI).href]); });
  attr("script[src]", "src");
  // <link>s the browser fetches or connects to (not rel=canonical/next/prev/..., mere links).
  ["stylesheet", "preload", "modulepreload", "prefetch", "preconnect", "dns-prefetch", "icon",
   "manifest"].forEach(rel => attr(`link[rel~="${rel}"][href]`, "href"));
  attr("img[src]", "src"); attr("iframe[src]", "src"); attr("source[src]", "src"); attr("video[src]", "src");
  attr("audio[src]", "src"); attr("object[data]", "data"); attr("embed[src]", "src");
  // URLs an inline script may load later (sphinx-thebe: THEBE_JS_URL, loaded on demand).
  document.querySelectorAll("script:not([src])").forEach(s => {
    for (const m of s.textContent.matchAll(/(?:https?|wss?):\/\/[^\s"'`<>)]+/g)) urls.push(["inline script", m[0]]);
  });
  return urls;
}"""
IMAGES_JS = r"""async () => {
  const imgs = Array.from(document.images);
  imgs.forEach(i => { if (i.loading === "lazy") i.loading = "eager"; });
  await Promise.all(imgs.map(i => i.complete ? null :
    new Promise(r => { i.addEventListener("load", r); i.addEventListener("error", r); })));
  return imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.currentSrc || i.src);
}"""
MATHJAX_JS = r"""async () => {
  const math = document.querySelectorAll(".math");
  if (!window.MathJax || !MathJax.startup || !MathJax.startup.promise)
    return {math: math.length, loaded: false};
  await MathJax.startup.promise;
  return {
    math: math.length, loaded: true,
    containers: document.querySelectorAll("mjx-container").length,
    untypeset: Array.from(math).filter(e => !e.querySelector("mjx-container"))
                    .map(e => e.textContent.trim().slice(0, 80)),
    errors: Array.from(document.querySelectorAll("mjx-merror"))
                 .map(e => (e.getAttribute("data-mjx-error") || e.textContent).slice(0, 80)),
  };
}"""


def _pages() -> list[str]:
    html = book_dir()
    if not html.is_dir():
        return []
    return sorted(
        p.relative_to(html).as_posix()
        for p in html.rglob("*.html")
        if not any(part.startswith("_") for part in p.relative_to(html).parts)
    )


PAGES = _pages()
CONTENT = [p for p in PAGES if p not in SPECIAL]


def _has_math(site: Path, relpath: str) -> bool:
    return bool(MATH_RE.search((site / relpath).read_text(encoding="utf-8")))


def _open(tab, relpath: str) -> list[str]:
    """Load ``relpath``, wait until it is quiet; the problems of loading it (empty: none)."""
    page = tab.page
    response = page.goto(tab.url(relpath), wait_until="load")
    problems = [] if response is not None and response.status == 200 else [
        f"HTTP {None if response is None else response.status} for {relpath}"]
    page.wait_for_load_state("networkidle")
    return problems


def _check_page(tab, relpath: str) -> dict:
    """The checks every page gets; returns what MathJax reported."""
    problems = _open(tab, relpath)
    for where, url in tab.page.evaluate(OUTSIDE_URL_JS):
        if not tab.is_local(url):
            problems.append(f"{where} refers to outside URL {url}")
    problems += [f"image not loaded: {src}" for src in tab.page.evaluate(IMAGES_JS)]
    math = tab.page.evaluate(MATHJAX_JS)
    if math["math"]:
        if not math["loaded"]:
            problems.append(f"{math['math']} formulas but MathJax did not load")
        else:
            if not math["containers"]:
                problems.append("MathJax ran but made no mjx-container")
            problems += [f"formula not typeset: {t}" for t in math["untypeset"]]
            problems += [f"MathJax error: {t}" for t in math["errors"]]
    tab.page.wait_for_load_state("networkidle")
    problems = list(dict.fromkeys(problems + tab.problems()))
    assert not problems, f"{relpath}:\n  " + "\n  ".join(problems)
    return math


def _no_book() -> None:
    missing(f"no built book at {book_dir()} (run `make book`, or set FAIRDD_BOOK_HTML)")


@pytest.mark.parametrize("relpath", CONTENT or ["<no built book>"])
def test_page_loads_cleanly(tab, site, relpath) -> None:
    if relpath not in CONTENT:
        _no_book()
    _check_page(tab, relpath)


@pytest.mark.parametrize("relpath", sorted(SPECIAL - {"index.html"}))
def test_special_page_loads_cleanly(tab, site, relpath) -> None:
    if not (site / relpath).is_file():
        pytest.fail(f"{relpath} is missing from the built book")
    _check_page(tab, relpath)


def test_some_page_has_math_and_mathjax_typesets_it(tab, site) -> None:
    with_math = [p for p in CONTENT if _has_math(site, p)]
    assert with_math, "no page of the book has a formula; the MathJax check checked nothing"
    math = _check_page(tab, with_math[0])
    assert math["loaded"] and math["containers"] >= math["math"] > 0, math


def _root(tab) -> str:
    """Open index.html, follow its redirect; the URL of the book's root page."""
    problems = _open(tab, "index.html")
    tab.page.wait_for_url(lambda url: url != tab.url("index.html"))
    tab.page.wait_for_load_state("networkidle")
    assert not problems + tab.problems(), problems + tab.problems()
    return urldefrag(tab.page.url).url


def _sidebar(tab) -> list[str]:
    hrefs = tab.page.eval_on_selector_all(
        "nav.bd-docs-nav a.reference.internal", "links => links.map(a => a.href)")
    return list(dict.fromkeys(urldefrag(h).url for h in hrefs))


def test_navigation_lists_every_page(tab, site) -> None:
    """The sidebar (crawled from index.html) lists the root and every chapter, and nothing else."""
    if not CONTENT:
        _no_book()
    root = _root(tab)
    listed = _sidebar(tab)
    assert listed and listed[0] == root, listed
    assert sorted(u[len(tab.base):] for u in listed) == CONTENT


def test_next_links_walk_the_chapters_in_order(tab, site) -> None:
    if not CONTENT:
        _no_book()
    root = _root(tab)
    order = _sidebar(tab)
    assert len(order) >= 3, f"fewer than two chapters in the sidebar: {order}"
    visited = [root]
    page = tab.page
    while page.locator("a.right-next").count():
        with page.expect_navigation():
            page.locator("a.right-next").first.click()
        page.wait_for_load_state("networkidle")
        visited.append(urldefrag(page.url).url)
        assert len(visited) <= len(order), f"the next links go past the last chapter: {visited}"
        if len(visited) == 3:  # the first chapter's "next" lands on the second chapter
            assert visited[2] != visited[1] and visited[2] in order[2:], visited
    assert visited == order, "the 'next' links and the sidebar disagree"
    with page.expect_navigation():
        page.locator("a.left-prev").first.click()
    assert urldefrag(page.url).url == order[-2]
    assert not tab.problems(), tab.problems()


def test_search_finds_a_word_of_the_book(tab, site) -> None:
    page = tab.page
    problems = _open(tab, f"search.html?q={SEARCH_TERM}")
    results = page.locator("#search-results ul.search li")
    results.first.wait_for(state="attached", timeout=30_000)
    found = results.evaluate_all("lis => lis.map(li => li.querySelector('a').href)")
    assert found, f"search for {SEARCH_TERM!r} found nothing"
    assert all(tab.is_local(u) and u.startswith(tab.url("book/")) for u in found), found
    page.wait_for_load_state("networkidle")
    problems += tab.problems()
    assert not problems, "\n".join(problems)


def test_the_recorder_sees_outside_requests(tab, site) -> None:
    """The request check is not vacuous: a fetch to an outside host is recorded (and aborted)."""
    _open(tab, "genindex.html")
    outcome = tab.page.evaluate(
        "() => fetch('http://192.0.2.1/probe.js').then(() => 'reached', () => 'blocked')")
    assert outcome == "blocked" and "http://192.0.2.1/probe.js" in tab.outside, tab.outside


CLAIMS_JS = r"""() => Array.from(document.querySelectorAll("table.fairdd-claims tr[data-claim-key]"))
  .map(tr => [tr.getAttribute("data-claim-key"), tr.getAttribute("data-verdict")])"""
SUMMARY = "book/chapters/replication.html"


def test_the_replication_summary_agrees_with_every_chapter(tab, site) -> None:
    """Every verdict on the summary page is the one its chapter shows, and every claim a chapter
    judges is on the summary (the rendered pages, not the functions behind them)."""
    if SUMMARY not in CONTENT:
        _no_book() if not CONTENT else pytest.fail(f"{SUMMARY} is missing from the built book")
    _open(tab, SUMMARY)
    summary = tab.page.evaluate(CLAIMS_JS)
    assert summary, "the summary page shows no claim"
    assert len({k for k, _ in summary}) == len(summary), "the summary repeats a claim"
    chapters = {}
    for relpath in CONTENT:
        if relpath == SUMMARY or not relpath.startswith("book/chapters/"):
            continue
        _open(tab, relpath)
        for key, verdict in tab.page.evaluate(CLAIMS_JS):
            assert chapters.setdefault(key, (verdict, relpath))[0] == verdict, \
                f"{key}: {relpath} says {verdict!r}, {chapters[key][1]} says {chapters[key][0]!r}"
    shown = {k: v for k, v in summary}
    assert shown == {k: v for k, (v, _) in chapters.items()}, (
        f"only on the summary: {sorted(set(shown) - set(chapters))}; only in a chapter: "
        f"{sorted(set(chapters) - set(shown))}; differing: "
        f"{sorted(k for k in set(shown) & set(chapters) if shown[k] != chapters[k][0])}")


CSV_LINKS_JS = r"""() => Array.from(document.querySelectorAll("a[href$='.csv']"))
  .map(a => [a.getAttribute("href"), a.href, a.textContent])"""
TABLES_JS = r"""() => Array.from(document.querySelectorAll("article table")).map(t => ({
  index: t.querySelector("thead th:first-child") !== null
         && t.querySelector("thead th:first-child").textContent.trim() === ""
         && t.querySelector("tbody th") !== null
         && /^\d+$/.test(t.querySelector("tbody th").textContent.trim()),
  nan: Array.from(t.querySelectorAll("td")).some(td => /^(nan|NaN|<NA>|None)$/.test(td.textContent.trim())),
  head: Array.from(t.querySelectorAll("thead th")).map(th => th.textContent.trim()).join(" | ").slice(0, 120),
  overflow: (() => { const main = t.closest("article") || document.body;
                     return t.getBoundingClientRect().right - main.getBoundingClientRect().right; })(),
}))"""


def _csv_rows(tab, url: str) -> list[dict]:
    import csv
    import io

    response = tab.page.request.get(url)
    assert response.status == 200, f"HTTP {response.status} for {url}"
    return list(csv.DictReader(io.StringIO(response.text())))


def _check_csv_links(tab, relpath: str) -> list[tuple[str, list[dict]]]:
    """Every "The N rows as CSV" link of the open page downloads N rows; returns them."""
    out = []
    for href, url, text in tab.page.evaluate(CSV_LINKS_JS):
        m = re.search(r"The (\d+) rows as CSV", text)
        assert m, f"{relpath}: CSV link {href!r} says {text!r}"
        rows = _csv_rows(tab, url)
        assert len(rows) == int(m.group(1)), f"{relpath}: {href} holds {len(rows)} rows, its link says {m.group(1)}"
        assert rows and "run_id" in rows[0], f"{relpath}: {href} has no run_id column"
        out.append((href, rows))
    return out


def test_every_source_line_links_the_rows_behind_it(tab, site) -> None:
    """A chapter's Source lines link CSV files beside the page, each holding the rows it counts."""
    chapters = [p for p in CONTENT if p.startswith("book/chapters/") and p != SUMMARY]
    if not chapters:
        _no_book()
    for relpath in chapters:
        _open(tab, relpath)
        sources = tab.page.locator("text=/^Source: \\d+ runs? at profile/").count()
        links = _check_csv_links(tab, relpath)
        if sources:
            assert links, f"{relpath}: {sources} Source line(s) but no CSV link"


def test_page_tables_show_no_index_column_no_nan_text_and_fit_the_page(tab, site) -> None:
    problems = []
    chapters = [p for p in CONTENT if p.startswith("book/chapters/")]
    if not chapters:
        _no_book()
    for relpath in chapters:
        _open(tab, relpath)
        for t in tab.page.evaluate(TABLES_JS):
            if t["nan"]:
                problems.append(f"{relpath}: a table shows NaN text ({t['head']})")
            if t["index"]:
                problems.append(f"{relpath}: a table shows a 0…N index column ({t['head']})")
            if t["overflow"] > 1:
                problems.append(f"{relpath}: a table runs {t['overflow']:.0f} px past the page's right edge ({t['head']})")
    assert not problems, "\n".join(problems)


def test_a_page_rerun_with_an_override_shows_and_links_its_rows(browser, tmp_path) -> None:
    """Re-execute the methods chapter at smoke with overrides (papermill, as the page's Rerun box
    says), render it with Jupyter Book, and find the new runs in its Source lines' CSV files."""
    import functools
    import http.server
    import json
    import os
    import subprocess
    import sys
    import threading

    import yaml

    from .conftest import _QuietHandler
    from .support import ROOT

    overrides = ["methods=dm,random", "images_per_class=1,2"]
    book = tmp_path / "book"
    book.mkdir()
    env = {**os.environ, "FAIRDD_RESULTS": str(tmp_path / "store"), "FAIRDD_PAGE": "dd_methods",
           "FAIRDD_BOOK_DATA": str(book / "build" / "book-data" / "data")}
    env.pop("FAIRDD_PROGRESS", None)
    subprocess.run([sys.executable, "-m", "papermill", "-k", "python3", "--cwd", str(ROOT / "notebooks"), "-p", "profile",
                    "smoke", "-y", "overrides: " + json.dumps(overrides), str(ROOT / "notebooks" / "dd_methods.ipynb"),
                    str(book / "dd_methods.ipynb")], check=True, env=env, capture_output=True, timeout=900)
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["sphinx"]["config"]["html_static_path"] = [str(ROOT / "book" / "_static")]
    config["exclude_patterns"] = ["_build/*", "build/*"]
    (book / "_config.yml").write_text(yaml.safe_dump(config))
    (book / "_toc.yml").write_text("format: jb-book\nroot: dd_methods\n")
    subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", "--all", str(book)], check=True,
                   capture_output=True, timeout=600)
    html = book / "_build" / "html"
    handler = functools.partial(_QuietHandler, directory=str(html))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    context = browser.new_context(service_workers="block")
    try:
        page = context.new_page()
        assert page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/dd_methods.html").status == 200
        box = page.locator(".fairdd-rerun").inner_text()
        assert "methods=dm,random, images_per_class=1,2" in box and "--set methods=dm,random images_per_class=1,2" in box

        class _Tab:
            pass

        t = _Tab()
        t.page = page
        links = _check_csv_links(t, "dd_methods.html")
        assert links, "the re-executed page links no CSV"
        ipcs = {r["images_per_class"] for _, rows in links for r in rows if r.get("images_per_class")}
        methods = {r["method"] for _, rows in links for r in rows}
        assert {"1", "2"} <= {i.split(".")[0] for i in ipcs} and methods == {"dm", "random"}, (ipcs, methods)
        shown = page.evaluate(r"""() => Array.from(document.querySelectorAll("table")).flatMap(t => {
            const heads = Array.from(t.querySelectorAll("thead th")).map(th => th.textContent.trim());
            const k = heads.indexOf("images per class");
            return k < 0 ? [] : Array.from(t.querySelectorAll("tbody tr"))
              .map(tr => Array.from(tr.children).map(td => td.textContent.trim()))
              .map(cells => [cells[heads.indexOf("method")], cells[k]]); })""")
        assert ["dm", "2"] in shown and ["random", "2"] in shown, f"the page's tables do not show the new runs: {shown}"
    finally:
        context.close()
        httpd.shutdown()
        httpd.server_close()
