"""Gate ``schema``: every appended line is a valid record in canonical form, id matching."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from convergent.errors import RecordError
from convergent.gates.base import GateContext, NewLine, Problem
from convergent.records import parse_line, validate_record


def check_schema(ctx: GateContext) -> Iterator[Problem]:
    max_bytes = int(ctx.config["log"]["record_max_bytes"])
    seen: set[str] = set()
    for line in ctx.new_lines:
        try:
            record = _parse(line, max_bytes)
        except RecordError as exc:
            yield Problem(line.path, line.lineno, "schema", str(exc))
            continue
        if record["id"] in seen:
            yield Problem(line.path, line.lineno, "schema", f"duplicate id {record['id']}")
        seen.add(record["id"])
    for change in ctx.segments:
        if change.new and not change.new.endswith(b"\n"):
            lineno = change.new.count(b"\n") + 1
            yield Problem(change.path, lineno, "schema", "segment does not end with a newline "
                          "(a torn line): run any convergent command to repair it")


def _parse(line: NewLine, max_bytes: int) -> dict[str, Any]:
    """``parse_line(line.raw)``, reusing the object the context already parsed from those
    bytes when it passes; anything else goes through ``parse_line``, which says what is
    wrong."""
    record = line.record
    if record is not None and len(line.raw) <= max_bytes:
        try:
            # The context parsed it with decode_line: the JSON bounds hold already.
            validate_record(record, line.raw, decoded=True)
        except RecordError:
            pass
        else:
            return record
    return parse_line(line.raw, max_bytes)
