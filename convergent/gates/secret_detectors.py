"""Credentials where code puts them, and current key formats: what detect-secrets misses.

detect-secrets (``convergent.gates.secrets``) knows many classic formats (AWS key ids,
GitHub ``ghp_`` tokens, GitLab, Slack bot tokens, Stripe, JWTs, private-key blocks) and
``password = "..."`` assignments. These detectors add:

- credentials passed where code passes them: keyword arguments, assignments and dict
  entries whose name ends in a secret word (``connect(password="...")``,
  ``{"X-Api-Key": "..."}``), ``Authorization`` headers, ``os.environ.get("X_TOKEN",
  "<default>")`` defaults, and passwords in connection URLs (``postgres://u:p@h``);
- key formats it does not know: GitHub fine-grained tokens, Slack app tokens, Google API
  keys, OpenAI project and legacy keys, Anthropic keys, AWS secret access keys;
- and the formats it knows, again: its "indirect reference" filter drops every finding
  on a line shaped like ``x = f(...)``, which is exactly where code passes a key
  (``client = WebClient("xoxb-...")``).

Every finding's value must not be an obvious placeholder (:func:`is_placeholder`:
``YOUR_API_KEY``, ``xxx``, ``<token>``, ``${VAR}`` ...); a read such as
``os.environ["X"]`` is no literal, so it never matches.

Each detector names *needles*, lower-case ASCII strings one of which every match holds;
a text none of whose needles occur is not searched (most records pay a few substring
tests). Patterns are ASCII-case-insensitive and never match a line break, so they can
run once over many lines joined by newlines.
"""

from __future__ import annotations

import functools
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import accumulate

from convergent.gates.regex_needles import lines_holding, trie

_FLAGS = re.ASCII | re.IGNORECASE
_H = r"[^\S\n]*"  # horizontal whitespace: a match never crosses a line
_SECRET_WORD = (r"(?:pass(?:word|wd|phrase)?|pwd|secret|token|api[_-]?key|apikey|"
                r"access[_-]?key|private[_-]?key|auth[_-]?key|auth|credentials?)")


def is_placeholder(value: str) -> bool:
    """Whether ``value`` is an obvious stand-in for a credential, not one."""
    v = value.strip().strip("\"'`")
    lowered = v.lower()
    return (len(v) < 3 or _TEMPLATE.search(v) is not None
            or any(word in lowered for word in _PLACEHOLDER_WORDS)
            or _FILLER.search(v) is not None or lowered in _PLACEHOLDER_VALUES)


# ${VAR} $VAR {{ var }} <token> %(name)s %s {name} [MASK]
_TEMPLATE = re.compile(r"\$\{[^}]*\}|^\$[A-Za-z_]\w*$|\{\{.*\}\}|<[^<>]*>|%\(\w+\)s|^%s$|"
                       r"^\{\w*\}$|^\[[A-Z_]+\]$")
_FILLER = re.compile(r"x{4,}|X{4,}|\*{3,}|#{4,}|\.{3,}|…")
_PLACEHOLDER_WORDS = ("your", "placeholder", "redacted", "changeme", "change_me", "change-me",
                      "replace_me", "replace-me", "dummy", "fake", "sample", "insert")
_PLACEHOLDER_VALUES = frozenset({"password", "passwd", "secret", "token", "apikey", "api_key",
                                 "none", "null", "empty", "string", "str", "pass", "test",
                                 "example", "undefined", "xxx", "***"})


def _credential_shaped(value: str) -> bool:
    """A literal that could be a credential: 8+ characters, no spaces, two kinds of
    character at least (so ``"required"``, ``"bert-base"`` or a path are not)."""
    if len(value) < 8 or any(c.isspace() for c in value) or is_placeholder(value):
        return False
    if value.startswith(("/", "./", "~/")) or "://" in value:
        return False
    kinds = (any(c.islower() for c in value) + any(c.isupper() for c in value)
             + any(c.isdigit() for c in value) + any(not c.isalnum() for c in value))
    return kinds >= 2


def _not_placeholder(value: str) -> bool:
    return not is_placeholder(value)


def _anywhere(text: str, start: int) -> bool:
    return True


def _ends_a_name(text: str, start: int) -> bool:
    """Whether the secret word at ``start`` begins a word of a name: db_password,
    X-Api-Key, clientSecret, password (not bypass, compass)."""
    if start == 0 or not text[start - 1].isalnum():
        return True
    before, first = text[start - 1], text[start]
    return first.isupper() and (before.islower() or before.isdigit())


@dataclass(frozen=True)
class Detector:
    """One kind of credential: its name in the gate's message, the needles every match
    holds, the pattern (the credential is its group ``secret``), the test the value must
    pass and the test of where the match starts."""

    kind: str
    needles: tuple[str, ...]
    pattern: re.Pattern[str]
    accept: Callable[[str], bool] = _not_placeholder
    # Where the match may start, given the text around it (within its line).
    placed: Callable[[str, int], bool] = _anywhere


DETECTORS: tuple[Detector, ...] = (
    Detector("Credential Argument", ("pass", "pwd", "secret", "token", "key", "auth",
                                     "credential"),
             re.compile(rf"{_SECRET_WORD}[\"']?\]?{_H}(?:=|:|=>){_H}(?P<q>[\"'])"
                        r"(?P<secret>[^\"'\n]+)(?P=q)", _FLAGS),
             _credential_shaped, _ends_a_name),
    Detector("Authorization Header", ("authorization",),
             re.compile(rf"authorization[\"']?\]?{_H}[:=,]{_H}[\"']?(?:bearer|basic|token|bot|"
                        rf"apikey|digest){_H}(?P<secret>[A-Za-z0-9._~+/=-]{{8,}})"
                        r"(?![A-Za-z0-9._~+/=-])", _FLAGS),
             _credential_shaped),
    Detector("Environment Default", ("getenv", "environ"),
             re.compile(rf"(?:getenv|environ\.get|environ\.setdefault){_H}\({_H}[\"']"
                        rf"[\w.-]*{_SECRET_WORD}[\w.-]*[\"']{_H},{_H}[\"'](?P<secret>[^\"'\n]+)"
                        r"[\"']", _FLAGS),
             _credential_shaped),
    Detector("Connection URL Password", ("://",),
             re.compile(r"\b[a-z][a-z0-9+.-]{1,30}://[^\s:/@\"'<>]*:(?P<secret>[^\s/@\"'<>]+)@"
                        r"[^\s/@\"'<>]+", _FLAGS)),
    # Formats detect-secrets knows too, but drops on lines its "indirect reference" filter
    # takes for `x = f(...)`: `g = Github("ghp_...")`, `s3 = boto3.client(..., key)`.
    Detector("GitHub Token", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
             re.compile(r"\b(?P<secret>gh[pousr]_[A-Za-z0-9]{36,255}|"
                        r"github_pat_[A-Za-z0-9_]{22,255})\b")),
    Detector("GitLab Token", ("glpat-", "gldt-", "glptt-", "glrt-"),
             re.compile(r"\b(?P<secret>gl(?:pat|dt|ptt|rt)-[A-Za-z0-9_-]{20,})(?![\w-])")),
    Detector("Slack Token", ("xox", "hooks.slack.com"),
             re.compile(r"\b(?P<secret>xox[abposr]-[A-Za-z0-9-]{10,}|hooks\.slack\.com/"
                        r"(?:services|workflows)/[A-Za-z0-9+/_-]{20,})")),
    Detector("Slack App Token", ("xapp-",),
             re.compile(r"\b(?P<secret>xapp-\d-[A-Za-z0-9]+-\d+-[A-Za-z0-9]+)\b")),
    Detector("Stripe Access Key", ("k_live_",),
             re.compile(r"\b(?P<secret>[rs]k_live_[A-Za-z0-9]{20,})\b")),
    Detector("AWS Access Key", ("akia", "asia", "agpa", "aida", "aroa", "aipa", "anpa", "anva",
                                "abia", "acca"),
             re.compile(r"\b(?P<secret>(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)"
                        r"[A-Z0-9]{16})\b")),
    Detector("JSON Web Token", ("eyj",),
             re.compile(r"\b(?P<secret>eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\."
                        r"[A-Za-z0-9_-]{8,})")),
    Detector("Private Key", ("private key",),
             re.compile(r"(?P<secret>-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----)")),
    Detector("Google API Key", ("aiza",),
             re.compile(r"\b(?P<secret>AIza[0-9A-Za-z_-]{35})(?![0-9A-Za-z_-])")),
    Detector("Anthropic API Key", ("sk-ant-",),
             re.compile(r"\b(?P<secret>sk-ant-[a-z]+\d*-[A-Za-z0-9_-]{20,})")),
    Detector("OpenAI API Key", ("sk-",),
             re.compile(r"\b(?P<secret>sk-(?:(?:proj|svcacct|admin|None)-[A-Za-z0-9_-]{20,}|"
                        r"[A-Za-z0-9]{32,})(?![A-Za-z0-9]))")),
    Detector("AWS Secret Access Key", ("secret",),
             re.compile(rf"(?:aws[\w-]{{0,20}}?secret[\w-]{{0,20}}|secret[_-]?access[_-]?key)"
                        rf"[\"']?{_H}[:=]{_H}[\"']?(?P<secret>[A-Za-z0-9/+]{{40}})"
                        r"(?![A-Za-z0-9/+=])", _FLAGS)),
)


_NEEDLES = frozenset(needle for detector in DETECTORS for needle in detector.needles)


def find_secrets(lines: Iterable[str], *, prefilter: bool = True) -> dict[str, list[str]]:
    """Kinds of credential found per distinct line (lines without any left out).

    ``prefilter=False`` runs every detector on every line by itself: the reference the
    joined, needle-filtered search must agree with.
    """
    found: dict[str, set[str]] = {}
    distinct = sorted(set(lines))
    if not prefilter:
        for line in distinct:
            for detector in DETECTORS:
                if any(_flags(detector, line, m) for m in detector.pattern.finditer(line)):
                    found.setdefault(line, set()).add(detector.kind)
        return {line: sorted(kinds) for line, kinds in found.items()}
    # Lowered line by line, so that a line's offsets are known in the lowered text too
    # (lowering can change a non-ASCII string's length).
    low = [line.lower() for line in distinct]
    lowered = "\n".join(low)
    present = {needle for needle in _NEEDLES if needle in lowered}
    if not present:
        return {}
    starts = list(accumulate((len(line) + 1 for line in low), initial=0))
    for detector in DETECTORS:
        if present.isdisjoint(detector.needles):
            continue
        # Only the lines holding a needle can hold a match (a match is within one line).
        held = [distinct[n] for n in lines_holding(_search(detector.needles), lowered, starts)]
        text = "\n".join(held)
        pattern, haystack = detector.pattern, text
        # ASCII text lowers character for character: a case-insensitive search is then a
        # plain one of the lowered text, at the same offsets (several times faster).
        if text.isascii() and pattern.flags & re.IGNORECASE:
            pattern, haystack = _folded(pattern), text.lower()
        held_starts = list(accumulate((len(line) + 1 for line in held), initial=0))
        for match in pattern.finditer(haystack):
            if _flags(detector, text, match):
                line = held[bisect_right(held_starts, match.start()) - 1]
                found.setdefault(line, set()).add(detector.kind)
    return {line: sorted(kinds) for line, kinds in found.items()}


@functools.cache
def _search(found: tuple[str, ...]) -> re.Pattern[str]:
    """One search for any of a detector's needles (see :func:`trie`)."""
    return re.compile(trie(frozenset(found)))


@functools.cache
def _folded(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """``pattern`` without IGNORECASE, for lowered ASCII text: sound because every literal
    of our case-insensitive patterns is lower-case and every class holds both cases."""
    return re.compile(pattern.pattern, pattern.flags & ~re.IGNORECASE)


def _flags(detector: Detector, text: str, match: re.Match[str]) -> bool:
    """Whether ``match`` (in ``text``, or in its lowered copy: same offsets) is a finding;
    the value is read from ``text``, in its own case."""
    start, end = match.span("secret")
    return detector.placed(text, match.start()) and detector.accept(text[start:end])
