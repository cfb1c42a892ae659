"""A toy study whose cells sleep, for the tests of sweeps under signals and side by side (the
worker processes import it by name)."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

from fairdd.studies._study import Study


@dataclasses.dataclass(frozen=True)
class ToyCell:
    index: int
    sleep: float = dataclasses.field(default=0.0, metadata={"run_id": False})
    log: str = dataclasses.field(default="", metadata={"run_id": False})


def compute(cell: ToyCell, root: Any) -> list[dict[str, Any]]:
    """Note the computation in ``cell.log`` (``<pid> <index> start|end``), sleep, return a row."""
    if cell.log:
        with open(cell.log, "a") as fh:
            fh.write(f"{os.getpid()} {cell.index} start\n")
    time.sleep(cell.sleep)
    if cell.log:
        with open(cell.log, "a") as fh:
            fh.write(f"{os.getpid()} {cell.index} end\n")
    return [{"value": 2 * cell.index}]


def sleepy(folder: str) -> None:
    """A job that marks its pid in ``folder`` and sleeps a minute."""
    Path(folder, str(os.getpid())).write_text("")
    time.sleep(60)


TOY = Study(name="toy", compute=compute)
