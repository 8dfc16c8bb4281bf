"""What a change (one commit, or the staged index) does to the log: the segment files it
changes, with their content on each side, and the log lines it appends. A merge appends
only the lines none of its parents already had.

The gates see a change through :mod:`convergent.gates.context`, which builds on this; the
weights policy (:mod:`convergent.adapters`) reads the records a commit appends from here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import git

from convergent.gitops import (
    EMPTY_TREE,
    REGULAR_FILES,
    RawChange,
    diff_trees,
    parse_raw_diff,
    read_blob,
)
from convergent.history import parsed_record
from convergent.layout import is_segment


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


def appended_lines(path: str, old: bytes | None, new: bytes | None) -> list[NewLine]:
    """The lines ``new`` adds after ``old`` (every line after the first difference)."""
    if new is None:
        return []
    old = old or b""
    start = len(old) if new.startswith(old) else _common_prefix_lines(old, new)
    first_lineno = new.count(b"\n", 0, start) + 1
    pieces = new[start:].split(b"\n")
    if pieces and pieces[-1] == b"":
        pieces.pop()  # the final newline ends the last line; it opens no new one
    return [NewLine(path, first_lineno + i, raw, parsed_record(raw))
            for i, raw in enumerate(pieces)]


def _common_prefix_lines(old: bytes, new: bytes) -> int:
    """Byte offset of the end of the last full line both share."""
    pos = 0
    for a, b in zip(old.splitlines(keepends=True), new.splitlines(keepends=True), strict=False):
        if a != b:
            break
        pos += len(a)
    return pos


def new_lines_of(segments: Iterable[FileChange]) -> list[NewLine]:
    """The lines the changed segments append, segment by segment."""
    lines: list[NewLine] = []
    for change in segments:
        lines.extend(appended_lines(change.path, change.old, change.new))
    return lines


def merge_parent_segments(repo: git.Repo, other: str, new_rev: str | None
                          ) -> list[FileChange]:
    """The segments that differ between the extra merge parent ``other`` and the merge's
    new side (``new_rev``; None: the staged index)."""
    if new_rev is not None:
        changes = diff_trees(repo, other, new_rev)
    else:
        out = repo.git.diff_index("--cached", "-r", "--raw", "-z", "--no-renames", other)
        changes = parse_raw_diff(out)
    return [FileChange(c.path, read_blob(repo, c.old_sha), read_blob(repo, c.new_sha))
            for c in changes if is_segment(c.path)]


def drop_merged(new_lines: list[NewLine], segments: list[FileChange],
                merge_segments: list[list[FileChange]]) -> list[NewLine]:
    """``new_lines`` without those an extra merge parent already had: a line of a segment
    the merge changes relative to that parent, or any line of one it does not change (that
    segment came entirely from the parent)."""
    known: dict[str, set[bytes]] = {}
    for segs in merge_segments:
        for seg in segs:
            known.setdefault(seg.path, set()).update((seg.old or b"").splitlines())
        for change in segments:
            if not any(s.path == change.path for s in segs) and change.new is not None:
                known.setdefault(change.path, set()).update(change.new.splitlines())
    return [line for line in new_lines if line.raw not in known.get(line.path, set())]


def segment_changes(repo: git.Repo, changes: Iterable[RawChange]) -> list[FileChange]:
    """The segment files among ``changes``, with their content on each side."""
    return [FileChange(c.path, read_blob(repo, c.old_sha), read_blob(repo, c.new_sha),
                       c.new_mode in REGULAR_FILES)
            for c in changes if is_segment(c.path)]


def commit_new_lines(repo: git.Repo, commit: str) -> list[NewLine]:
    """The log lines ``commit`` appends against its first parent (for a merge, those no
    parent had)."""
    obj = repo.commit(commit)
    parents = [p.hexsha for p in obj.parents]
    segments = segment_changes(repo, diff_trees(repo, parents[0] if parents else EMPTY_TREE,
                                                obj.hexsha))
    lines = new_lines_of(segments)
    if len(parents) > 1:
        merged = [merge_parent_segments(repo, other, obj.hexsha) for other in parents[1:]]
        lines = drop_merged(lines, segments, merged)
    return lines


def appended_records(repo: git.Repo, commit: str) -> list[dict[str, Any]]:
    """The JSON objects on the lines ``commit`` appends (lines that are none left out)."""
    return [line.record for line in commit_new_lines(repo, commit) if line.record is not None]
