"""Needles of a regex: lower-case ASCII strings one of which every match of it contains.

:func:`needles` reads a compiled pattern's parse tree (the ``re`` module's own parser,
so verbose mode, escapes and inline flags are read exactly as ``re`` reads them) and
derives a set of literal strings such that **every** string the pattern can match
contains at least one of them, lower-cased. A line whose lowered text holds none of a
pattern's needles cannot hold a match of it, so a plain substring search (C speed) can
stand in for the regex on most lines, and the regex runs only where a needle is.

Sound by construction, per node of the tree, of two facts:

- ``exact``: a finite set holding every string the node can match (a literal; a small
  character class; an alternation or a bounded repeat of such; a concatenation of such,
  by cross product; zero-width assertions match ""); None when unknown or too big.
- ``needles``: a set one of whose strings every match of the node contains (an exact set
  without "" is one; a concatenation has the needles of any one of its parts; an
  alternation the union of its branches'; a repeat of at least once its body's); None
  when no such set is known.

Anything not understood (back-references, wildcards, negated classes, categories,
non-ASCII literals) is "unknown", which only ever drops a requirement: the result can
be weaker than it could be, never wrong. Lowering is sound for ASCII text: a
case-sensitive match lowered is a match of the lowered needle, and an ASCII-only
case-insensitive match of an ASCII literal is its lower case. Non-ASCII text folds in
other ways (``ſ`` matches ``s``, the Kelvin sign ``k``), so callers must not apply
needles to it: they send non-ASCII lines to the regex itself.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser  # type: ignore[attr-defined]
from typing import Any

# Bounds on the sets built, so a pattern of many small alternations stays cheap to read.
_MAX_EXACT = 256
_MAX_CLASS = 16  # widest character range expanded into its characters
_MAX_REPEAT = 4  # most repetitions of an exact body expanded


@dataclass(frozen=True)
class _Info:
    exact: frozenset[str] | None = None
    needles: frozenset[str] | None = None


_UNKNOWN = _Info()
_EMPTY = _Info(frozenset({""}))


def needles(pattern: re.Pattern[str]) -> frozenset[str] | None:
    """Lower-case ASCII strings one of which every match of ``pattern`` contains; None
    when no such set is known (every line must then be searched with the pattern)."""
    if not isinstance(pattern.pattern, str):
        return None
    try:
        tree = _parser.parse(pattern.pattern, pattern.flags)
    except (re.error, RecursionError):  # compiled already; never expected
        return None
    found = _sequence(list(tree)).needles
    if not found or "" in found or not all(n.isascii() for n in found):
        return None
    # A needle holding another is implied by it: the shorter one alone is searched.
    return frozenset(n for n in found if not any(m != n and m in n for m in found))


def _exact_needles(exact: frozenset[str] | None) -> _Info:
    if exact is not None and len(exact) > _MAX_EXACT:
        exact = None
    return _Info(exact, exact if exact is not None and "" not in exact else None)


def _char(code: int) -> frozenset[str] | None:
    char = chr(code)
    return frozenset({char.lower()}) if char.isascii() else None


def _node(op: Any, av: Any) -> _Info:
    if op is sre.LITERAL:
        return _exact_needles(_char(av))
    if op is sre.IN:
        return _exact_needles(_class(av))
    if op in (sre.AT, sre.ASSERT, sre.ASSERT_NOT):
        return _EMPTY  # zero-width: adds nothing to what is matched
    if op is sre.SUBPATTERN:
        return _sequence(list(av[-1]))
    if op is sre.ATOMIC_GROUP:
        return _sequence(list(av))
    if op is sre.BRANCH:
        return _branch([_sequence(list(branch)) for branch in av[1]])
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
        low, high, body = av
        return _repeat(low, high, _sequence(list(body)))
    return _UNKNOWN  # ANY, NOT_LITERAL, CATEGORY, GROUPREF, GROUPREF_EXISTS ...


def _class(items: Any) -> frozenset[str] | None:
    chars: set[str] = set()
    for op, av in items:
        if op is sre.LITERAL:
            one = _char(av)
            if one is None:
                return None
            chars |= one
        elif op is sre.RANGE:
            low, high = av
            if high - low >= _MAX_CLASS or not chr(high).isascii():
                return None
            chars |= {chr(c).lower() for c in range(low, high + 1)}
        else:  # NEGATE, CATEGORY: too many characters to list
            return None
    return frozenset(chars)


def _branch(infos: list[_Info]) -> _Info:
    exact: frozenset[str] | None = None
    if all(info.exact is not None for info in infos):
        exact = frozenset().union(*(info.exact or () for info in infos))
    info = _exact_needles(exact)
    if info.needles is None and all(i.needles for i in infos):
        return _Info(info.exact, frozenset().union(*(i.needles or () for i in infos)))
    return info


def _repeat(low: int, high: int, body: _Info) -> _Info:
    if body.exact is not None and high <= _MAX_REPEAT:
        exact: set[str] = set()
        power = {""}
        for count in range(high + 1):
            if count >= low:
                exact |= power
            if count < high:
                if len(exact) + len(power) * len(body.exact) > _MAX_EXACT:
                    break
                power = {a + b for a in power for b in body.exact}
        else:
            info = _exact_needles(frozenset(exact))
            if info.needles is not None or low == 0:
                return info
    if low >= 1 and body.needles:
        return _Info(None, body.needles)  # the body is matched at least once
    return _UNKNOWN


def _sequence(items: list[tuple[Any, Any]]) -> _Info:
    infos = [_node(op, av) for op, av in items]
    candidates = [info.needles for info in infos if info.needles]
    # Runs of parts with exact sets: their cross product is the exact set of the run.
    whole: frozenset[str] | None = None
    for start in range(len(infos)):
        product: set[str] = {""}
        for end in range(start, len(infos)):
            exact = infos[end].exact
            if exact is None or len(product) * len(exact) > _MAX_EXACT:
                break
            product = {a + b for a in product for b in exact}
            if "" not in product:
                candidates.append(frozenset(product))
            if start == 0 and end == len(infos) - 1:
                whole = frozenset(product)
    if not infos:
        whole = frozenset({""})
    best = max(candidates, key=_selectivity, default=None)
    return _Info(whole, best)


def _selectivity(found: frozenset[str] | None) -> tuple[int, int]:
    """Longer needles first (rarer in text), then fewer of them."""
    assert found
    return (min(len(n) for n in found), -len(found))


def trie(needles: set[str] | frozenset[str]) -> str:
    """A regex that finds a needle wherever one of ``needles`` is, as a trie of
    alternations (a search fails at the first character no needle has there, instead of
    trying each needle in turn). A needle another one starts with ends the match there:
    where the longer one is, so is the shorter."""
    root: dict[str, Any] = {}
    for needle in needles:
        node = root
        for char in needle:
            node = node.setdefault(char, {})
        node[""] = {}  # a needle ends here

    def alternation(node: dict[str, Any]) -> str:
        if "" in node:
            return ""
        parts = [re.escape(char) + alternation(child) for char, child in sorted(node.items())]
        if len(parts) <= 1:
            return "".join(parts)
        return "(?:" + "|".join(parts) + ")"

    return alternation(root)


def lines_holding(search: re.Pattern[str], lowered: str, starts: list[int]) -> list[int]:
    """Indexes of the lines of ``lowered`` (lines joined by "\n", starting at ``starts``)
    that hold a match of ``search``, in order."""
    found = []
    # One hit per line: the search goes on at the next line's start. Sound, as a search
    # from before a needle finds a hit at or before it.
    match = search.search(lowered)
    while match is not None:
        line = bisect_right(starts, match.start()) - 1
        found.append(line)
        match = search.search(lowered, starts[line + 1])
    return found
