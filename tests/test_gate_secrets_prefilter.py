"""The secrets gate's prefilter skips only lines no detect-secrets plugin flags."""

from __future__ import annotations

import random
import re
import string
from pathlib import Path

from detect_secrets.settings import default_settings, get_plugins

from convergent.gates.secrets import _joinable, _prefilter, _scan

CREDENTIALS = [
    'KEY = "AKIAIOSFODNN7EXAMPLE"', "used AKIAIOSFODNN7EXAMPLE to list buckets",
    'password = "hunter2-but-longer"', 'PassWord = "hunter2-but-longer"',
    "token: ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789", "-----BEGIN RSA PRIVATE KEY-----",
    "glpat-abcdefghij0123456789xyz", 'api_key: "abc123secretvalue"', "xoxb-123-456-abcdef",
    "https://user:pa55word@example.com/x", "sk_live_0123456789abcdefABCDEFGH",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc", "AccountKey=" + "a1B2" * 22,
    "SG." + "a" * 22 + "." + "b" * 43, "'deadbeefcafe0123456789abcdef'",
    'my_secret = "Z8x!kq2Lm"', '"Z8x!kq2Lmpp" == my_password', "AP6" + "a1" * 5,
    'contraseña = "Z8x!kq2Lmpp"', 'CONTRASEÑA = "Z8x!kq2Lmpp"',
]


def test_every_default_plugin_has_a_sound_prefilter() -> None:
    with default_settings():
        missing = [type(p).__name__ for p in get_plugins() if _prefilter(p) is None]
    assert missing == []


def test_prefilter_finds_what_every_plugin_finds() -> None:
    rng = random.Random(7)
    lines = set(CREDENTIALS)
    lines |= {f"prefix {c} suffix" for c in CREDENTIALS} | {f'"{c}"' for c in CREDENTIALS}
    alphabet = string.printable[:94] + " ñÑſ"
    lines |= {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60)))
              for _ in range(3000)}
    lines |= {"def add(a, b):", "    return a + b", "sha256:" + "ab" * 32, ""}
    expected = _scan(lines, prefilter=False)
    assert set(CREDENTIALS) <= set(expected)
    assert _scan(lines) == expected
    ascii_only = {line for line in lines if line.isascii()}  # the lowered fast path
    assert _scan(ascii_only) == {k: v for k, v in expected.items() if k in ascii_only}


def test_unsound_patterns_are_refused() -> None:
    assert _joinable(re.compile(r"(?<![\w.])\d+(?![a-f0-9])"))
    assert not _joinable(re.compile(r"\Atoken"))
    assert not _joinable(re.compile(r"key(?!\s)"))
    assert not _joinable(re.compile(r"key.+", re.DOTALL))
    assert not _joinable(re.compile(r"(?is:key.+)"))
    assert not _joinable(re.compile(r"(?>key)\w++"))


def test_batch_screening_refuses_every_record_detect_secrets_flags(tmp_path: Path) -> None:
    """Emit screens a batch in one call, behind the prefilter: fail closed, it refuses
    every record whose lines detect-secrets (every plugin, no prefilter) flags when the
    record is scanned alone, and no other."""
    from convergent.config import default_config
    from convergent.screening import screen_batch

    rng = random.Random(11)
    alphabet = string.printable[:94] + " ñÑſ"
    texts = [*CREDENTIALS, *(f"prefix {c} suffix" for c in CREDENTIALS),
             *("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60)))
               for _ in range(400)),
             "def times(a, b):\n    return a * b", "sha256:" + "ab" * 32]
    records = [{"kind": "gap", "claim": f"gap {n}", "evidence": {"note": text}}
               for n, text in enumerate(texts)]

    def alone(record: dict[str, object]) -> bool:
        lines = {part for value in (record["claim"], texts[int(str(record["claim"])[4:])])
                 for part in str(value).splitlines()}
        return bool(_scan(lines, prefilter=False))

    expected = [alone(r) for r in records]
    assert sum(expected) >= len(CREDENTIALS)
    errors = screen_batch(tmp_path, default_config(), records)
    assert [e is not None for e in errors] == expected
    assert all(e.field == "secrets" for e in errors if e is not None)
