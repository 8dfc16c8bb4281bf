"""The ``secrets`` gate: no credentials in records, found with detect-secrets and ours.

Every string of every appended record (every field, nested ones and keys included) is
scanned, line by line, with detect-secrets' default plugin set and default filters (the
same pipeline as ``detect-secrets scan`` on a file, non-eager), less its findings that
are obvious placeholders, and with the detectors of
:mod:`convergent.gates.secret_detectors` for what it misses (credentials in call
arguments, headers, environment defaults and URLs; current key formats). Problems name
the log line, the field and the secret type, never the secret itself.

Distinct lines are scanned once, and a prefilter (see :func:`_candidates`) skips, in one
pass over all of them, the lines no plugin pattern can match, which is most of them. At
``emit``, which screens one small batch after another, what this process scanned before
is not scanned again (see :func:`_verdicts`): a record pays for its new lines only.
"""

from __future__ import annotations

import functools
import re
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from convergent.gates.base import GateContext, Problem
from convergent.gates.regex_needles import lines_holding, needles, trie
from convergent.gates.secret_detectors import find_secrets, is_placeholder

GATE = "secrets"
# What detect-secrets is told the text is: a plain file (no language-specific rules).
_FILENAME = "record.txt"


def check_secrets(ctx: GateContext) -> Iterator[Problem]:
    lines = [line for line in ctx.new_lines if line.record is not None]
    for n, message in record_secrets([line.record for line in lines]):
        yield Problem(lines[n].path, lines[n].lineno, GATE, message)


def record_secrets(records: Sequence[Any], *, remember: bool = False
                   ) -> Iterator[tuple[int, str]]:
    """(index, message) for each credential in a batch of records, in record order: the
    gate's rule, which emit's screening calls once per batch. Each distinct line of the
    batch is scanned once, behind the sound prefilter (see :func:`_scan`). ``remember``
    (emit's screening, one small batch after another): a line this process scanned so
    before is not scanned again (see :func:`_verdicts`); a check scans all its lines."""
    strings: set[str] = set()
    for record in records:
        _collect(record, strings)
    if remember:
        flagged = _verdicts(strings)
    else:
        flagged = _scan({part for text in strings for part in text.splitlines()})
    if not flagged:
        return  # the usual case: no line of any string is a credential
    for n, record in enumerate(records):
        for where, text in _strings(record, ""):
            for number, part in enumerate(text.splitlines(), 1):
                for kind in flagged.get(part, ()):
                    yield n, (f"{where} line {number}: looks like a credential ({kind}); "
                              "remove it from the record")


# What this process scanned before: texts none of whose lines is a credential, and lines
# that are, with their secret types. A line's verdict depends on that line alone (see
# :func:`_scan`), and a record's keys and most of its values recur from record to record,
# which emit screens a batch (often of one) at a time: only its new lines are scanned.
# Bounded: long texts are not kept (they rarely recur), and the tables are emptied when
# full.
_CLEAN: set[str] = set()
_FLAGGED: dict[str, list[str]] = {}
_KEPT_MAX = 65_536
_KEPT_TEXT_MAX = 256


def _verdicts(strings: set[str]) -> dict[str, list[str]]:
    """The secret types of each line of ``strings`` that has any: what :func:`_scan`
    finds, with the texts and lines scanned before in this process known already."""
    texts = strings - _CLEAN
    lines = {part for text in texts for part in text.splitlines()}
    fresh = lines - _CLEAN
    flagged: dict[str, list[str]] = {}
    for line in fresh & _FLAGGED.keys():
        kinds = _FLAGGED.get(line)  # None if another thread emptied the table meanwhile
        if kinds:
            flagged[line] = kinds
    fresh -= flagged.keys()
    scanned = _scan(fresh) if fresh else {}
    flagged.update(scanned)
    if len(_CLEAN) + len(_FLAGGED) + len(texts) + len(fresh) > _KEPT_MAX:
        _CLEAN.clear()
        _FLAGGED.clear()
    for line in fresh:
        if len(line) <= _KEPT_TEXT_MAX:
            if line in scanned:
                _FLAGGED[line] = scanned[line]
            else:
                _CLEAN.add(line)
    if not flagged:
        # Every text of the batch is clean: kept whole, so a recurring one is not split.
        _CLEAN.update(text for text in texts if len(text) <= _KEPT_TEXT_MAX)
    return flagged


def _collect(value: Any, strings: set[str]) -> None:
    """Add every string of a JSON value (keys included) to ``strings``: what
    :func:`_strings` yields, without the field paths, which only a finding needs."""
    add, stack = strings.add, [value]
    while stack:
        value = stack.pop()
        if type(value) is str:  # most values: no isinstance chain
            add(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                add(key if type(key) is str else str(key))
                if type(item) is str:
                    add(item)
                else:
                    stack.append(item)
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str):
            add(value)


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """Every string in a JSON value, with its field path (``evidence.tests``, ``links[0]``)."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            inner = f"{where}.{key}" if where else str(key)
            # Keys are emitter-controlled text too; named by where they are, never echoed.
            yield f"{where or 'the record'} (a key)", str(key)
            yield from _strings(item, inner)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{where}[{i}]")


def _scan(lines: set[str], *, prefilter: bool = True) -> dict[str, list[str]]:
    """Secret types found per distinct line (lines without any are left out).

    ``prefilter=False`` sends every line through every plugin: the slow reference the
    prefilter must agree with.
    """
    # Ours name what detect-secrets misses; on a line it flags, its kinds are the ones given.
    found = find_secrets(lines, prefilter=prefilter)
    candidates = _candidates(sorted(lines), _default_plan()) if prefilter else sorted(lines)
    if not candidates:  # the common case: no settings, no plugins, no pipeline
        return found
    # Imported here: detect-secrets pulls in requests, which commands without records skip.
    from detect_secrets.core.scan import _process_line_based_plugins
    from detect_secrets.settings import default_settings, get_plugins

    with default_settings():
        plugins = get_plugins()
        for line in candidates:
            # Calling the plugins directly is several times cheaper than detect-secrets'
            # dependency-injecting pipeline; only lines they flag pay for the full pipeline,
            # whose filters (UUIDs, templates, indirect references ...) have the last word,
            # and ours after them: a placeholder (YOUR_API_KEY, xxx ...) is no credential.
            if line.strip() and any(p.analyze_line(filename=_FILENAME, line=line)
                                    for p in plugins):
                kinds = {s.type for s in _process_line_based_plugins([(1, line)], _FILENAME)
                         if not is_placeholder(s.secret_value or "")}
                if kinds:
                    found[line] = sorted(kinds)
    return found


# --- the prefilter ---------------------------------------------------------------------------
#
# Calling ~27 plugins on each line costs ~0.4 ms a line, mostly in Python overhead and in
# the keyword plugin's heavy regexes. The prefilter runs each plugin's patterns once over
# all the lines joined by "\n" (with ``re.MULTILINE``, so ``^``/``$`` still hold at each
# line's ends) and keeps the lines a match touches: a line no plugin pattern can match
# cannot be flagged, so it is skipped; every kept line goes through the plugins as before.
#
# Sound because a match within one line is still a match in the joined text at the same
# place: it consumes only that line's characters, ``^``/``$``/``\b`` see a line break where
# the line had its start or end, and positive lookarounds only see more. Matches spanning
# lines merely keep extra lines. What could break it is refused per pattern (the plugin
# then has no prefilter and sees every line): DOTALL, ``\A``/``\Z``, atomic groups and
# possessive quantifiers, and negative lookarounds other than the audited bodies below,
# which cannot match a line break.

_AUDITED_NEGATIVE_BODIES = frozenset({
    r"\w",  # GitLab tokens: (?!\w)
    r"192\.168\.|127\.|10\.|172\.(?:1[6-9]|2[0-9]|3[01])",  # public IPs: private ranges
})
# A class of word characters, dots and hyphens (ranges between such characters included):
# (?<![\w.]), (?![a-f0-9]), (?![a-zA-Z0-9_\-]) ...
_SAFE_CLASS = re.compile(r"\[(?:[A-Za-z0-9_.-]|\\[wd._-])+\]")
_REFUSED = ("\\A", "\\Z", "\\z", "(?>", "*+", "++", "?+", "}+")
_INLINE_DOTALL = re.compile(r"\(\?[a-zA-Z-]*s")  # (?s), (?is), (?s:...) ...
_NEGATIVE = re.compile(r"\(\?<?!")
# Alternatives of lower-case ASCII words (optional characters allowed), and "ñ", whose
# only case partner is "Ñ": in ASCII text, none of them matches anything but itself and
# its upper case.
_LOWER_WORDS = re.compile(r"\((?:[a-z_ñ]\??|\|)+\)")


# A prefilter pattern; for lower-case ASCII words searched case-insensitively, the same
# pattern, case-sensitive, to run on lowered ASCII text instead; and a search for the
# pattern's needles (:func:`convergent.gates.regex_needles.needles`, strings one of which
# every match holds) in lowered ASCII text, None when it has none.
_Prefilter = tuple[re.Pattern[str], re.Pattern[str] | None, re.Pattern[str] | None]


@functools.lru_cache(maxsize=1)
def _default_prefilters() -> tuple[_Prefilter, ...] | None:
    """The default plugin set's prefilters, built once per process (None: some plugin has
    no sound prefilter, so every line must go through the plugins)."""
    from detect_secrets.settings import default_settings, get_plugins

    with default_settings():
        plugins = get_plugins()
    prefilters: list[_Prefilter] = []
    for plugin in plugins:
        own = _prefilter(plugin)
        if own is None:
            return None
        prefilters.extend(own)
    return tuple(prefilters)


# The prefilters by their needle search, in first-seen order (several patterns of a plugin
# often share one): the search and the patterns (with their folded forms) behind it.
_Group = tuple[re.Pattern[str] | None, tuple[tuple[re.Pattern[str], re.Pattern[str] | None], ...]]
# Searches of at most this many needles are made by substring tests of each needle, which
# cost less than a regex search over short text; bigger ones by the search itself.
_FEW_NEEDLES = 8
# Needles this long or longer are rare in text: the searches made of them only are first
# made all at once (one search for every such needle), and one by one only if it finds one.
_RARE_LENGTH = 3
# Search -> the needles it looks for, for every search _needle_search made.
_NEEDLES_OF: dict[re.Pattern[str], tuple[str, ...]] = {}


@dataclass(frozen=True)
class _Plan:
    """How a batch's lines are prefiltered: the groups; those with a short needle (looked
    for one by one); those whose needles are all rare (looked for one by one only when
    ``any_rare``, a search for all their needles at once, finds one); those without
    needles (which see every line); and the needles of the groups with few."""

    groups: tuple[_Group, ...]
    common: tuple[int, ...]
    rare: tuple[int, ...]
    any_rare: re.Pattern[str] | None
    everywhere: tuple[int, ...]
    few: dict[int, tuple[str, ...]]

    def holding(self, lowered: str) -> list[int]:
        """The groups some needle of which ``lowered`` holds."""
        found = [g for g in self.common if self._holds(g, lowered)]
        if self.any_rare is not None and self.any_rare.search(lowered):
            found += [g for g in self.rare if self._holds(g, lowered)]
        return found

    def _holds(self, g: int, lowered: str) -> bool:
        few = self.few.get(g)
        if few is not None:
            return any(map(lowered.__contains__, few))
        search = self.groups[g][0]
        return search is not None and search.search(lowered) is not None


@functools.lru_cache(maxsize=1)
def _default_plan() -> _Plan | None:
    """The plan of :func:`_default_prefilters`, built once per process."""
    prefilters = _default_prefilters()
    if prefilters is None:
        return None
    members: dict[re.Pattern[str] | None, list[tuple[re.Pattern[str], re.Pattern[str] | None]]]
    members = {}
    for pattern, folded, search in prefilters:
        members.setdefault(search, []).append((pattern, folded))
    groups = tuple((search, tuple(patterns)) for search, patterns in members.items())
    common, rare, everywhere, few = [], [], [], {}
    rare_needles: set[str] = set()
    for n, (search, _) in enumerate(groups):
        if search is None:
            everywhere.append(n)
            continue
        found = _NEEDLES_OF[search]
        if len(found) <= _FEW_NEEDLES:
            few[n] = found
        if min(len(needle) for needle in found) >= _RARE_LENGTH:
            rare.append(n)
            rare_needles.update(found)
        else:
            common.append(n)
    # A needle holding another is found wherever that one is: the shorter one suffices.
    shortest = {n for n in rare_needles if not any(m != n and m in n for m in rare_needles)}
    return _Plan(groups, tuple(common), tuple(rare),
                 re.compile(trie(shortest)) if shortest else None, tuple(everywhere), few)


def _candidates(lines: list[str], plan: _Plan | None) -> list[str]:
    """The lines some prefilter pattern matches (all of them without prefilters).

    A pattern with needles runs only over the lines that hold one of them (found by
    searching the lowered ASCII lines) and over every non-ASCII line (whose case folds in
    ways lowering does not show): a line holding none cannot hold a match. Which
    searches find anything at all is first known over all the lines at once (see
    :meth:`_Plan.holding`): most batches hold no needle of most patterns, so most patterns
    never run.
    """
    if plan is None:
        return lines
    # Non-ASCII lines are left out of the needle search ("" in their place).
    lowered = "\n".join(line.lower() if line.isascii() else "" for line in lines)
    others = [n for n, line in enumerate(lines) if not line.isascii()]
    groups = plan.groups
    found = plan.holding(lowered)
    starts = list(accumulate((len(line) + 1 if line.isascii() else 1 for line in lines),
                             initial=0)) if found else []
    keep = bytearray(len(lines))
    joined = "\n".join(lines) if found and not others else ""
    # Without non-ASCII lines, only the groups with a needle somewhere, and those with none.
    chosen_groups = range(len(groups)) if others else sorted({*found, *plan.everywhere})
    for g in chosen_groups:
        search, patterns = groups[g]
        chosen: Sequence[int]
        if search is None:
            chosen = range(len(lines))
        elif g in found:
            if not others and not any(_matches_in(pattern, folded, lowered, joined)
                                      for pattern, folded in patterns):
                continue  # a needle, but no match: most groups found, on most batches
            chosen = lines_holding(search, lowered, starts)
            if others:
                chosen = sorted({*chosen, *others})
        elif others:
            chosen = others
        else:
            continue  # no line holds a needle: no line can match
        for pattern, folded in patterns:
            for n in _matching(pattern, folded, [lines[n] for n in chosen]):
                keep[chosen[n]] = 1
    return [line for line, kept in zip(lines, keep, strict=True) if kept]


def _matches_in(pattern: re.Pattern[str], folded: re.Pattern[str] | None, lowered: str,
                joined: str) -> bool:
    """Whether ``pattern`` matches anywhere in the batch's lines joined, all of them ASCII
    (``lowered``: the same text lowered). A match within a line is one in the joined text
    (the prefilter's soundness, above), so no match there means no line can be kept."""
    if folded is not None:
        return folded.search(lowered) is not None
    return pattern.search(joined) is not None


@functools.cache
def _needle_search(found: frozenset[str] | None) -> re.Pattern[str] | None:
    """One search for any of ``found`` (a trie: see :func:`_trie`), shared by the
    patterns with the same needles."""
    if found is None:
        return None
    search = re.compile(trie(found))
    _NEEDLES_OF[search] = tuple(sorted(found))
    return search


def _matching(pattern: re.Pattern[str], folded: re.Pattern[str] | None,
              lines: list[str]) -> set[int]:
    """Indexes of the lines a match of ``pattern`` touches, in the lines joined by "\\n"."""
    text = "\n".join(lines)
    # ASCII text lowers character for character, so a case-insensitive search for
    # lower-case ASCII words is a plain search of the lowered text (ten times faster).
    matches = (folded.finditer(text.lower()) if folded is not None and text.isascii()
               else pattern.finditer(text))
    starts = list(accumulate((len(line) + 1 for line in lines), initial=0))
    touched: set[int] = set()
    for match in matches:
        first = bisect_right(starts, match.start()) - 1
        last = bisect_right(starts, max(match.start(), match.end() - 1)) - 1
        touched.update(range(first, last + 1))
    return touched


def _prefilter(plugin: Any) -> list[_Prefilter] | None:
    """Patterns that match somewhere in every line ``plugin`` could flag; None when the
    plugin is not one whose matching we know, or a pattern is not sound to join."""
    from detect_secrets.plugins import keyword
    from detect_secrets.plugins.base import RegexBasedDetector
    from detect_secrets.plugins.high_entropy_strings import HighEntropyStringsPlugin

    folded: re.Pattern[str] | None = None
    if isinstance(plugin, RegexBasedDetector):
        sources = list(plugin.denylist)
    elif isinstance(plugin, HighEntropyStringsPlugin):
        sources = [plugin.regex]  # quoted runs of its charset; the entropy test comes after
    elif isinstance(plugin, keyword.KeywordDetector):
        # Every keyword regex (for every file type) requires one of the keywords.
        words = "(" + "|".join(keyword.DENYLIST) + ")"
        regexes = [r for table in (*keyword.REGEX_BY_FILETYPE.values(),
                                   keyword.QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP)
                   for r in table]
        if not all(words in r.pattern for r in regexes):
            return None
        sources = [re.compile(words, re.IGNORECASE)]
        if _LOWER_WORDS.fullmatch(words):
            folded = re.compile(words, re.MULTILINE)
    else:
        return None
    if not all(_joinable(p) for p in sources):
        return None
    return [(re.compile(p.pattern, p.flags | re.MULTILINE), folded, _needle_search(needles(p)))
            for p in sources]


def _joinable(pattern: re.Pattern[str]) -> bool:
    """Whether ``pattern`` finds, in lines joined by "\\n", every match it finds in a line."""
    text = pattern.pattern
    if (not isinstance(text, str) or pattern.flags & re.DOTALL
            or _INLINE_DOTALL.search(text) or any(bad in text for bad in _REFUSED)):
        return False
    verbose = bool(pattern.flags & re.VERBOSE)
    return all(_safe_negative(_negative_body(text, m.end(), verbose))
               for m in _NEGATIVE.finditer(text))


def _safe_negative(body: str | None) -> bool:
    """Whether a negative lookaround body cannot match a line break."""
    return body is not None and (body in _AUDITED_NEGATIVE_BODIES
                                 or _SAFE_CLASS.fullmatch(body) is not None)


def _negative_body(text: str, start: int, verbose: bool) -> str | None:
    """The body of the lookaround opening just before ``start`` (verbose comments and
    whitespace dropped), or None when it does not close."""
    body: list[str] = []
    depth, i, in_class = 0, start, False
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            body.append(text[i:i + 2])
            i += 2
            continue
        if in_class:  # whitespace and "#" are literal in a class, even in verbose mode
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif verbose and char == "#":
            i = text.find("\n", i)
            if i < 0:
                return None
            continue
        elif verbose and char.isspace():
            i += 1
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                return "".join(body)
            depth -= 1
        body.append(char)
        i += 1
    return None
