"""The secrets gate's needle prefilter is a superset: it loses nothing the slow path finds.

Each detect-secrets pattern runs only over the lines holding one of its needles (see
:mod:`convergent.gates.regex_needles`). These tests attack that: needles read from
patterns of known shape, every default pattern's matches over many lines hold a needle,
and every credential and placeholder of the secrets corpus, the secret forms, and every
leak and clean entry of the contamination corpus are scanned by the fast path and by the
slow one (every plugin on every line, no prefilter), which must agree, line by line and
record by record.
"""

from __future__ import annotations

import json
import random
import re
import string
from pathlib import Path
from typing import Any

import pytest

from convergent.gates.regex_needles import needles
from convergent.gates.secrets import _default_prefilters, _scan, _strings, record_secrets
from tests.contamination_corpus import as_record, clean, leaks
from tests.test_gate_secrets_prefilter import CREDENTIALS as PREFILTER_CREDENTIALS

SECRETS = Path(__file__).parent / "adversarial" / "secrets"


def _secret_corpus() -> list[str]:
    credentials = json.loads((SECRETS / "credentials.json").read_text())["cases"]
    placeholders = json.loads((SECRETS / "placeholders.json").read_text())["cases"]
    return ["".join(case["text"]) for case in credentials] + list(placeholders)


def _contamination_corpus() -> list[dict[str, Any]]:
    return [as_record(entry) for entry in leaks() + clean()]


def _lines(texts: list[str]) -> set[str]:
    return {part for text in texts for part in text.splitlines()}


@pytest.mark.parametrize(("pattern", "expected"), [
    (r"abc", {"abc"}),
    (r"AKIA[0-9A-Z]{16}", {"akia"}),
    (r"(?:r|s)k_live_[0-9a-z]{24}", {"rk_live_", "sk_live_"}),
    (r"api_?key", {"apikey", "api_key"}),
    (r"x\d+:y", {":y"}),
    (r"(?:ab|cd)+", {"ab", "cd"}),
    (r"(?<=\W)tok(?!\w)", {"tok"}),
    (r"(?i)contraseña", {"contrase"}),  # the ASCII run; ñ lines are non-ASCII anyway
    (r"BEGIN (?:RSA )?PRIVATE KEY", {"begin private key", "begin rsa private key"}),
])
def test_needles_of_known_shapes(pattern: str, expected: set[str]) -> None:
    assert needles(re.compile(pattern)) == expected


@pytest.mark.parametrize("pattern", [
    r"\w+", r".*", r"x?", r"(?:a|)", r"[^a]{3}", r"(\w)\1", r"(?:key|\d)", "\u212a",
    r"[a-z]{5}",
])
def test_no_needles_where_none_is_sure(pattern: str) -> None:
    """Wildcards, optional parts, back-references, negated or wide classes, and
    non-ASCII literals (which fold into ASCII ones: K, the Kelvin sign, matches k) give
    no needles: the pattern then runs on every line."""
    assert needles(re.compile(pattern)) is None


def test_every_match_of_every_default_pattern_holds_a_needle() -> None:
    prefilters = _default_prefilters()
    assert prefilters is not None
    assert sum(search is not None for _, _, search in prefilters) >= len(prefilters) - 2
    rng = random.Random(14)
    lines = _lines(_secret_corpus() + PREFILTER_CREDENTIALS)
    lines |= {f"prefix {line} suffix" for line in list(lines)} | {f'"{x}"' for x in lines}
    alphabet = string.ascii_letters + string.digits + "_-=:./'\" "
    lines |= {"".join(rng.choice(alphabet) for _ in range(rng.randint(20, 90)))
              for _ in range(3000)}
    checked = 0
    for pattern, _, search in prefilters:
        if search is None:
            continue
        for line in lines:
            if line.isascii() and pattern.search(line):
                checked += 1
                assert search.search(line.lower()), (pattern.pattern, line)
    assert checked >= len(PREFILTER_CREDENTIALS)


def test_the_fast_path_loses_nothing_on_the_secret_and_contamination_corpora() -> None:
    records = _contamination_corpus()
    texts = _secret_corpus() + PREFILTER_CREDENTIALS
    texts += [text for record in records for _, text in _strings(record, "")]
    lines = _lines(texts) | {f"  {line}  # kept" for line in _lines(_secret_corpus())}
    slow = _scan(lines, prefilter=False)
    assert len(slow) >= len(_secret_corpus()) // 2  # the corpus is found at all
    assert _scan(lines) == slow
    # Record by record, in one batch, against each record scanned alone the slow way.
    credentials = json.loads((SECRETS / "credentials.json").read_text())["cases"]
    records += [{"kind": "gap", "claim": "a gap", "evidence": {"note": "".join(c["text"])}}
                for c in credentials]
    flagged = {n for n, _ in record_secrets(records)}
    alone = {n for n, record in enumerate(records)
             if _scan(_lines([t for _, t in _strings(record, "")]), prefilter=False)}
    assert flagged == alone
    assert set(range(len(records) - len(credentials), len(records))) <= flagged
