"""The Convergence Record, schema v1: validation, canonical JSON, content-addressed ids.

A *draft* is what a host emits; :func:`finalize` fills in ``v``, ``ts``, ``verdict``
and ``id``. :func:`parse_line` reads one committed log line back and checks it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from array import array
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate
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


@dataclass(frozen=True)
class Record:
    """A read-only view of one record as the log holds it (a JSON object), with typed
    accessors: readers ask ``record.kind`` or ``record.evidence.get("name")`` instead of
    digging in the dict. ``raw`` is the record itself, unchanged."""

    raw: Mapping[str, Any]

    @property
    def kind(self) -> str:
        return str(self.raw.get("kind"))

    @property
    def id(self) -> str:
        """The id ("" when a record has none or one that is not a string: never its
        spelling, so a null id is not the proposal an approval of "None" names)."""
        value = self.raw.get("id")
        return value if isinstance(value, str) else ""

    @property
    def ts(self) -> str:
        value = self.raw.get("ts")
        return value if isinstance(value, str) else ""

    @property
    def claim(self) -> str:
        return str(self.raw.get("claim", ""))

    @property
    def evidence(self) -> Mapping[str, Any]:
        """The evidence object ({} when a record has none or a malformed one)."""
        evidence = self.raw.get("evidence")
        return evidence if isinstance(evidence, Mapping) else {}

    @property
    def links(self) -> list[str]:
        links = self.raw.get("links")
        return [str(link) for link in links] if isinstance(links, list) else []

    @property
    def verdict(self) -> Mapping[str, Any]:
        """The verdict object ({} when a record has none or a malformed one)."""
        verdict = self.raw.get("verdict")
        return verdict if isinstance(verdict, Mapping) else {}

    @property
    def verified(self) -> bool:
        """Whether the record's verdict says verified: the JSON ``true`` itself, never
        another truthy value ("false", 1, a list) a hand-edited line may hold."""
        return self.verdict.get("verified") is True


def typed(records: Iterable[Mapping[str, Any]], kind: str | None = None) -> list[Record]:
    """The records as :class:`Record` views, in order; only those of ``kind`` if given."""
    views = [Record(record) for record in records]
    return views if kind is None else [view for view in views if view.kind == kind]


# One encoder for every canonical encoding (json.dumps would build one per call).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                              allow_nan=False)


def addressed(records: Iterable[Mapping[str, Any]], *, kind: str | None = None,
              ids: Container[str] | None = None) -> dict[str, Mapping[str, Any]]:
    """Id -> the record that id names: the first whose content hashes to it
    (:func:`record_id`), in order. A later line reusing an id with other content, or a line
    whose id is not its own, names nothing: what was approved or trained is that record.

    Only records of ``kind`` and with an id in ``ids`` are hashed, when given: the answer
    for those is the same (the kind is part of the hashed content), at the cost of the few
    a caller looks up rather than the whole history."""
    out: dict[str, Mapping[str, Any]] = {}
    for record in records:
        rid = record.get("id")
        if (isinstance(rid, str) and rid not in out
                and (kind is None or record.get("kind") == kind)
                and (ids is None or rid in ids) and record_id(record) == rid):
            out[rid] = record
    return out


def canonical_json(obj: Any) -> str:
    """Sorted keys, no insignificant whitespace, UTF-8 text, NaN refused."""
    return _CANONICAL.encode(obj)


def record_id(record: Mapping[str, Any]) -> str:
    """``sha256:`` + hex of the canonical JSON of the record without ``id``."""
    return _id_of(canonical_json({k: v for k, v in record.items() if k != "id"}))


def _id_of(body: str) -> str:
    return "sha256:" + hashlib.sha256(body.encode("utf-8")).hexdigest()


def _canonical_with_id(record: Mapping[str, Any]) -> tuple[str, str]:
    """(canonical JSON of the record without ``id``, canonical JSON of the record), at the
    cost of one encoding: sorted keys put ``id`` between the keys before and after it."""
    head, tail = _halves(record)
    return _joined(head, tail), _joined(head, tail, '"id":' + canonical_json(record["id"]))


def _halves(record: Mapping[str, Any]) -> tuple[str, str]:
    """The canonical JSON of the members sorting before ``id`` ("{...", no closing brace)
    and of those after it ("...}", no opening brace)."""
    head = canonical_json({k: v for k, v in record.items() if k < "id"})[:-1]
    tail = canonical_json({k: v for k, v in record.items() if k > "id"})[1:]
    return head, tail


def _joined(head: str, tail: str, member: str = "") -> str:
    """The object of :func:`_halves`' two parts, with ``member`` between them if given."""
    parts = [part for part in (head[1:], member, tail[:-1]) if part]
    return "{" + ",".join(parts) + "}"


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
    _require(math.isfinite(value), "confidence", NOT_FINITE)
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
        # What vouches (convergent.vouch): the operator's commit, their signature, or both.
        _require("commit" in value or "signature" in value, "evidence.commit",
                 "missing (or give evidence.signature)")
        for key in ("commit", "signature"):
            if key in value:
                _require(isinstance(value[key], str), f"evidence.{key}", "must be a string")


def validate_draft(draft: Any, *, decoded: bool = False) -> None:
    """Check a draft's fields and types; raise :class:`RecordError` naming the field.
    ``decoded``: the draft is what :func:`decode_line` returned, whose hooks refused, while
    parsing, all that :func:`check_value` refuses (its walk is not run again)."""
    _require(isinstance(draft, dict), "", f"a record must be a JSON object, got {_type(draft)}")
    if not decoded:
        check_value(draft)
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


def check_filled_strings(record: Mapping[str, Any]) -> None:
    """``id`` and ``ts``, where a record has them, are strings: readers of history match
    and order records by them (a null or a number would be spelt "None" or "5", a list is
    unhashable). :class:`RecordError` naming the field otherwise."""
    for field in ("id", "ts"):
        _check_str(record, field, required=False)


# The shape ``utc_now`` writes, checked without strptime; any other text is left to
# strptime (which also takes one-digit fields, a lower-case t or z ...).
_TS = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
                 r"\.([0-9]{6})Z")


def _check_ts(ts: str) -> None:
    shape = _TS.fullmatch(ts)
    try:
        if shape is None:
            datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ")
        else:  # what strptime would accept of these digits: a real date and time
            year, month, day, hour, minute, second, micro = map(int, shape.groups())
            datetime(year, month, day, hour, minute, second, micro)
    except ValueError:
        raise RecordError("ts", "must be RFC 3339 UTC like 2026-01-01T00:00:00.000000Z") from None


def validate_record(record: Any, line: bytes | None = None, *, decoded: bool = False) -> None:
    """A full record: a valid draft plus v, ts, id (matching content) and, for experiences,
    a verdict; with ``line`` (without its newline), also that the line is the record's
    canonical form. ``decoded``: see :func:`validate_draft`."""
    validate_draft(record, decoded=decoded)
    _require(record.get("v") == SCHEMA_VERSION, "v", f"must be {SCHEMA_VERSION}")
    _check_str(record, "ts")
    _check_ts(record["ts"])
    _check_str(record, "id")
    if record["kind"] == "experience" or "verdict" in record:
        verdict = record.get("verdict")
        _require(isinstance(verdict, dict), "verdict", "must be an object")
        _require(isinstance(verdict.get("verified"), bool), "verdict.verified", "must be a bool")
        _require(isinstance(verdict.get("verifier"), str), "verdict.verifier", "must be a string")
        _require(isinstance(verdict.get("detail", ""), str), "verdict.detail", "must be a string")
    body, full = _canonical_with_id(record)
    _require(record["id"] == _id_of(body), "id", "does not match the record's content")
    if line is not None and full.encode("utf-8") != line:
        raise RecordError("", "line is not in canonical form (sorted keys, no extra whitespace)")


def finalize(draft: Mapping[str, Any], verdict: Verdict | None, ts: str | None = None
             ) -> dict[str, Any]:
    """Fill v, ts, verdict and id into a validated draft; returns the full record."""
    return finalize_line(draft, verdict, ts)[0]


def finalize_line(draft: Mapping[str, Any], verdict: Verdict | None, ts: str | None = None,
                  max_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> tuple[dict[str, Any], bytes]:
    """:func:`finalize` and the record's log line (:func:`encode`), from one encoding: the
    id is the hash of the canonical JSON without it, and the line is that JSON with the id
    in its sorted place."""
    record = {k: v for k, v in draft.items() if k not in FILLED_FIELDS}
    record.setdefault("links", [])
    record["v"] = SCHEMA_VERSION
    record["ts"] = ts or utc_now()
    if verdict is not None:
        record["verdict"] = verdict.as_dict()
    try:
        head, tail = _halves(record)
    except ValueError as exc:  # NaN / Infinity
        raise RecordError("", f"not encodable as JSON: {exc}") from None
    rid = record["id"] = _id_of(_joined(head, tail))
    return record, _line(_joined(head, tail, f'"id":"{rid}"'), max_bytes)


def encode(record: Mapping[str, Any], max_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> bytes:
    """One log line (with its newline), refusing records over the size cap."""
    try:
        text = canonical_json(record)
    except ValueError as exc:  # NaN / Infinity
        raise RecordError("", f"not encodable as JSON: {exc}") from None
    return _line(text, max_bytes)


def _line(text: str, max_bytes: int) -> bytes:
    data = (text + "\n").encode("utf-8")
    if len(data) > max_bytes:
        raise RecordError("", f"record is {len(data)} bytes, over the cap of {max_bytes}")
    return data


def decode_line(raw: bytes, max_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> dict[str, Any]:
    """Parse one raw line into a JSON object within the bounds (see :func:`check_value`).

    The one reader of log and input lines: every error is a :class:`RecordError` naming the
    field (size, UTF-8, JSON syntax, not an object, nesting, integers, NaN, lone surrogates,
    duplicate keys), never another exception.
    """
    if len(raw) > max_bytes:
        raise RecordError("", f"line is {len(raw)} bytes, over the cap of {max_bytes}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError("", f"not UTF-8 (byte {exc.start})") from None
    # Too deep for json.loads's recursion (or for ours): refused before parsing.
    if raw.count(b"[") + raw.count(b"{") > MAX_NESTING and _max_depth(raw) > MAX_NESTING:
        _raise(_nesting_problem(text))
    try:
        value = _STRICT.decode(text)
    except _Refused:
        # A hook saw a duplicate key or a number out of bounds: parse again, keeping
        # markers where they were, to name the field.
        _raise(_value_problem(_LOCATING.decode(text), "", 0)
               or ("", "refused by the JSON bounds"))
    except json.JSONDecodeError as exc:
        raise RecordError("", f"not JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:  # unreachable after the nesting check; refuse, never crash
        raise RecordError("", f"nested deeper than {MAX_NESTING} levels") from None
    if type(value) is not dict:
        raise RecordError("", f"a record must be a JSON object, got {_json_type(value)}")
    if _SURROGATE_ESCAPE.search(raw):  # only an escape can spell a lone surrogate in UTF-8
        _raise(_value_problem(value, "", 0))
    return value


def parse_line(raw: bytes, max_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> dict[str, Any]:
    """A committed log line: valid JSON, valid record, canonical form."""
    line = raw.rstrip(b"\n")
    record = decode_line(line, max_bytes)
    validate_record(record, line, decoded=True)
    return record


# --- bounds on JSON values -------------------------------------------------------------------
#
# A record is plain, bounded JSON, so that every reader (the gates, the index, status) can
# walk, hash, encode and store it without a RecursionError, an OverflowError or a
# UnicodeEncodeError. Drafts from the Python API are checked by :func:`check_value`; lines
# by :func:`decode_line`, whose hooks refuse the same things while parsing.

MAX_NESTING = 64  # arrays and objects inside one another
MAX_INT = 2**63 - 1  # |integer|: SQLite's INTEGER, far beyond any count a record holds
NOT_FINITE = "must be finite (NaN and Infinity are refused)"
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# JSON strings and the punctuation that nests: enough to track where a line nests too deep.
# An unterminated string runs to the end of the line (its closing quote is optional): were
# it required, each quote inside it would start a new scan to the end, quadratic in the
# length of a line full of escaped quotes. Such a line is not JSON; the parser says so.
# Possessive (no backtracking state kept per escape): linear, and in small steps.
_NESTING_TOKEN = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"?|[\[\]{}:,]')
_STRING_BYTES = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"?')
_NOT_A_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_BRACKET_STEP = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def check_value(value: Any) -> None:
    """Refuse, naming the field, what is not plain bounded JSON: nesting over
    :data:`MAX_NESTING`, integers beyond :data:`MAX_INT`, NaN and Infinity, lone
    surrogates, keys that are not strings, values that are not JSON (sets, objects ...)."""
    _raise(_value_problem(value, "", 0))


def _raise(problem: tuple[str, str] | None) -> None:
    if problem is not None:
        where, message = problem
        if len(where) > 120:  # 64 levels of "[0]": enough to find it
            where = where[:117] + "..."
        raise RecordError(where, message)


def _inner(where: str, key: str) -> str:
    if not key.isascii() and _SURROGATE.search(key):  # printable in the error
        key = key.encode("utf-8", "backslashreplace").decode("utf-8")
    return f"{where}.{key}" if where else key


def _int_problem(value: int) -> str | None:
    if -MAX_INT <= value <= MAX_INT:
        return None
    return f"integer out of range (at most {len(str(MAX_INT))} digits, |n| <= 2**63 - 1)"


def _value_problem(value: Any, where: str, depth: int) -> tuple[str, str] | None:
    """The first (field, message) that makes ``value`` not plain bounded JSON, or None."""
    kind = type(value)
    if kind is str:  # the common leaves first, by exact type: the walk runs on every emit
        return (where, "contains a lone surrogate (not Unicode text)") if (
            not value.isascii() and _SURROGATE.search(value)) else None
    if kind is float or kind is bool or value is None:
        return None if kind is not float or math.isfinite(value) else (where, NOT_FINITE)
    if kind is dict:
        if depth >= MAX_NESTING:
            return where, f"nested deeper than {MAX_NESTING} levels"
        for key, item in value.items():
            if type(key) is not str or (not key.isascii() and _SURROGATE.search(key)):
                break  # the general path below names it
            found = _value_problem(item, f"{where}.{key}" if where else key, depth + 1)
            if found is not None:
                return found
        else:
            return None
    if isinstance(value, str):
        return (where, "contains a lone surrogate (not Unicode text)") if (
            not value.isascii() and _SURROGATE.search(value)) else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        message = _int_problem(value)
        return None if message is None else (where, message)
    if isinstance(value, float):
        return None if math.isfinite(value) else (where, NOT_FINITE)
    if isinstance(value, _Bad):
        return where, value.message
    if isinstance(value, dict | list | tuple) and depth >= MAX_NESTING:
        return where, f"nested deeper than {MAX_NESTING} levels"
    if isinstance(value, dict):
        duplicate = getattr(value, "duplicate", None)
        if duplicate is not None:
            return _inner(where, duplicate), "duplicate key"
        for key, item in value.items():
            if not isinstance(key, str):
                return where, f"has a key that is not a string ({_type(key)})"
            inner = _inner(where, key)
            if not key.isascii() and _SURROGATE.search(key):
                return inner, "key contains a lone surrogate (not Unicode text)"
            found = _value_problem(item, inner, depth + 1)
            if found is not None:
                return found
        return None
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = _value_problem(item, f"{where}[{i}]", depth + 1)
            if found is not None:
                return found
        return None
    return where, f"is not a JSON value ({_type(value)})"


def _max_depth(raw: bytes) -> int:
    """How deep the brackets outside strings nest, at C speed (no Python step per byte):
    strings are cut out, the brackets kept as +1/-1 and summed as they come."""
    brackets = _STRING_BYTES.sub(b"", raw).translate(None, _NOT_A_BRACKET)
    return max(accumulate(array("b", brackets.translate(_BRACKET_STEP))), default=0)


def _nesting_problem(text: str) -> tuple[str, str] | None:
    """Where ``text`` nests arrays/objects deeper than :data:`MAX_NESTING`, found by its
    tokens (json.loads would raise RecursionError on a deep enough line)."""
    # One frame per open container: [is_object, current key or index, last string seen].
    stack: list[list[Any]] = []
    for match in _NESTING_TOKEN.finditer(text):
        token = match.group()
        char = token[0]
        if char in "[{":
            if len(stack) >= MAX_NESTING:
                where = ""
                for is_object, key, _ in stack:
                    where = _inner(where, str(key)) if is_object else f"{where}[{key}]"
                return where, f"nested deeper than {MAX_NESTING} levels"
            stack.append([char == "{", None if char == "{" else 0, None])
        elif char in "]}":
            if stack:
                stack.pop()
        elif not stack:
            continue
        elif char == ":":
            stack[-1][1] = stack[-1][2]
        elif char == ",":
            if not stack[-1][0]:
                stack[-1][1] += 1
        else:
            stack[-1][2] = token[1:-1]
    return None


class _Refused(Exception):
    """Raised by the strict decoder's hooks; :func:`decode_line` then names the field."""


class _Bad:
    """What the locating decoder leaves where a value is out of bounds."""

    def __init__(self, message: str) -> None:
        self.message = message


class _DuplicateKeys(dict[str, Any]):
    duplicate: str


def _strict_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _Refused
    return obj


def _strict_int(text: str) -> int:
    # Checking the length first keeps int() from ever meeting 4,300+ digits.
    if len(text) > 20 or _int_problem(value := int(text)) is not None:
        raise _Refused
    return value


def _strict_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999
        raise _Refused
    return value


def _refuse_constant(text: str) -> Any:
    raise _Refused


def _locating_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    marked = _DuplicateKeys(obj)
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            marked.duplicate = key
            break
        seen.add(key)
    return marked


def _locating_int(text: str) -> Any:
    if len(text.lstrip("-")) > len(str(MAX_INT)):
        return _Bad(f"integer of {len(text.lstrip('-'))} digits, out of range "
                    "(|n| <= 2**63 - 1)")
    value = int(text)
    message = _int_problem(value)
    return value if message is None else _Bad(message)


def _locating_float(text: str) -> Any:
    value = float(text)
    return value if math.isfinite(value) else _Bad(NOT_FINITE)


_STRICT = json.JSONDecoder(object_pairs_hook=_strict_object, parse_int=_strict_int,
                           parse_float=_strict_float, parse_constant=_refuse_constant)
_LOCATING = json.JSONDecoder(object_pairs_hook=_locating_object, parse_int=_locating_int,
                             parse_float=_locating_float,
                             parse_constant=lambda text: _Bad(NOT_FINITE))


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", int: "a number", float: "a number",
             bool: "true or false"}
    return names.get(type(value), "null")
