"""Gate ``append-only``: committed lines are never changed, removed or reordered.

At an ordinary commit a segment's new content must start with its old content.
At a merge it must start with the first parent's content, and every other
parent's lines must appear in it in the same order (what ``merge=union`` gives).
A new segment must sort after every segment that already existed. A segment is a
regular file, never a symbolic link or a submodule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from convergent.gates.base import FileChange, GateContext, Problem

GATE = "append-only"


def _first_difference(old: bytes, new: bytes) -> int:
    """1-based number of the first line of ``old`` that ``new`` does not keep in place."""
    old_lines = old.split(b"\n")
    new_lines = new.split(b"\n")
    for i, (a, b) in enumerate(zip(old_lines, new_lines, strict=False)):
        if a != b:
            return i + 1
    return min(len(old_lines), len(new_lines))


def _is_subsequence(needles: list[bytes], haystack: list[bytes]) -> int | None:
    """None when ``needles`` appear in order within ``haystack``, else the first missing index."""
    pos = 0
    for i, needle in enumerate(needles):
        while pos < len(haystack) and haystack[pos] != needle:
            pos += 1
        if pos == len(haystack):
            return i
        pos += 1
    return None


def _prefix_problem(path: str, old: bytes, new: bytes, parent_label: str) -> Problem | None:
    """An ordinary commit: the new content starts with every committed byte."""
    if new.startswith(old):
        return None
    line = _first_difference(old, new)
    return Problem(path, line, GATE, f"committed line {line} was changed, removed or "
                                     f"reordered (compared with {parent_label})")


def _order_problem(path: str, old: bytes, new: bytes, parent_label: str) -> Problem | None:
    """A merged parent: its lines appear in the result, in their order (merge=union)."""
    missing = _is_subsequence(old.splitlines(), new.splitlines())
    if missing is None:
        return None
    return Problem(path, missing + 1, GATE, f"line {missing + 1} of {parent_label} was "
                                            "changed, removed or reordered by the merge")


KeptCheck = Callable[[str, bytes, bytes, str], Problem | None]


def _check_segment(change: FileChange, parent_label: str, kept: KeptCheck
                   ) -> Iterator[Problem]:
    """A segment the parent had must still exist and keep the parent's lines."""
    if change.old is None:
        return
    if change.new is None:
        yield Problem(change.path, 1, GATE, f"segment removed (it exists in {parent_label})")
        return
    problem = kept(change.path, change.old, change.new, parent_label)
    if problem is not None:
        yield problem


def _check_new_segment_order(ctx: GateContext) -> Iterator[Problem]:
    existing = [c.path for c in ctx.segments if c.old is not None]
    existing += ctx.old_segment_names
    if not existing:
        return
    newest_old = max(existing)
    for change in ctx.segments:
        if change.old is None and change.new is not None and change.path < newest_old:
            yield Problem(change.path, 1, GATE,
                          f"new segment sorts before existing {newest_old}: that reorders the log")


def check_append_only(ctx: GateContext) -> Iterator[Problem]:
    label = f"parent {ctx.parents[0][:12]}" if ctx.parents else "HEAD"
    for change in ctx.segments:
        if not change.regular:  # Git holds the link's target path; readers would follow it
            yield Problem(change.path, 1, GATE, "the segment is a symbolic link (or a "
                          "submodule), not a file: the gates would check its target's path "
                          "while every reader follows it; segments are regular files")
        yield from _check_segment(change, label, _prefix_problem)
    for index, changes in enumerate(ctx.merge_segments, start=1):
        other = f"merged parent {ctx.parents[index][:12]}" if len(ctx.parents) > index else (
            "merged parent")
        for change in changes:
            yield from _check_segment(change, other, _order_problem)
    yield from _check_new_segment_order(ctx)
