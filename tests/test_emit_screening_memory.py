"""What emit's screening remembers between calls changes no verdict.

Secrets: emit scans a batch (often of one record) at a time, and remembers the texts and
lines it scanned (``record_secrets(..., remember=True)``): only new lines are scanned.
These tests attack that memory: batch after batch drawn from credentials (the secret
corpus, split across JSON escapes, unicode lookalikes, base64 and hex strings), clean
texts, long lines and keys, with the tables emptied now and then, must get exactly the
findings of a scan that remembers nothing. Decontamination: the n-gram index and screen
are looked up by what decides them; a config changed in place, or a benchmark file
rewritten, between two calls is seen by the second.
"""

from __future__ import annotations

import base64
import json
import random
import string
from pathlib import Path
from typing import Any

import pytest

import convergent.holdout
from convergent.config import default_config
from convergent.contamination import contaminated
from convergent.errors import RecordError, RepoError
from convergent.gates import secrets
from convergent.gates.secrets import _scan, record_secrets
from convergent.screening import screen_batch
from tests.test_gate_secrets_prefilter import CREDENTIALS as PREFILTER_CREDENTIALS

SECRETS = Path(__file__).parent / "adversarial" / "secrets"


def _corpus_credentials() -> list[str]:
    cases = json.loads((SECRETS / "credentials.json").read_text())["cases"]
    return ["".join(case["text"]) for case in cases]


def _escaped(text: str) -> str:
    """``text`` as it reaches the screening from a JSON line written with every character
    escaped (\\uXXXX): the same string once parsed."""
    line = '"' + "".join(f"\\u{ord(c):04x}" if ord(c) < 0x10000 else c for c in text) + '"'
    return str(json.loads(line))


def _pool(rng: random.Random) -> list[str]:
    credentials = _corpus_credentials() + PREFILTER_CREDENTIALS
    texts = list(credentials) + [_escaped(c) for c in credentials[:20]]
    # Unicode lookalikes: Cyrillic a, the long s and the Kelvin sign fold in ways lowering
    # does not show (re's IGNORECASE folds ſ to s and K to k).
    texts += ['pаssword = "hunter2-but-longer"', 'PASſWORD = "hunter2-but-longer"',
              'api_\u212aey = "Zq8vT3kLw9pX2mRn"', "ghр_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"]
    # High-entropy strings, quoted and not, in base64 and in hex.
    for _ in range(12):
        raw = bytes(rng.getrandbits(8) for _ in range(30))
        texts += [f'token = "{base64.b64encode(raw).decode()}"', f"'{raw.hex()}'",
                  base64.b64encode(raw).decode(), f'x = "{raw.hex()}"']
    clean = ["def add(a, b):\n    return a + b\n", "Write times_7(a, b).", "self", "python",
             "sha256:" + "ab" * 32, "2026-01-01T00:00:00.000000Z", "execution", "", "\n\n",
             "a passing grade", "the key to the puzzle", "tokens: 12"]
    alphabet = string.printable[:94] + " ñÑſ"
    clean += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60)))
              for _ in range(150)]
    long_line = "x = 1  # " + "word " * 80  # over what the memory keeps
    clean += [long_line, long_line + '\npassword = "hunter2-but-longer"']
    return texts + clean


def _record(rng: random.Random, pool: list[str]) -> dict[str, Any]:
    pick = rng.choice
    return {"kind": pick(["experience", "gap"]), "claim": pick(pool), "task": pick(pool),
            "response": "\n".join(rng.sample(pool, rng.randint(1, 3))),
            "evidence": {"type": "execution", "tests": pick(pool), pick(pool): pick(pool)},
            "links": [pick(pool), {"note": pick(pool)}], "confidence": 0.5}


@pytest.mark.parametrize("kept_max", [secrets._KEPT_MAX, 40])
def test_remembered_scans_find_what_a_fresh_scan_finds(monkeypatch: pytest.MonkeyPatch,
                                                       kept_max: int) -> None:
    monkeypatch.setattr(secrets, "_KEPT_MAX", kept_max)  # 40: the tables empty often
    monkeypatch.setattr(secrets, "_CLEAN", set())
    monkeypatch.setattr(secrets, "_FLAGGED", {})
    rng = random.Random(kept_max)
    pool = _pool(rng)
    flagged_batches = 0
    for _ in range(250):
        batch = [_record(rng, pool) for _ in range(rng.randint(1, 4))]
        expected = list(record_secrets(batch))
        assert list(record_secrets(batch, remember=True)) == expected
        flagged_batches += bool(expected)
    assert flagged_batches >= 50  # credentials were in play, and found
    assert secrets._CLEAN  # and the memory was in use (else this tests nothing)


def test_every_attack_form_is_found_fast_and_slow_alike() -> None:
    rng = random.Random(3)
    lines = {part for text in _pool(rng) for part in text.splitlines()}
    slow = _scan(lines, prefilter=False)
    assert _scan(lines) == slow
    for credential in _corpus_credentials()[:20]:
        escaped = _escaped(credential)
        assert escaped == credential
        assert any(line in slow for line in escaped.splitlines()), credential
    # Lowering hides nothing: every lookalike line gets the slow path's verdict.
    assert 'PASſWORD = "hunter2-but-longer"' in slow


def test_a_credential_seen_before_is_refused_again(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(secrets, "_CLEAN", set())
    monkeypatch.setattr(secrets, "_FLAGGED", {})
    leak = {"kind": "gap", "claim": "a gap", "evidence": {"note": 'KEY = "AKIAIOSFODNN7EXAMPLE"'}}
    clean = {"kind": "gap", "claim": "a gap", "evidence": {"note": "nothing here"}}
    for _ in range(3):
        errors = screen_batch(tmp_path, default_config(), [clean, leak, clean])
        assert [e is not None for e in errors] == [False, True, False]
        assert errors[1] is not None and errors[1].field == "secrets"
    # A clean text seen whole, then inside a longer one holding a credential.
    [error] = screen_batch(tmp_path, default_config(), [
        {"kind": "gap", "claim": "nothing here\nKEY = \"AKIAIOSFODNN7EXAMPLE\""}])
    assert error is not None and "claim line 2" in str(error)


# --- decontamination -------------------------------------------------------------------------

SPIRAL = ("Walk the grid clockwise from the outside in, collecting each cell you pass "
          "exactly once, and return the cells in the order you visited them")
ZIGZAG = ("Read the matrix row by row, left to right on even rows and right to left on odd "
          "rows, and return the values in that order without skipping any")


def _holdout_task(text: str) -> str:
    return json.dumps({"task_id": "holdout/0", "prompt": f'def walk(grid):\n    """{text}"""\n',
                       "entry_point": "walk", "canonical_solution": "    return []\n",
                       "test": ""}) + "\n"


def _experience(task: str) -> dict[str, Any]:
    return {"kind": "experience", "claim": "solves it", "task": task, "response": "pass",
            "evidence": {"type": "execution", "language": "python", "tests": ""}}


def test_a_rewritten_benchmark_file_is_seen_by_the_next_call(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "holdout.jsonl"
    path.write_text(_holdout_task(SPIRAL))
    monkeypatch.setattr(convergent.holdout, "holdout_source", lambda root, config: path)
    config = default_config()
    records = [_experience(SPIRAL), _experience(ZIGZAG)]
    first = {f.record for f in contaminated(tmp_path, config, records)
             if f.benchmark == "holdout"}
    assert first == {0}
    path.write_text(_holdout_task(ZIGZAG) + "\n")  # another size, another mtime
    second = {f.record for f in contaminated(tmp_path, config, records)
              if f.benchmark == "holdout"}
    assert second == {1}


def test_a_recorder_sees_a_rewritten_holdout_at_its_next_emit(
        records_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A recorder collects the benchmarks once (as it reads its config once), but each
    batch re-checks their files: a hold-out task written after its first emit is refused
    from the next emit on, nothing of it appended."""
    from convergent.recorder import Recorder

    path = records_repo / "holdout-under-test.jsonl"
    path.write_text(_holdout_task(SPIRAL))
    monkeypatch.setattr(convergent.holdout, "holdout_source", lambda root, config: path)

    def draft(task: str) -> dict[str, Any]:
        return dict(_experience(task), confidence=0.9,
                    source={"emitter": "t", "model": "m", "origin": "self"})

    with Recorder(records_repo, verify=False) as recorder:
        recorder.emit(draft(ZIGZAG))  # not yet a hold-out task
        path.write_text(_holdout_task(ZIGZAG) + "\n")  # another size, another mtime
        with pytest.raises(RecordError, match="holdout"):
            recorder.emit(draft(ZIGZAG + " "))
        lines = recorder.log.root.joinpath("data").rglob("*.jsonl")
        assert sum(ZIGZAG in p.read_text() for p in lines) == 1


def test_a_config_changed_in_place_is_seen_by_the_next_call(tmp_path: Path) -> None:
    config = default_config()
    assert contaminated(tmp_path, config, [_experience("Sort the list.")]) == []
    config["decontamination"]["lexical_threshold"] = "high"  # the same dict, changed
    with pytest.raises(RepoError, match="lexical_threshold"):
        contaminated(tmp_path, config, [_experience("Sort the list.")])
    config["decontamination"]["lexical_threshold"] = 0.55
    config["decontamination"]["benchmarks"] = ["humaneval", "mbpp"]
    with pytest.raises(RepoError, match="mbpp"):
        contaminated(tmp_path, config, [_experience("Sort the list.")])


def test_only_the_fields_the_recorder_filled_go_unscanned(tmp_path: Path,
                                                          records_repo: Path) -> None:
    leak = 'KEY = "AKIAIOSFODNN7EXAMPLE"'
    record = {"kind": "gap", "claim": "a gap", "ts": leak, "id": leak, "evidence": {"ts": leak}}
    [nested] = screen_batch(tmp_path, default_config(), [record], filled=("ts", "id"))
    assert nested is not None and "evidence.ts line 1" in str(nested)  # only the top level
    top_only = dict(record, evidence={})
    assert screen_batch(tmp_path, default_config(), [top_only], filled=("ts", "id")) == [None]
    [error] = screen_batch(tmp_path, default_config(), [top_only])  # the gate's way
    assert error is not None and error.field == "secrets"
    # A draft cannot put text there: the recorder fills ts and id itself.
    from convergent.recorder import Recorder

    with Recorder(records_repo, verify=False) as recorder:
        written = recorder.emit({"kind": "gap", "claim": "a gap", "ts": leak, "id": leak,
                                 "evidence": {"type": "gap", "name": "g", "metric": "pass@1",
                                              "target": 0.8, "measured": 0.5, "eval": "e"},
                                 "confidence": 1.0,
                                 "source": {"emitter": "t", "model": "m", "origin": "self"}})
    assert leak not in (written["ts"], written["id"])
    assert written["id"].startswith("sha256:")
