"""Gate ``append-only``: committed lines are never changed, removed or reordered.

At an ordinary commit a segment's new content must start with its old content.
At a merge it must start with the first parent's content, and every other
parent's lines must appear in it in the same order (what ``merge=union`` gives).
A new segment must sort after every segment that already existed.
"""

from __future__ import annotations

from collections.abc import Iterator

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


def _check_prefix(change: FileChange, parent_label: str) -> Iterator[Problem]:
    if change.old is None:
        return
    if change.new is None:
        yield Problem(change.path, 1, GATE, f"segment removed (it exists in {parent_label})")
        return
    if not change.new.startswith(change.old):
        line = _first_difference(change.old, change.new)
        yield Problem(change.path, line, GATE,
                      f"committed line {line} was changed, removed or reordered "
                      f"(compared with {parent_label})")


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


def _check_kept_in_order(change: FileChange, parent_label: str) -> Iterator[Problem]:
    if change.old is None:
        return
    if change.new is None:
        yield Problem(change.path, 1, GATE, f"segment removed (it exists in {parent_label})")
        return
    missing = _is_subsequence(change.old.splitlines(), change.new.splitlines())
    if missing is not None:
        yield Problem(change.path, missing + 1, GATE,
                      f"line {missing + 1} of {parent_label} was changed, removed or reordered "
                      "by the merge")


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
        yield from _check_prefix(change, label)
    for index, changes in enumerate(ctx.merge_segments, start=1):
        other = f"merged parent {ctx.parents[index][:12]}" if len(ctx.parents) > index else (
            "merged parent")
        for change in changes:
            yield from _check_kept_in_order(change, other)
    yield from _check_new_segment_order(ctx)
