"""The secrets gate: credentials in records are refused, by path:line, never echoed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from convergent.config import default_config
from convergent.gates.base import GateContext, NewLine
from convergent.gates.secrets import check_secrets

SEGMENT = "data/convergence/records/seg-000003.jsonl"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"  # AWS's documented example key id


def experience(**fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "v": 1, "kind": "experience", "claim": "sums a list", "confidence": 0.9,
        "id": "sha256:" + "ab" * 32, "ts": "2026-01-01T00:00:00.000000Z",
        "links": ["sha256:" + "cd" * 32],
        "task": "Write total(xs) returning the sum of xs.",
        "response": "def total(xs):\n    return sum(xs)\n",
        "evidence": {"type": "execution", "language": "python",
                     "tests": "assert total([1, 2]) == 3\n", "entry_point": "total"},
        "source": {"emitter": "test", "model": "tiny", "origin": "self"},
        "verdict": {"verified": True, "verifier": "execution", "detail": "exit 0"},
    }
    record.update(fields)
    return record


def problems(*records: dict[str, Any] | None, first_line: int = 1) -> list[str]:
    lines = [NewLine(SEGMENT, first_line + i, b"", r) for i, r in enumerate(records)]
    ctx = GateContext(root=Path("."), config=default_config(), new_lines=lines)
    return [str(p) for p in check_secrets(ctx)]


def test_clean_record_passes() -> None:
    assert problems(experience(), experience(claim="a second one")) == []


def test_aws_key_is_refused_at_its_line() -> None:
    leaky = experience(response=f'import boto3\nKEY = "{AWS_KEY}"\nboto3.client("s3")\n')
    found = problems(experience(), leaky, None, first_line=41)
    assert found == [f"{SEGMENT}:42: secrets: response line 2: looks like a credential "
                     "(AWS Access Key); remove it from the record"]
    assert AWS_KEY not in found[0]


@pytest.mark.parametrize(("fields", "where", "kind"), [
    ({"claim": f"used {AWS_KEY} to list buckets"}, "claim line 1", "AWS Access Key"),
    ({"meta": {"notes": ["ok", 'password = "hunter2-but-longer"']}}, "meta.notes[1] line 1",
     "Secret Keyword"),
    ({"task": "token: ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"}, "task line 1",
     "GitHub Token"),
    ({"response": "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n"}, "response line 1",
     "Private Key"),
])
def test_credentials_anywhere_are_refused(fields: dict[str, Any], where: str, kind: str
                                          ) -> None:
    [problem] = problems(experience(**fields))
    assert problem.startswith(f"{SEGMENT}:1: secrets: {where}: ")
    assert f"({kind})" in problem


def test_hashes_and_ids_are_not_credentials() -> None:
    commit = "ba7816bf8f01cfea414140de5dae2223b00361a3"
    record = experience(evidence={"type": "operator", "approved_by": "Ada <ada@example.com>",
                                  "commit": commit},
                        response="import uuid\nID = '123e4567-e89b-12d3-a456-426614174000'\n")
    assert problems(record) == []


def test_unparsed_lines_are_left_to_the_schema_gate() -> None:
    assert problems(None) == []
