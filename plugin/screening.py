"""Screen a record before it is appended, with the very gate functions commits run.

Content gates refuse a record at ``emit`` time (decontamination an experience, secrets
any record), so a benchmark item or a credential never reaches the log; the same gates run again at
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
# Decontamination is about training pairs (experiences); a credential has no place in any
# record.
EXPERIENCE_ONLY = frozenset({"decontamination"})


def screen(root: Path, config: Config, record: Mapping[str, Any], line: bytes) -> None:
    """Raise :class:`RecordError` (field = the gate id) when a content gate refuses."""
    names = [n for n in SCREEN_GATES
             if record.get("kind") == "experience" or n not in EXPERIENCE_ONLY]
    ctx = GateContext(root=root, config=config,
                      new_lines=[NewLine("<emit>", 1, line.rstrip(b"\n"), dict(record))])
    for name in names:
        for problem in gate_function(name)(ctx):
            raise RecordError(name, problem.message)
