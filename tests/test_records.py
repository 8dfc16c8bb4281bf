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
