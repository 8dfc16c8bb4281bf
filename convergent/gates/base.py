"""What every gate sees and reports.

A gate is one function ``check(ctx: GateContext) -> Iterator[Problem]``. The same
function serves the pre-commit hooks, the git hooks and ``convergent check``; only
the way the :class:`GateContext` is built differs (staged index, a commit against its
parents, a revision range).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convergent.config import Config


@dataclass(frozen=True)
class Problem:
    """One refusal: ``path:line: gate-id: message``."""

    path: str
    line: int
    gate: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.gate}: {self.message}"


@dataclass(frozen=True)
class NewLine:
    """A log line the change under check appends.

    ``record`` is the JSON object :func:`convergent.records.decode_line` parses from the line
    (within the JSON bounds, even if it fails the schema), else None; the schema gate
    reports why.
    """

    path: str
    lineno: int
    raw: bytes
    record: dict[str, Any] | None


@dataclass(frozen=True)
class FileChange:
    """A repo file changed by the change under check (None: absent on that side);
    ``regular``: the new side is a plain file (not a symbolic link, not a submodule)."""

    path: str
    old: bytes | None
    new: bytes | None
    regular: bool = True


@dataclass
class GateContext:
    """Everything a gate may look at for one change (a commit, a merge, the staged index)."""

    root: Path
    config: Config
    new_lines: list[NewLine] = field(default_factory=list)
    # Segment files changed, with the content on each parent side: append-only compares.
    segments: list[FileChange] = field(default_factory=list)
    # Other tracked files changed (config, ACTIVE, adapters, hold-out ...).
    files: list[FileChange] = field(default_factory=list)
    # For merges: one FileChange list per extra parent (beyond the first).
    merge_segments: list[list[FileChange]] = field(default_factory=list)
    # Segment file names that existed before the change (first parent or HEAD).
    old_segment_names: list[str] = field(default_factory=list)
    commit: str | None = None
    parents: tuple[str, ...] = ()
    # Records of the whole log as of the new side, loaded lazily by gates that need
    # history (levers-first, approval): see convergent.history.records_at.
    history: Callable[[], list[dict[str, Any]]] | None = None
    # A repo file's bytes on the new side (None: absent): gates that read files the change
    # adds, such as the completions of a measured lever (levers-first).
    read_file: Callable[[str], bytes | None] | None = None


Gate = Callable[[GateContext], Iterator[Problem]]
