"""Reading the log's records: from the working tree, or as of a revision (or the staged
index) straight from Git."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import git

from convergent.errors import RecordError
from convergent.gitops import read_blob
from convergent.layout import RECORDS_DIR, is_segment
from convergent.log import iter_raw_lines
from convergent.records import check_filled_strings, decode_line, validate_draft


def parsed_record(raw: bytes) -> dict[str, Any] | None:
    """The JSON object on a log line, or None when the line is not one (the schema gate
    and ``convergent verify`` say why)."""
    try:
        return decode_line(raw, max_bytes=1 << 62)
    except RecordError:
        return None


def shaped_record(raw: bytes) -> dict[str, Any]:
    """The record on a log line, its fields and types checked, and its id and ts strings
    where it has them (not that the id matches the content, nor the canonical form: that
    is the schema gate's); RecordError naming the field otherwise. What the readers of
    history (status, proposals, the history gates, the cycle) may rely on."""
    record = decode_line(raw, max_bytes=1 << 62)
    validate_draft(record)
    check_filled_strings(record)
    return record


def _segment_blobs(repo: git.Repo, rev: str | None) -> list[tuple[str, str]]:
    if rev is None:
        out = repo.git.ls_files("-s", "--", RECORDS_DIR + "/")
        entries = [(row.split("\t", 1)[1], row.split()[1]) for row in out.splitlines()]
    else:
        out = repo.git.ls_tree("-r", rev, "--", RECORDS_DIR + "/")
        entries = [(row.split("\t", 1)[1], row.split()[2]) for row in out.splitlines()]
    return sorted((path, sha) for path, sha in entries if is_segment(path))


def iter_records_at(repo: git.Repo, rev: str | None) -> Iterator[dict[str, Any]]:
    """Every well-formed record of the log at ``rev`` (None: the staged index), in log
    order; lines that are not one are the schema gate's to report."""
    for _, sha in _segment_blobs(repo, rev):
        for raw in (read_blob(repo, sha) or b"").splitlines():
            try:
                yield shaped_record(raw)
            except RecordError:
                continue


def records_at(repo: git.Repo, rev: str | None) -> list[dict[str, Any]]:
    return list(iter_records_at(repo, rev))


def read_log(root: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The working tree's well-formed records in log order, and each other line named
    (``path:line: schema: message``)."""
    records: list[dict[str, Any]] = []
    problems: list[str] = []
    for path, lineno, raw in iter_raw_lines(root):
        try:
            records.append(shaped_record(raw))
        except RecordError as exc:
            problems.append(f"{RECORDS_DIR}/{path.name}:{lineno}: schema: {exc}")
    return records, problems


def read_records(root: Path) -> list[dict[str, Any]]:
    """Every well-formed record of the working tree's log, in log order."""
    return read_log(root)[0]
