"""The one decontamination API: ``contaminated(root, config, records) -> findings``.

Every entry point asks this module whether records leak a benchmark or the frozen
hold-out: the recorder's screening at ``emit``, the ``decontamination`` gate (a thin
adapter that prints ``path:line: decontamination: <message>``), proposals, and the
dataset build (for experiences and external data alike). Three stages, cheapest first:

1. **n-gram** (:mod:`convergent.decontamination`): a shared 13-gram with an item;
   copies and light edits.
2. **text** (:mod:`convergent.decontamination_semantic`): task text whose similarity to
   an item's prompt is at or over a threshold (TF-IDF, and MiniLM when installed).
3. **functional**: a response that passes an item's own tests in the sandbox.

Stages 2 and 3 sit behind a BM25 prefilter: a record that resembles no item costs a
tokenization and a few dictionary lookups, and never loads the embedding model or runs
the sandbox. A record gets one finding per item it leaks, the n-gram stage's first. The
items the n-gram stage names are run functionally too: a response that fails an item's
own tests is a different problem on the same topic, and its shared phrases (a clean
"rolling min" beside HumanEval's rolling max) are not held against it. The thresholds
are ``[decontamination]`` keys of the repo config (see
:class:`convergent.decontamination_semantic.Settings`; defaults in
:data:`convergent.config.DEFAULT_CONFIG`). A check that cannot run raises
:class:`RepoError` (fail closed): callers refuse, they never pass an unchecked record.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Any

from convergent.decontamination import (
    DEFAULT_N,
    Benchmark,
    Match,
    NgramIndex,
    cache_path,
    configured_benchmarks,
    experience_fields,
)
from convergent.decontamination_semantic import (
    FUNCTIONAL,
    Finding,
    Screen,
    Settings,
    functional_cache_dir,
)
from convergent.decontamination_semantic.engine import semantic_index
from convergent.decontamination_semantic.functional import FunctionalCheck
from convergent.decontamination_semantic.items import configured_items
from convergent.errors import RepoError
from convergent.layout import CONFIG_FILE

NGRAM = "ngram"

__all__ = ["NGRAM", "Decontamination", "Finding", "contaminated", "external_record",
           "ngram_findings", "ngram_index", "screen_for"]

Config = Mapping[str, Any]
# Fields are joined with a newline, which normalization folds like any whitespace.
_SEPARATOR = "\n"
_INDEXES: dict[tuple[object, ...], NgramIndex] = {}
_SCREENS: dict[tuple[object, ...], Screen] = {}


def contaminated(root: Path, config: Config, records: Sequence[Mapping[str, Any]], *,
                 build: bool = False) -> list[Finding]:
    """Every finding for a batch of records, by record (``Finding.record`` is the index
    in ``records``), n-gram findings of a record first.

    ``build``: the dataset build's settings (``functional_build``, ``embeddings_build``:
    every item a response fits is run, and the embedding model is required). Raises
    :class:`RepoError` when the check cannot run (a configured benchmark is missing,
    the config is bad, the model is required and missing).
    """
    if not records:
        return []
    return _findings(*_prepared(root, config, build), records)


class Decontamination:
    """:func:`contaminated` for one records repo and config, called batch after batch (the
    recorder's screening at ``emit``): the benchmarks are collected once, as a recorder
    reads its config once, and each call re-checks their files (a stat each), so a changed
    benchmark or hold-out is screened against from the next batch on. RepoError as for
    :func:`contaminated`, when it is made or called."""

    def __init__(self, root: Path, config: Config, *, build: bool = False) -> None:
        self.root, self.config, self.build = root, config, build
        self.benchmarks = configured_benchmarks(root, config)
        self._state: tuple[tuple[object, ...], NgramIndex, Screen] | None = None

    def __call__(self, records: Sequence[Mapping[str, Any]]) -> list[Finding]:
        if not records:
            return []
        identities = tuple(_identity(b, DEFAULT_N) for b in self.benchmarks)
        state = self._state
        if state is None or state[0] != identities:
            index, screen = _prepared(self.root, self.config, self.build, self.benchmarks)
            state = self._state = (identities, index, screen)
        return _findings(state[1], state[2], records)


def _findings(index: NgramIndex, screen: Screen, records: Sequence[Mapping[str, Any]]
              ) -> list[Finding]:
    ngram = ngram_findings(index, records)
    named: dict[int, list[tuple[str, str]]] = {}
    for f in ngram:
        named.setdefault(f.record, []).append((f.benchmark, f.item_id))
    # The items the n-gram stage named are shortlisted for the functional stage too.
    semantic, settled = screen.screen_settled(records, named)
    if not ngram and not semantic:
        return []  # the usual case
    solved = {(f.record, f.benchmark, f.item_id) for f in semantic if f.stage == FUNCTIONAL}
    # A response run against an item's tests that fails them is a different problem on
    # the same topic, whatever phrases it shares with the item (as for the text stage).
    found = [f for f in ngram if (f.benchmark, f.item_id) not in settled.get(f.record, ())
             or (f.record, f.benchmark, f.item_id) in solved]
    kept = {(f.record, f.benchmark, f.item_id) for f in found}
    found += [f for f in semantic if (f.record, f.benchmark, f.item_id) not in kept]
    return sorted(found, key=lambda f: f.record)  # stable: the n-gram stage's first


# --- what is built once per process --------------------------------------------------------
#
# emit screens one small batch after another: the n-gram index and the screen a call
# needs are looked up in one step, by what decides them (the records repo, each
# benchmark's identity, the config's sections, compared by value), and only a change goes
# the long way (ngram_index and screen_for, each with its own per-content cache).

# The sections of a repo config the stages read (benchmarks, n, thresholds, sandbox limits).
_SECTIONS = ("decontamination", "sandbox")


@dataclass(frozen=True)
class _Prepared:
    key: tuple[object, ...]
    sections: tuple[object, ...]  # a private copy: the caller's config may change
    index: NgramIndex
    screen: Screen


_PREPARED: list[_Prepared] = []


def _prepared(root: Path, config: Config, build: bool,
              benchmarks: Sequence[Benchmark] | None = None) -> tuple[NgramIndex, Screen]:
    """The n-gram index and the screen for this repo and config, as :func:`ngram_index`
    and :func:`screen_for` would find them, at a fraction of the cost when nothing
    changed: the benchmarks' registration, one stat per benchmark file, a comparison.
    ``benchmarks``: those already collected (see :class:`Decontamination`)."""
    if benchmarks is None:
        benchmarks = configured_benchmarks(root, config)
    key = (str(root), build, tuple(_identity(b, DEFAULT_N) for b in benchmarks))
    sections = tuple(config.get(name) for name in _SECTIONS)
    for known in _PREPARED:
        if known.key == key and known.sections == sections:
            return known.index, known.screen
    index = ngram_index(root, config, benchmarks)
    screen = screen_for(root, config, benchmarks, build=build)
    if len(_PREPARED) >= 4:
        del _PREPARED[0]
    _PREPARED.append(_Prepared(key, copy.deepcopy(sections), index, screen))
    return index, screen


def external_record(prompt: str, completion: str) -> dict[str, Any]:
    """An external training item as the record it stands for (task, response)."""
    return {"kind": "experience", "task": prompt, "response": completion}


# --- the n-gram stage --------------------------------------------------------------------


def _ngram_size(config: Config) -> int:
    value = config.get("decontamination", {}).get("ngram", DEFAULT_N)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RepoError(f"{CONFIG_FILE}: [decontamination] ngram = {value!r}: "
                        "not a positive whole number")
    return value


def ngram_index(root: Path, config: Config,
                benchmarks: Sequence[Benchmark] | None = None) -> NgramIndex:
    """One n-gram index over every benchmark and the hold-out, built once per process per
    content (a changed benchmark or hold-out gets a new one; an unchanged one is neither
    rebuilt nor re-hashed per call)."""
    n = _ngram_size(config)
    benchmarks = configured_benchmarks(root, config) if benchmarks is None else benchmarks
    key = (n, tuple(_identity(b, n) for b in benchmarks))
    index = _INDEXES.get(key)
    if index is None:
        if len(_INDEXES) >= 8:
            _INDEXES.clear()
        index = _INDEXES[key] = NgramIndex.build(benchmarks, n)
    return index


def _identity(benchmark: Benchmark, n: int) -> tuple[object, ...]:
    """What names a benchmark's content: its file's path, size and mtime when it has one
    (a stat, not a read), else the content hash in its fingerprint file's name."""
    if benchmark.source is not None:
        st = benchmark.source.stat()
        return (benchmark.name, str(benchmark.source), st.st_size, st.st_mtime_ns)
    return (benchmark.name, str(cache_path(benchmark, n)))


def ngram_findings(index: NgramIndex, records: Sequence[Mapping[str, Any]]) -> list[Finding]:
    """One finding per (record, item) sharing an n-gram: the first such n-gram, where it
    is (field and character span), and how many more the item shares."""
    out = []
    for n, record in enumerate(records):
        fields = experience_fields(record)
        text = _SEPARATOR.join(value for _, value in fields)
        first: dict[tuple[str, str], Match] = {}
        counts: dict[tuple[str, str], int] = {}
        for match in index.find(text):
            key = (match.benchmark, match.item_id)
            first.setdefault(key, match)
            counts[key] = counts.get(key, 0) + 1
        if not first:
            continue
        # Start offset of each field in the joined text, to say where a match is.
        starts = list(accumulate((len(value) + len(_SEPARATOR) for _, value in fields),
                                 initial=0))
        for key, match in first.items():
            i = max(j for j in range(len(fields)) if starts[j] <= match.start)
            begin, end = match.start - starts[i], match.end - starts[i]
            count = counts[key]
            more = f" (and {count - 1} more of its {index.n}-grams)" if count > 1 else ""
            out.append(Finding(
                n, NGRAM, match.benchmark, match.item_id, fields[i][0],
                f"{fields[i][0]} [{begin}:{end}] shares the {index.n}-gram "
                f"\"{match.ngram}\" with benchmark {match.benchmark!r} item "
                f"{match.item_id!r}{more}"))
    return out


# --- the text and functional stages --------------------------------------------------------


def screen_for(root: Path, config: Config, benchmarks: Sequence[Benchmark] | None = None, *,
               build: bool = False, workers: int = 1) -> Screen:
    """The text + functional screen of a records repo: its benchmarks and hold-out, its
    settings (the dataset build's with ``build``), its sandbox limits and run cache.
    Built once per process per (content, settings); the index is shared."""
    from convergent.sandbox import SandboxLimits

    benchmarks = configured_benchmarks(root, config) if benchmarks is None else benchmarks
    identities = tuple(_identity(b, DEFAULT_N) for b in benchmarks)
    # The config's own keys, read (and checked) once per distinct config.
    quick = (str(root), build, workers, identities,
             json.dumps([config.get("decontamination"), config.get("sandbox")],
                        sort_keys=True, default=str))
    screen = _SCREENS.get(quick)
    if screen is not None:
        return screen
    settings = Settings.from_config(config, build=build)
    limits = SandboxLimits.from_config(config)
    directory = functional_cache_dir(root)
    key = (identities, settings, limits, str(directory), workers)
    screen = _SCREENS.get(key)
    if screen is None:
        items = configured_items(root, config, benchmarks)
        screen = Screen.create(semantic_index(items), settings,
                               FunctionalCheck(directory, limits), workers)
    if len(_SCREENS) >= 16:
        _SCREENS.clear()
    _SCREENS[key] = _SCREENS[quick] = screen
    return screen
