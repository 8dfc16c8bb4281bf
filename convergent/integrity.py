"""Whole-log integrity (``convergent verify``): every line parses, ids match, ids unique."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from convergent.config import load_config
from convergent.errors import RecordError
from convergent.layout import RECORDS_DIR
from convergent.log import iter_raw_lines, segment_paths
from convergent.records import parse_line


@dataclass
class IntegrityReport:
    lines: int = 0
    segments: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_log(root: Path) -> IntegrityReport:
    max_bytes = int(load_config(root)["log"]["record_max_bytes"])
    report = IntegrityReport(segments=len(segment_paths(root)))
    seen: dict[str, str] = {}
    for path, lineno, raw in iter_raw_lines(root):
        report.lines += 1
        where = f"{RECORDS_DIR}/{path.name}:{lineno}"
        try:
            record = parse_line(raw, max_bytes)
        except RecordError as exc:
            report.problems.append(f"{where}: {exc}")
            continue
        if record["id"] in seen:
            report.problems.append(f"{where}: duplicate id {record['id']} "
                                   f"(first at {seen[record['id']]})")
        else:
            seen[record["id"]] = where
    for path in segment_paths(root):
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            report.problems.append(f"{RECORDS_DIR}/{path.name}: torn last line "
                                   "(repaired on the next append)")
    return report
