"""The layer order of CONTRIBUTING.md is a checked contract (import-linter, pyproject.toml).

`make test` runs `lint-imports` before pytest; this test runs the same contracts, so they are
checked wherever the tests run, checks that they do break on a forbidden import or an import
circle (a contract that cannot fail checks nothing), and that CONTRIBUTING.md's diagram is the
contract's layer list.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {c["id"]: c for c in config["contracts"]}


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    lint = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([str(lint), "--no-cache", "--no-logo"], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_import_contracts_are_kept() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 broken" in result.stdout


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "fairdd", tmp_path / "fairdd", ignore=shutil.ignore_patterns("__pycache__", "*.json"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # kd importing distill breaks the sibling contract (and the layers' independence).
        ("kd.py", "import fairdd.distill", "fairdd.kd does not\nimport fairdd.distill BROKEN"),
        # A lower layer importing a higher one.
        ("data/_container.py", "import fairdd.evaluate", "Each layer imports only the layers below it BROKEN"),
        # A circle inside one package: data's loader table imports a module that imports it.
        ("data/_container.py", "import fairdd.data._load", "No import circle among the modules of any package BROKEN"),
    ],
)
def test_the_contracts_break_on_a_wrong_import(tmp_path: Path, module: str, line: str, broken: str) -> None:
    copy = _copy(tmp_path)
    path = copy / "fairdd" / module
    path.write_text(path.read_text() + f"\n{line}  # noqa\n")
    result = _lint(copy)
    assert result.returncode == 1, result.stdout + result.stderr
    assert broken in result.stdout, result.stdout


def _diagram() -> list[set[str]]:
    """CONTRIBUTING.md's layer diagram, top line first: the module names of each line."""
    text = (ROOT / "CONTRIBUTING.md").read_text()
    block = re.search(r"## Layers\n.*?```\n(.*?)```", text, re.S)
    assert block, "CONTRIBUTING.md has no '## Layers' section with a diagram"
    layers: list[set[str]] = []
    more = False  # the previous line's module column ended with a comma: this line continues it
    for row in block.group(1).splitlines():
        column = row[:32].strip()  # the module column; the rest of the line describes it
        if not column:
            continue
        names = {n.strip().rstrip("/") for n in column.split(",") if n.strip()}
        if more:
            layers[-1] |= names
        else:
            layers.append(names)
        more = column.endswith(",")
    return layers


def test_contributing_shows_the_contract_layers() -> None:
    contract = [{m.strip().removeprefix("fairdd.") for m in layer.split("|")} for layer in _contracts()["layers"]["layers"]]
    diagram = [layer for layer in _diagram() if layer != {"notebooks"}]
    assert diagram == contract


def test_every_module_of_the_package_has_a_layer() -> None:
    layered = {m.strip().removeprefix("fairdd.") for layer in _contracts()["layers"]["layers"] for m in layer.split("|")}
    modules = {p.stem for p in (ROOT / "fairdd").glob("*.py") if p.stem != "__init__"}
    packages = {p.parent.name for p in (ROOT / "fairdd").glob("*/__init__.py")}
    assert modules | packages == layered
