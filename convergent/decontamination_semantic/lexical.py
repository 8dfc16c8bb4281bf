"""Lexical similarity in pure Python: normalized tokens, BM25 for the shortlist, and the
TF-IDF cosine the text stage uses when no embedding model is installed.

Normalization makes renaming cheap to see through: identifiers are split into their words
(``count_vowel_runs``, ``countVowelRuns`` -> count, vowel, run), words are lower-cased and
lightly stemmed, and English stop words and Python keywords are dropped.
"""

from __future__ import annotations

import keyword
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain, compress, repeat
from operator import le
from typing import cast

# Words of identifiers and prose: an upper-case run not followed by lower case (HTTP in
# HTTPServer), a capitalized or lower-case word, or a number (decimals kept whole).
_TOKEN = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+(?:\.[0-9]+)?")

_STOP_TEXT = """
a an and are as at be been but by can do does each either for from has have how i if in
into is it its itself may me must my no not of on one only or other our out over so some
such than that the their them then there these they this those to too up us was we were
what when where whether which while who whom why will with would you your also any all
given return returns write function should let get use using self cls none true false
def lambda pass elif else import assert yield nonlocal global
"""
STOP_WORDS = frozenset(_STOP_TEXT.split()) | frozenset(w.lower() for w in keyword.kwlist)

def stem(word: str) -> str:
    """A light suffix stripper (plural, -ing, -ed): enough to match runs/run, counting/count."""
    out = word
    if len(out) > 4 and out.endswith("ies"):
        out = out[:-3] + "y"
    elif len(out) > 4 and out.endswith(("ches", "shes", "sses", "xes", "zes")):
        out = out[:-2]
    elif len(out) > 3 and out.endswith("s") and not out.endswith(("ss", "us", "is")):
        out = out[:-1]
    if len(out) > 5 and out.endswith("ing"):
        out = out[:-3]
    elif len(out) > 4 and out.endswith("ed"):
        out = out[:-2]
    return out


def _normal(raw: str) -> str:
    """A raw token's normal form; "" when it is dropped (a stop word or one letter)."""
    word = raw.lower()
    if word.isdigit():
        return word
    if word in STOP_WORDS or len(word) < 2:
        return ""
    return stem(word)


# Raw token -> normal form: the vocabulary of code and prose is small, so after a warm-up
# nearly every token costs one dictionary lookup. Bounded, since text is untrusted.
_NORMAL: dict[str, str] = {}
_NORMAL_MAX = 500_000
# Whitespace-separated chunk -> its tokens. No token spans whitespace (a token is ASCII
# letters, digits and a decimal point), so a text's tokens are its chunks' tokens in
# order; chunks recur far more than whole texts ("return", "values):", "total += 1").
_CHUNKS: dict[str, tuple[str, ...]] = {}
_CHUNKS_MAX, _CHUNK_MAX_CHARS = 200_000, 64


def tokens(text: str) -> list[str]:
    """The normalized tokens of code or prose, in order."""
    chunks = text.split()
    parts = list(map(_CHUNKS.get, chunks))  # one C-level pass of lookups
    if None in parts:  # chunks not seen before: tokenize (and remember) them
        memo = _CHUNKS
        for i, part in enumerate(parts):
            if part is None:
                chunk = chunks[i]
                part = parts[i] = _chunk_tokens(chunk)
                if len(chunk) <= _CHUNK_MAX_CHARS:
                    if len(memo) >= _CHUNKS_MAX:
                        memo.clear()
                    memo[chunk] = part
    return list(chain.from_iterable(cast("list[tuple[str, ...]]", parts)))  # no None left


def _chunk_tokens(text: str) -> tuple[str, ...]:
    """The normalized tokens of text, by the token pattern (a chunk, or any text)."""
    raws = _TOKEN.findall(text)
    words = list(map(_NORMAL.get, raws))
    if None in words:  # raw tokens not seen before: normalize (and remember) them
        memo = _NORMAL
        for i, word in enumerate(words):
            if word is None:
                raw = raws[i]
                word = words[i] = _normal(raw)
                if len(memo) < _NORMAL_MAX:
                    memo[raw] = word
    return tuple(filter(None, words))  # "" is a dropped token


@dataclass
class BM25:
    """Okapi BM25 over a fixed set of documents, with each posting's weight precomputed.

    :meth:`matches` scores a query against every document sharing a token with it, as the
    harmonic mean (F) of two shares of the BM25 score: *coverage*, of the document's own
    score (every one of its tokens present), and *precision*, of the query's own score
    (a query of its distinct tokens, each once; a token no document has counts at the
    highest idf). A record that is about an item scores high on both; a long record that
    happens to contain a short item's few words scores high on coverage only. Tokens in
    more than ``max_df`` of the documents are not indexed (they name no item, and their
    long postings would cost every query), but still count in the query's own score.
    """

    k1: float = 1.2
    b: float = 0.75
    max_df: float = 0.3
    postings: dict[str, dict[int, float]] = field(default_factory=dict)
    self_scores: list[float] = field(default_factory=list)
    idf: dict[str, float] = field(default_factory=dict)
    unknown_idf: float = 0.0
    # The postings as (documents, weights) columns, for :meth:`matches`' inner loop.
    _columns: dict[str, tuple[tuple[int, ...], tuple[float, ...]]] = field(
        default_factory=dict, repr=False, compare=False)

    @classmethod
    def build(cls, documents: Sequence[Sequence[str]], k1: float = 1.2, b: float = 0.75,
              max_df: float = 0.3) -> BM25:
        index = cls(k1, b, max_df)
        n = len(documents)
        if n == 0:
            return index
        avgdl = sum(len(d) for d in documents) / n or 1.0
        df: Counter[str] = Counter()
        for doc in documents:
            df.update(set(doc))
        index.idf = {tok: math.log(1 + (n - d + 0.5) / (d + 0.5)) for tok, d in df.items()}
        index.unknown_idf = math.log(1 + (n - 0.5) / 1.5)
        limit = max(1, int(max_df * n))
        index.self_scores = [0.0] * n
        for i, doc in enumerate(documents):
            norm = k1 * (1 - b + b * len(doc) / avgdl)
            for tok, tf in Counter(doc).items():
                if df[tok] > limit:
                    continue
                weight = index.idf[tok] * tf * (k1 + 1) / (tf + norm)
                index.postings.setdefault(tok, {})[i] = weight
                index.self_scores[i] += weight
        return index

    def scores(self, query: Iterable[str]) -> dict[int, float]:
        """Raw BM25 score per document that shares a token with the query (summed in token
        order, so a score is the same float in every process, whatever its hash seed)."""
        acc: dict[int, float] = {}
        postings = self.postings
        for tok in sorted(set(query)):
            plist = postings.get(tok)
            if plist:
                for doc, weight in plist.items():
                    acc[doc] = acc.get(doc, 0.0) + weight
        return acc

    def coverage(self, query: Iterable[str]) -> dict[int, float]:
        """Per document sharing a token with the query: the share of its own score."""
        selfs = self.self_scores
        return {doc: score / selfs[doc] for doc, score in self.scores(query).items()
                if selfs[doc] > 0}

    def matches(self, query: Iterable[str], floor: float) -> list[tuple[float, int]]:
        """(F, document) for each document whose F reaches ``floor``, best first."""
        unique = set(query)
        columns = self._postings_columns()
        # Sorted: float sums in one order, so F (and a hit exactly at the floor) is the
        # same in every process, whatever its hash seed.
        indexed = sorted(unique & columns.keys())
        if not indexed:
            return []
        ordered = sorted(unique)
        own = sum(map(self.idf.get, ordered, repeat(self.unknown_idf)))
        selfs = self.self_scores
        acc = [0.0] * len(selfs)
        for tok in indexed:
            docs, weights = columns[tok]
            for doc, weight in zip(docs, weights, strict=True):
                acc[doc] += weight
        # F is the harmonic mean of coverage and precision, so at most twice precision
        # (min(1, score / own)): no document scoring under floor / 2 of ``own`` reaches
        # ``floor``, and those (most) are never scored. The margin
        # keeps float rounding from dropping a document exactly at the bound.
        least = 0.5 * floor * own * (1 - 1e-9) if floor > 0 else 0.0
        out = []
        # The documents at or over the bound, picked at C speed (no Python step per doc).
        for doc in compress(range(len(acc)), map(le, repeat(least), acc)):
            score = acc[doc]
            if score <= 0.0:  # shares no token with the query
                continue
            cov = score / selfs[doc]
            prec = score / own
            if prec > 1.0:
                prec = 1.0
            f = 2 * cov * prec / (cov + prec)
            if f >= floor:
                out.append((f, doc))
        out.sort(reverse=True)
        return out

    def _postings_columns(self) -> dict[str, tuple[tuple[int, ...], tuple[float, ...]]]:
        if len(self._columns) != len(self.postings):
            self._columns = {tok: (tuple(plist), tuple(plist.values()))
                             for tok, plist in self.postings.items()}
        return self._columns


@dataclass
class TfIdf:
    """Unit TF-IDF vectors (sublinear tf, smoothed idf) of a fixed set of documents, for
    the cosine of a query against each of them."""

    idf: dict[str, float] = field(default_factory=dict)
    default_idf: float = 1.0
    vectors: list[dict[str, float]] = field(default_factory=list)

    @classmethod
    def build(cls, documents: Sequence[Sequence[str]]) -> TfIdf:
        n = len(documents)
        df: Counter[str] = Counter()
        for doc in documents:
            df.update(set(doc))
        out = cls({tok: math.log((1 + n) / (1 + d)) + 1 for tok, d in df.items()},
                  math.log(1 + n) + 1)
        out.vectors = [out.vector(doc) for doc in documents]
        return out

    def vector(self, doc: Sequence[str]) -> dict[str, float]:
        weights = {tok: (1 + math.log(tf)) * self.idf.get(tok, self.default_idf)
                   for tok, tf in Counter(doc).items()}
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        return {tok: w / norm for tok, w in weights.items()}

    def cosine(self, query: dict[str, float], doc: int) -> float:
        target = self.vectors[doc]
        if len(query) > len(target):
            query, target = target, query
        # Shared tokens only, in the query's order: the same sum as over every token.
        return sum([w * target[tok] for tok, w in query.items() if tok in target], 0.0)


# What survives renaming in code: the methods and functions it calls, its string literals
# and its numbers (``.swapcase``, ``divmod(``, ``"aeiou"``, ``1440``).
_ATOM = re.compile(r"\.\s*([A-Za-z_]\w*)|\b([A-Za-z_]\w*)\s*\(|\"([^\"\n]{0,40})\"|"
                   r"'([^'\n]{0,40})'|\b([0-9]+)\b")


def code_atoms(code: str) -> list[str]:
    """The renaming-proof atoms of code: ``.method``, ``call(``, string contents, numbers."""
    out = []
    for method, call, dq, sq, number in _ATOM.findall(code):
        if method:
            out.append("." + method)
        elif call:
            out.append(call + "(")
        elif number:
            out.append(number)
        else:
            out.append("'" + (dq or sq))
    return out
