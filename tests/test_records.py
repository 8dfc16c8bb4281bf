"""The record model: canonical JSON, content-addressed ids, errors that name the field."""

from __future__ import annotations

import math

import pytest
from drafts import experience, note

from convergent.errors import RecordError
from convergent.records import (
    Verdict,
    canonical_json,
    decode_line,
    encode,
    finalize,
    parse_line,
    record_id,
    validate_draft,
)


def test_canonical_json_sorts_keys_and_drops_whitespace() -> None:
    assert canonical_json({"b": 1, "a": [1, 2], "c": "é"}) == '{"a":[1,2],"b":1,"c":"é"}'


def test_finalize_fills_fields_and_id_matches_content() -> None:
    record = finalize(experience(), Verdict(True, "execution", "exit 0"))
    assert record["v"] == 1 and record["ts"].endswith("Z")
    assert record["verdict"] == {"verified": True, "verifier": "execution", "detail": "exit 0"}
    assert record["id"] == record_id(record)
    assert parse_line(encode(record)) == record


def test_id_changes_with_any_field() -> None:
    record = finalize(note(), None)
    changed = dict(record, claim="something else")
    assert record_id(changed) != record["id"]


@pytest.mark.parametrize(("patch", "field"), [
    ({"kind": "wish"}, "kind"),
    ({"kind": 3}, "kind"),
    ({"confidence": 1.5}, "confidence"),
    ({"confidence": math.nan}, "confidence"),
    ({"confidence": "high"}, "confidence"),
    ({"confidence": True}, "confidence"),
    ({"claim": ["not", "text"]}, "claim"),
    ({"claim": "two\nlines"}, "claim"),
    ({"source": {"emitter": "x", "model": "y", "origin": "dream"}}, "source.origin"),
    ({"source": {"emitter": "x", "model": "y"}}, "source.origin"),
    ({"links": "sha256:abc"}, "links"),
    ({"extra": 1}, "extra"),
    ({"evidence": {"type": "execution", "language": "python"}}, "evidence.tests"),
    ({"evidence": {"type": "grounding", "citations": []}}, "evidence.citations"),
    ({"evidence": {"type": "telepathy"}}, "evidence.type"),
])
def test_bad_drafts_name_the_field(patch: dict[str, object], field: str) -> None:
    draft = experience()
    draft.update(patch)
    with pytest.raises(RecordError) as info:
        validate_draft(draft)
    assert info.value.field == field


def test_missing_required_field_is_named() -> None:
    draft = experience()
    del draft["response"]
    with pytest.raises(RecordError, match="response: missing"):
        validate_draft(draft)


def test_decode_line_reports_json_utf8_and_size() -> None:
    with pytest.raises(RecordError, match="not JSON"):
        decode_line(b"{nope")
    with pytest.raises(RecordError, match="not UTF-8"):
        decode_line(b'{"claim": "\xff"}')
    with pytest.raises(RecordError, match="over the cap"):
        decode_line(b"x" * 200, max_bytes=100)


def test_parse_line_refuses_non_canonical_and_forged_ids() -> None:
    record = finalize(note(), None)
    spaced = canonical_json(record).replace(",", ", ").encode()
    with pytest.raises(RecordError, match="canonical"):
        parse_line(spaced)
    forged = dict(record, claim="edited after the fact")
    with pytest.raises(RecordError, match="id: does not match"):
        parse_line(canonical_json(forged).encode())


@pytest.mark.parametrize("ts", [
    "2026-01-01T00:00:00.000000Z", "2024-02-29T23:59:59.999999Z",  # the shape we write
    # what strptime takes besides: short fields, lower case, a digit that is not ASCII
    "2026-1-1T0:0:0.5Z", "2026-01-01t00:00:00.000000z", "\u0662026-01-01T00:00:00.000000Z",
])
def test_timestamps_strptime_takes_are_taken(ts: str) -> None:
    record = finalize(note(), None, ts)
    assert parse_line(encode(record)) == record


@pytest.mark.parametrize("ts", [
    "2023-02-29T00:00:00.000000Z", "2026-04-31T00:00:00.000000Z", "2026-13-01T00:00:00.000000Z",
    "2026-00-10T00:00:00.000000Z", "0000-01-01T00:00:00.000000Z", "2026-01-01T24:00:00.000000Z",
    "2026-01-01T00:60:00.000000Z", "2026-01-01T00:00:60.000000Z", "2026-01-01T00:00:00.000000",
    "2026-01-01T00:00:00.0000000Z", "2026-01-01 00:00:00Z", "2026-01-01T00:00:00.00000OZ",
])
def test_timestamps_that_are_no_real_time_are_refused(ts: str) -> None:
    # The fast path for the shape we write must refuse what strptime refuses: no such day,
    # hour, minute or second (60 included), year 0, too many digits.
    record = finalize(note(), None, ts)
    with pytest.raises(RecordError, match="ts: must be RFC 3339"):
        parse_line(encode(record))


@pytest.mark.parametrize("extra", [{}, {"a": 1}, {"zz": [1, {"id": "x"}]}, {"a": 1, "zz": 2}])
def test_canonical_form_is_checked_on_either_side_of_the_id(extra: dict[str, object]) -> None:
    # validate_record builds the id's body and the line from one encoding (the members
    # before "id" and those after it): a member doubled or spaced on either side of "id",
    # or an "id" inside a value, must still read as not canonical.
    record = finalize(dict(note(), meta=extra), None)
    line = canonical_json(record)
    assert parse_line(line.encode()) == record
    body = line[1:-1]
    for edited in (line.replace('"id":', '"id" :'), "{" + body + "," + body.split(",")[0] + "}",
                   line.replace(',"kind"', ', "kind"'), line.replace('"v":1}', '"v":1 }')):
        assert edited != line
        with pytest.raises(RecordError):
            parse_line(edited.encode())


def test_encode_refuses_oversized_records() -> None:
    record = finalize(experience(response="x" * 5000), Verdict(False, "execution"))
    with pytest.raises(RecordError, match="over the cap"):
        encode(record, max_bytes=1000)


def test_a_record_view_reads_fields_without_dict_digging() -> None:
    from drafts import experience

    from convergent.records import Record, Verdict, finalize, typed

    record = finalize(dict(experience(1), links=["sha256:" + "a" * 64]),
                      Verdict(True, "execution", "exit 0"))
    view = Record(record)
    assert (view.kind, view.id, view.ts) == ("experience", record["id"], record["ts"])
    assert view.evidence is record["evidence"] and view.verified is True
    assert view.links == record["links"] and view.raw is record
    odd = Record({"kind": "note", "evidence": "not an object", "links": "x",
                  "verdict": None})
    assert (odd.evidence, odd.links, odd.verified, odd.id) == ({}, [], False, "")
    assert [v.raw for v in typed([record, {"kind": "note"}], "experience")] == [record]
    # Only the JSON true is verified: a truthy look-alike of a hand-edited line is not.
    for look_alike in ("true", "false", 1, [True], {"verified": True}):
        assert Record({"verdict": {"verified": look_alike}}).verified is False
