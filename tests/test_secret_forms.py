"""Secrets where code puts them: every form of the corpus in ``tests/adversarial/secrets/``
is refused by the secrets gate (naming the field and the kind, never the secret), in any
text field of a record, at emit and once committed; every placeholder passes."""

from __future__ import annotations

import json
import random
import re
import string
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from drafts import experience, note

from convergent.cli import cli
from convergent.config import default_config
from convergent.errors import RecordError
from convergent.gates.base import GateContext, NewLine
from convergent.gates.secret_detectors import DETECTORS, find_secrets, is_placeholder
from convergent.gates.secrets import check_secrets
from convergent.layout import RECORDS_DIR
from convergent.recorder import Recorder
from convergent.records import Verdict, canonical_json, finalize

CORPUS = Path(__file__).parent / "adversarial" / "secrets"
CREDENTIALS: list[dict[str, Any]] = json.loads((CORPUS / "credentials.json").read_text())[
    "cases"]
PLACEHOLDERS: list[str] = json.loads((CORPUS / "placeholders.json").read_text())["cases"]
SEGMENT = "data/convergence/records/seg-000001.jsonl"


def text_of(case: dict[str, Any]) -> str:
    return "".join(case["text"])


def place(draft: dict[str, Any], field: str, text: str) -> dict[str, Any]:
    """``draft`` with ``text`` at ``field`` (``a.b``, ``a.b[1]`` or ``meta (a key)``)."""
    if field.endswith(" (a key)"):
        draft[field.removesuffix(" (a key)")] = {text: 1}
        return draft
    *parents, last = field.split(".")
    here = draft
    for name in parents:
        here = here.setdefault(name, {})
    match = re.fullmatch(r"(\w+)\[(\d+)\]", last)
    if match:
        here[match.group(1)] = ["fine"] * int(match.group(2)) + [text]
    else:
        here[last] = text
    return draft


def problems(*records: dict[str, Any]) -> list[str]:
    lines = [NewLine(SEGMENT, i, b"", r) for i, r in enumerate(records, 1)]
    ctx = GateContext(root=Path("."), config=default_config(), new_lines=lines)
    return [str(p) for p in check_secrets(ctx)]


def test_the_corpus_covers_every_form_the_issue_names() -> None:
    forms = " ".join(c["form"] for c in CREDENTIALS).lower()
    for words in ("keyword argument", "positional", "header", "environ", "getenv", "postgres",
                  "redis", "mongodb", "amqp", "https url", "github classic", "github oauth",
                  "fine-grained", "gitlab", "slack bot", "slack user", "slack app",
                  "slack webhook", "stripe live", "stripe restricted", "google", "openai",
                  "anthropic", "aws access key", "aws temporary", "aws secret", "jwt",
                  "private key"):
        assert words in forms, words
    kinds = {c["kind"] for c in CREDENTIALS}
    assert {d.kind for d in DETECTORS} <= kinds  # every detector of ours is attacked


@pytest.mark.parametrize("case", CREDENTIALS, ids=[c["form"] for c in CREDENTIALS])
def test_each_credential_form_is_refused_where_it_is(case: dict[str, Any]) -> None:
    text = text_of(case)
    field = case["field"]
    record = place(experience(1), field, text.replace("\n", " ") if field == "claim" else text)
    found = problems(record)
    assert found, f"{case['form']}: not found"
    assert all(p.startswith(f"{SEGMENT}:1: secrets: {field}") for p in found), found
    assert any(f"({case['kind']})" in p for p in found), found
    secret = max(case["text"], key=len)
    assert not any(secret in p for p in found)  # named, never echoed


@pytest.mark.parametrize("text", PLACEHOLDERS)
def test_placeholders_are_not_credentials(text: str) -> None:
    record = experience(1, task=text, response=text, meta={"notes": [text], text: "k"})
    assert problems(record) == []


def test_an_ssh_vouch_signature_is_not_a_credential() -> None:
    signature = ("-----BEGIN SSH SIGNATURE-----\n"
                 "U1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAgrm/Sg5/pfQLduMPNv4CQGwudZ1\n"
                 "xsYE5E+6tqD1Qf4Y8AAAAQY29udmVyZ2VudC12b3VjaAAAAAAAAAAGc2hhNTEyAAAAUwAA\n"
                 "-----END SSH SIGNATURE-----\n")
    record = experience(1, evidence={"type": "operator", "approved_by": "Ada <ada@x.org>",
                                     "signature": signature})
    assert problems(record) == []


@pytest.mark.parametrize("value", ["YOUR_API_KEY", "xxx", "<token>", "${VAR}", "{{ var }}",
                                   "sk-xxxxxxxxxxxxxxxx", "********", "changeme", "%(pw)s"])
def test_is_placeholder(value: str) -> None:
    assert is_placeholder(value)


@pytest.mark.parametrize("value", ["Zq8vT3kLw9pX2mRn", "hunter2-but-longer",
                                   "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG"])
def test_real_looking_values_are_not_placeholders(value: str) -> None:
    assert not is_placeholder(value)


def test_the_needle_prefilter_finds_what_every_detector_finds() -> None:
    rng = random.Random(10)
    credentials = [text_of(c) for c in CREDENTIALS]
    lines = {part for text in credentials + PLACEHOLDERS for part in text.splitlines()}
    lines |= {f"x = {line} # tail" for line in list(lines)}
    # Random lines around the needles, with the case-folding characters that trip naive
    # lower-casing (ſ folds to s, K to k, İ lowers to two characters).
    needles = sorted({n for d in DETECTORS for n in d.needles})
    alphabet = string.printable[:94] + " ſKİıñ"
    for _ in range(3000):
        parts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
                 for _ in range(3)]
        needle = rng.choice(needles)
        needle = needle.upper() if rng.random() < 0.3 else needle
        lines.add(parts[0] + needle + parts[1] + rng.choice(["=", ": ", "(", "://"])
                  + rng.choice(["'", '"', ""]) + parts[2])
    expected = find_secrets(lines, prefilter=False)
    assert {line for text in credentials for line in text.splitlines()} & set(expected)
    assert find_secrets(lines) == expected
    ascii_only = {line for line in lines if line.isascii()}  # the lowered fast path
    assert find_secrets(ascii_only) == {k: v for k, v in expected.items() if k in ascii_only}


def test_emit_refuses_a_credential_in_any_record_and_keeps_the_others(records_repo: Path
                                                                     ) -> None:
    openai = text_of(next(c for c in CREDENTIALS if c["kind"] == "OpenAI API Key"))
    url = text_of(next(c for c in CREDENTIALS if c["kind"] == "Connection URL Password"))
    leaky_gap = dict(note(1), meta={"how": url})
    lines = [canonical_json(note(0)), canonical_json(experience(2, response=openai)),
             canonical_json(leaky_gap), canonical_json(note(3))]
    with Recorder(records_repo, verify=False) as recorder:
        outcomes = recorder.emit_lines([line.encode() for line in lines], source="in")
        with pytest.raises(RecordError, match="secrets: .*Environment Default"):
            recorder.emit(experience(4, task='k = os.getenv("X_TOKEN", "d3v-T0ken-9f8e7d")'))
    errors = [str(o.error) for o in outcomes if o.error is not None]
    assert errors[0].startswith("in:2: secrets: response line 1: looks like a credential "
                                "(OpenAI API Key)")
    assert errors[1].startswith("in:3: secrets: meta.how line 1:")
    assert len(errors) == 2
    assert [o.record is not None for o in outcomes] == [True, False, False, True]


def test_a_committed_credential_is_refused_by_check(records_repo: Path) -> None:
    case = next(c for c in CREDENTIALS if c["kind"] == "Authorization Header")
    record = finalize(experience(5, response=text_of(case)), Verdict(False, "execution", "x"))
    with (records_repo / RECORDS_DIR / "seg-000001.jsonl").open("a") as fh:
        fh.write(canonical_json(record) + "\n")
    subprocess.run(["git", "add", RECORDS_DIR], cwd=records_repo, check=True)
    subprocess.run(["git", "commit", "-q", "--no-verify", "-m", "leak"], cwd=records_repo,
                   check=True)
    result = CliRunner().invoke(cli, ["check", "--all", "--repo", str(records_repo)],
                                catch_exceptions=False)
    assert result.exit_code == 1
    assert f"{SEGMENT}:1: secrets: response line 1: looks like a credential " \
           "(Authorization Header)" in result.stderr
