"""The log's records as of a revision (or the staged index), read straight from Git."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import git

from convergent.gitops import read_blob
from convergent.layout import RECORDS_DIR, is_segment
from convergent.records import decode_line


def parsed_record(raw: bytes) -> dict[str, Any] | None:
    """The JSON object on a log line, or None when the line is not one."""
    try:
        value = decode_line(raw, max_bytes=1 << 62)
    except Exception:
        return None
    return value if isinstance(value, dict) else None


def _segment_blobs(repo: git.Repo, rev: str | None) -> list[tuple[str, str]]:
    if rev is None:
        out = repo.git.ls_files("-s", "--", RECORDS_DIR + "/")
        entries = [(row.split("\t", 1)[1], row.split()[1]) for row in out.splitlines()]
    else:
        out = repo.git.ls_tree("-r", rev, "--", RECORDS_DIR + "/")
        entries = [(row.split("\t", 1)[1], row.split()[2]) for row in out.splitlines()]
    return sorted((path, sha) for path, sha in entries if is_segment(path))


def iter_records_at(repo: git.Repo, rev: str | None) -> Iterator[dict[str, Any]]:
    """Every parseable record of the log at ``rev`` (None: the staged index), in log order."""
    for _, sha in _segment_blobs(repo, rev):
        for raw in (read_blob(repo, sha) or b"").splitlines():
            record = parsed_record(raw)
            if record is not None:
                yield record


def records_at(repo: git.Repo, rev: str | None) -> list[dict[str, Any]]:
    return list(iter_records_at(repo, rev))
