"""Screen a record before it is appended, with the very gate functions commits run.

Content gates (decontamination, secrets) refuse a record at ``emit`` time, so a
benchmark item or a credential never reaches the log; the same gates run again at
every commit and merge as a second line of defence (for hand edits).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from convergent.config import Config
from convergent.errors import RecordError
from convergent.gates import gate_function
from convergent.gates.base import GateContext, NewLine

SCREEN_GATES = ("decontamination", "secrets")


def screen(root: Path, config: Config, record: Mapping[str, Any], line: bytes) -> None:
    """Raise :class:`RecordError` (field = the gate id) when a content gate refuses."""
    if record.get("kind") != "experience":
        return
    ctx = GateContext(root=root, config=config,
                      new_lines=[NewLine("<emit>", 1, line.rstrip(b"\n"), dict(record))])
    for name in SCREEN_GATES:
        for problem in gate_function(name)(ctx):
            raise RecordError(name, problem.message)
