"""The Convergence Record, schema v1: validation, canonical JSON, content-addressed ids.

A *draft* is what a host emits; :func:`finalize` fills in ``v``, ``ts``, ``verdict``
and ``id``. :func:`parse_line` reads one committed log line back and checks it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from convergent.errors import RecordError

SCHEMA_VERSION = 1
KINDS = (
    "experience",
    "gap",
    "lever",
    "proposal",
    "approval",
    "cycle",
    "promotion",
    "halt",
    "revert",
)
ORIGINS = ("self", "external", "operator")
EVIDENCE_TYPES = ("execution", "grounding", "operator")
DEFAULT_MAX_RECORD_BYTES = 1024 * 1024

# Fields a draft may carry; v/id/ts/verdict are the plugin's to fill.
REQUIRED_DRAFT_FIELDS = ("kind", "claim", "evidence", "confidence", "source")
OPTIONAL_FIELDS = ("links", "task", "response", "meta")
FILLED_FIELDS = ("v", "id", "ts", "verdict")
ALL_FIELDS = frozenset(REQUIRED_DRAFT_FIELDS + OPTIONAL_FIELDS + FILLED_FIELDS)


@dataclass(frozen=True)
class Verdict:
    """The outcome of verifying an experience."""

    verified: bool
    verifier: str
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"verified": self.verified, "verifier": self.verifier, "detail": self.detail}


def canonical_json(obj: Any) -> str:
    """Sorted keys, no insignificant whitespace, UTF-8 text, NaN refused."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def record_id(record: Mapping[str, Any]) -> str:
    """``sha256:`` + hex of the canonical JSON of the record without ``id``."""
    body = {k: v for k, v in record.items() if k != "id"}
    return "sha256:" + hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def utc_now() -> str:
    """RFC 3339 UTC timestamp with microseconds."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _require(cond: bool, field: str, message: str) -> None:
    if not cond:
        raise RecordError(field, message)


def _check_str(obj: Mapping[str, Any], field: str, *, required: bool = True) -> None:
    if field not in obj:
        _require(not required, field, "missing")
        return
    _require(isinstance(obj[field], str), field, f"must be a string, got {_type(obj[field])}")


def _type(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _check_confidence(value: Any) -> None:
    ok_type = isinstance(value, int | float) and not isinstance(value, bool)
    _require(ok_type, "confidence", f"must be a number, got {_type(value)}")
    _require(math.isfinite(value), "confidence", "must be finite (NaN and Infinity are refused)")
    _require(0 <= value <= 1, "confidence", f"must be within 0..1, got {value}")


def _check_source(value: Any) -> None:
    _require(isinstance(value, dict), "source", f"must be an object, got {_type(value)}")
    for key in ("emitter", "model", "origin"):
        _require(key in value, f"source.{key}", "missing")
        _require(isinstance(value[key], str), f"source.{key}", "must be a string")
    _require(value["origin"] in ORIGINS, "source.origin",
             f"must be one of {', '.join(ORIGINS)}, got {value['origin']!r}")


def _check_evidence(kind: str, value: Any) -> None:
    _require(isinstance(value, dict), "evidence", f"must be an object, got {_type(value)}")
    if kind != "experience":
        return
    etype = value.get("type")
    _require(etype in EVIDENCE_TYPES, "evidence.type",
             f"must be one of {', '.join(EVIDENCE_TYPES)}, got {etype!r}")
    if etype == "execution":
        _require(value.get("language") == "python", "evidence.language", "must be 'python'")
        _require(isinstance(value.get("tests"), str), "evidence.tests", "must be a string")
        if "entry_point" in value:
            ep = value["entry_point"]
            _require(isinstance(ep, str) and ep.isidentifier(), "evidence.entry_point",
                     "must be a Python identifier")
    elif etype == "grounding":
        cites = value.get("citations")
        _require(isinstance(cites, list) and len(cites) > 0, "evidence.citations",
                 "must be a non-empty list")
        for i, cite in enumerate(cites):
            where = f"evidence.citations[{i}]"
            _require(isinstance(cite, dict), where, "must be an object")
            src = cite.get("source")
            _require(isinstance(src, str) and src.startswith("sha256:"), f"{where}.source",
                     "must be 'sha256:<hex>'")
            _require(isinstance(cite.get("quote"), str) and cite["quote"].strip() != "",
                     f"{where}.quote", "must be a non-empty string")
    else:
        _require(isinstance(value.get("approved_by"), str), "evidence.approved_by",
                 "must be a string")
        _require(isinstance(value.get("commit"), str), "evidence.commit", "must be a string")


def validate_draft(draft: Any) -> None:
    """Check a draft's fields and types; raise :class:`RecordError` naming the field."""
    _require(isinstance(draft, dict), "", f"a record must be a JSON object, got {_type(draft)}")
    unknown = sorted(set(draft) - ALL_FIELDS)
    _require(not unknown, unknown[0] if unknown else "", "unknown field")
    for field in REQUIRED_DRAFT_FIELDS:
        _require(field in draft, field, "missing")
    kind = draft["kind"]
    _require(isinstance(kind, str), "kind", f"must be a string, got {_type(kind)}")
    _require(kind in KINDS, "kind", f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    _check_str(draft, "claim")
    _require("\n" not in draft["claim"], "claim", "must be one line")
    _check_confidence(draft["confidence"])
    _check_source(draft["source"])
    _check_evidence(kind, draft["evidence"])
    links = draft.get("links", [])
    _require(isinstance(links, list) and all(isinstance(x, str) for x in links), "links",
             "must be a list of record ids")
    _check_str(draft, "task", required=kind == "experience")
    _check_str(draft, "response", required=kind == "experience")
    if "meta" in draft:
        _require(isinstance(draft["meta"], dict), "meta", "must be an object")


def validate_record(record: Any) -> None:
    """A full record: a valid draft plus v, ts, id (matching content) and, for experiences,
    a verdict."""
    validate_draft(record)
    _require(record.get("v") == SCHEMA_VERSION, "v", f"must be {SCHEMA_VERSION}")
    _check_str(record, "ts")
    try:
        datetime.strptime(record["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        raise RecordError("ts", "must be RFC 3339 UTC like 2026-01-01T00:00:00.000000Z") from None
    _check_str(record, "id")
    if record["kind"] == "experience" or "verdict" in record:
        verdict = record.get("verdict")
        _require(isinstance(verdict, dict), "verdict", "must be an object")
        _require(isinstance(verdict.get("verified"), bool), "verdict.verified", "must be a bool")
        _require(isinstance(verdict.get("verifier"), str), "verdict.verifier", "must be a string")
        _require(isinstance(verdict.get("detail", ""), str), "verdict.detail", "must be a string")
    _require(record["id"] == record_id(record), "id", "does not match the record's content")


def finalize(draft: Mapping[str, Any], verdict: Verdict | None, ts: str | None = None
             ) -> dict[str, Any]:
    """Fill v, ts, verdict and id into a validated draft; returns the full record."""
    record = {k: v for k, v in draft.items() if k not in FILLED_FIELDS}
    record.setdefault("links", [])
    record["v"] = SCHEMA_VERSION
    record["ts"] = ts or utc_now()
    if verdict is not None:
        record["verdict"] = verdict.as_dict()
    record["id"] = record_id(record)
    return record


def encode(record: Mapping[str, Any], max_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> bytes:
    """One log line (with its newline), refusing records over the size cap."""
    try:
        data = (canonical_json(record) + "\n").encode("utf-8")
    except ValueError as exc:  # NaN / Infinity
        raise RecordError("", f"not encodable as JSON: {exc}") from None
    if len(data) > max_bytes:
        raise RecordError("", f"record is {len(data)} bytes, over the cap of {max_bytes}")
    return data


def decode_line(raw: bytes, max_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> Any:
    """Parse one raw line into a JSON value; errors name what is wrong."""
    if len(raw) > max_bytes:
        raise RecordError("", f"line is {len(raw)} bytes, over the cap of {max_bytes}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError("", f"not UTF-8 (byte {exc.start})") from None
    try:
        # NaN/Infinity parse as floats so the field check names the field.
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RecordError("", f"not JSON: {exc.msg} at column {exc.colno}") from None


def parse_line(raw: bytes, max_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> dict[str, Any]:
    """A committed log line: valid JSON, valid record, canonical form."""
    record = decode_line(raw.rstrip(b"\n"), max_bytes)
    validate_record(record)
    if canonical_json(record).encode("utf-8") != raw.rstrip(b"\n"):
        raise RecordError("", "line is not in canonical form (sorted keys, no extra whitespace)")
    return record
