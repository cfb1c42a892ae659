"""Every notebook checks its parameters first: a misspelled or bad parameter raises at once."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from fairdd.config import (
    check_notebook_parameters,
    device_name,
    integer,
    number,
    optional,
    profile_name,
    sequence,
)
from fairdd.paths import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))


def _cells(path: Path) -> tuple[str, str]:
    """The parameters cell and the first code cell after it."""
    cells = json.loads(path.read_text())["cells"]
    i = next(k for k, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", []))
    after = next(c for c in cells[i + 1 :] if c["cell_type"] == "code")
    return "".join(cells[i]["source"]), "".join(after["source"])


def _check_part(cell: str) -> str:
    """The cell's statements up to its check call; fails unless only imports come before it."""
    tree = ast.parse(cell)
    for k, node in enumerate(tree.body):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and getattr(
            node.value.func, "id", None
        ) == "check_notebook_parameters":
            before = tree.body[:k]
            assert all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in before), "only imports may precede the check"
            config_imports = [n for n in before if isinstance(n, ast.ImportFrom) and n.module == "fairdd.config"]
            return "\n".join(ast.unparse(n) for n in [*config_imports, node])
    raise AssertionError("the first code cell after the parameters cell does not call check_notebook_parameters")


def _run(path: Path, **injected: Any) -> None:
    parameters, first = _cells(path)
    namespace: dict[str, Any] = {"__name__": "__main__", "In": [], "Out": {}, "_": None}
    exec(parameters, namespace)
    namespace.update(injected)  # what papermill's injected-parameters cell does
    exec(_check_part(first), namespace)


@pytest.fixture(params=NOTEBOOKS, ids=lambda p: p.stem)
def notebook(request) -> Path:
    return request.param


def test_defaults_pass_and_every_parameter_is_declared(notebook: Path) -> None:
    _run(notebook)
    parameters, first = _cells(notebook)
    assigned = {t.id for n in ast.parse(parameters).body if isinstance(n, ast.Assign) for t in n.targets}
    call = next(n.value for n in ast.parse(first).body if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)
                and getattr(n.value.func, "id", None) == "check_notebook_parameters")
    assert {k.arg for k in call.keywords} == assigned


def test_a_misspelled_parameter_raises(notebook: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown notebook parameter\(s\) \['profil'\]"):
        _run(notebook, profil="smoke")


def test_an_unknown_profile_raises(notebook: Path) -> None:
    with pytest.raises(ValueError, match="profile='fast' is not allowed"):
        _run(notebook, profile="fast")


def test_notebook_specific_bad_values_raise() -> None:
    by_name = {p.stem: p for p in NOTEBOOKS}
    with pytest.raises(ValueError, match=r"bias_ratios=\[0\.0, 1\.0\] must include \[0\.5, 0\.95\]"):
        _run(by_name["datasets"], bias_ratios=[0.0, 1.0])
    with pytest.raises(ValueError, match="colour_severity=9 must be <= 5"):
        _run(by_name["bias_dd"], colour_severity=9)
    with pytest.raises(ValueError, match="processes=0 must be >= 1"):
        _run(by_name["dd_methods"], processes=0)


def test_papermill_injected_cell_is_caught(tmp_path) -> None:
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(
        str(REPO_ROOT / "notebooks" / "dd_methods.ipynb"), str(out), parameters={"profil": "smoke"},
        prepare_only=True, kernel_name="python3", progress_bar=False, log_output=False,
    )
    cells = json.loads(out.read_text())["cells"]
    k = next(i for i, c in enumerate(cells) if "injected-parameters" in c.get("metadata", {}).get("tags", []))
    namespace: dict[str, Any] = {}
    exec("".join(cells[k - 1]["source"]), namespace)  # the parameters cell
    exec("".join(cells[k]["source"]), namespace)  # papermill's injected cell
    with pytest.raises(ValueError, match="profil"):
        exec(_check_part("".join(cells[k + 1]["source"])), namespace)


def test_the_validators() -> None:
    ok = dict(profile="cpu", processes=None)
    check_notebook_parameters(ok, profile=profile_name, processes=optional(integer(minimum=1)))
    with pytest.raises(ValueError, match=r"parameter\(s\) \['processes'\] are not defined"):
        check_notebook_parameters({"profile": "cpu"}, profile=profile_name, processes=optional(integer(minimum=1)))
    # imports and IPython's names are not parameters
    check_notebook_parameters({**ok, "np": pytest, "In": [], "_x": 1, "f": len}, profile=profile_name, processes=optional(integer()))
    device_name("device", "cpu")
    for bad in ("tpu", "cuda:x", 0):
        with pytest.raises(ValueError, match="device"):
            device_name("device", bad)
    with pytest.raises(ValueError, match="must be a list"):
        sequence(number())("ratios", 0.5)
    with pytest.raises(ValueError, match="must be <= 1"):
        sequence(number(maximum=1))("ratios", [0.5, 2])
