"""Screen experiences against benchmark and hold-out items: shortlist, text, functional.

Per record, in order of cost:

1. **Prefilter** (pure Python, always): the record's tokens (claim, task, response,
   tests; see :mod:`.lexical`) against every item by BM25, scored as the harmonic mean of
   the share of the item's weight the record has and the share of the record's weight the
   item explains. Items at or over ``floor`` (the best ``shortlist`` of them), and items
   whose entry point the response defines by name, are the shortlist. Most records, which
   resemble nothing, stop here: a tokenization and a few dictionary lookups.
2. **Shortlist**, for a record past the prefilter: plus the ``shortlist`` items whose
   solutions' code atoms (calls, methods, strings, numbers: what renaming leaves) match
   the response best among those its functions fit, and, with the embedding model, the
   ``shortlist`` nearest items by embedding.
3. **Text stage**: the record's prose (task, claim, the response's docstrings and
   comments, or all of the response when it is not Python) against each shortlisted
   item's prompt, by TF-IDF cosine always and by MiniLM cosine when the model is in use.
   A score at or over the threshold is refused, naming the item and the score. Records
   with code get the ``*_threshold`` keys, and no text refusal for an item the functional
   stage settled (it ran the response against the item's tests: a solution is refused
   there, a failure shows a different problem, whatever the text says); records without
   code, whose text is all there is, get the ``*_threshold_prose`` keys.
4. **Functional stage**: the response against the shortlisted items' own tests (or, with
   ``functional = "sweep"``, every item its functions fit), see :mod:`.functional`. A
   function that passes them is a solution of the item and is refused; a run that gives
   no answer is refused too (fail closed).
"""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from convergent.decontamination_semantic import embedding
from convergent.decontamination_semantic.functional import (
    Function,
    FunctionalCheck,
    compiled_module,
    fitting,
    module_functions,
)
from convergent.decontamination_semantic.items import Item, item_text, prompt_text
from convergent.decontamination_semantic.lexical import BM25, TfIdf, code_atoms, tokens
from convergent.errors import RepoError
from convergent.layout import CONFIG_FILE
from convergent.records import Record

if TYPE_CHECKING:
    import numpy as np

TEXT = "text"
FUNCTIONAL = "functional"
EMBEDDING = "embedding"
LEXICAL = "lexical"


SHORTLIST, SWEEP, OFF = "shortlist", "sweep", "off"


@dataclass(frozen=True)
class Settings:
    """The ``[decontamination]`` keys of the semantic stages (see :meth:`from_config`).

    ``functional``: "shortlist" runs the response against its shortlisted items only;
    "sweep" against every item its functions fit (one sandbox run per record, whatever
    the record looks like); "off". ``embeddings``: "auto" adds the embedding text stage
    when the model is installed, "required" refuses to screen without it, "off".
    """

    shortlist: int = 5
    floor: float = 0.2
    semantic_threshold: float = 0.80
    semantic_threshold_prose: float = 0.65
    lexical_threshold: float = 0.55
    lexical_threshold_prose: float = 0.65
    functional: str = SHORTLIST
    embeddings: str = "auto"

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, build: bool = False) -> Settings:
        """The settings of a records repo's config; ``build``: for the dataset build,
        where training data is decided, whose ``functional_build`` defaults to "sweep"
        (every item, one sandbox run per record, cached) and ``embeddings_build`` to
        "required" (without the model, prose paraphrases go all but unseen)."""
        table = config.get("decontamination", {})
        d = cls()
        key = "functional_build" if build else "functional"
        functional = table.get(key, SWEEP if build else d.functional)
        embeddings_key = "embeddings_build" if build else "embeddings"
        embeddings = table.get(embeddings_key, "required" if build else d.embeddings)
        if isinstance(functional, bool):
            functional = SHORTLIST if functional else OFF

        def number(name: str, default: float) -> float:
            value = table.get(name, default)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise RepoError(f"{CONFIG_FILE}: [decontamination] {name} = {value!r}: "
                                "not a number")
            return float(value)

        out = cls(shortlist=int(number("shortlist", d.shortlist)),
                  floor=number("shortlist_floor", d.floor),
                  semantic_threshold=number("semantic_threshold", d.semantic_threshold),
                  semantic_threshold_prose=number("semantic_threshold_prose",
                                                  d.semantic_threshold_prose),
                  lexical_threshold=number("lexical_threshold", d.lexical_threshold),
                  lexical_threshold_prose=number("lexical_threshold_prose",
                                                 d.lexical_threshold_prose),
                  functional=str(functional), embeddings=str(embeddings))
        if out.functional not in (SHORTLIST, SWEEP, OFF):
            raise RepoError(f"{CONFIG_FILE}: [decontamination] {key} = "
                            f"{out.functional!r}: use \"shortlist\", \"sweep\" or \"off\"")
        if out.embeddings not in ("auto", "off", "required"):
            raise RepoError(f"{CONFIG_FILE}: [decontamination] {embeddings_key} = "
                            f"{out.embeddings!r}: use \"auto\", \"off\" or \"required\"")
        if out.shortlist < 1:
            raise RepoError(f"{CONFIG_FILE}: [decontamination] shortlist must be at least 1")
        return out


@dataclass(frozen=True)
class Finding:
    """Why record ``record`` (its index in the screened batch) is refused."""

    record: int
    stage: str  # TEXT or FUNCTIONAL
    benchmark: str
    item_id: str
    field: str  # the record field that matched: "task" or "response"
    message: str
    score: float | None = None  # the text stage's similarity


@dataclass
class Candidate:
    item: int  # index into the index's items
    lexical: float = 0.0  # TF-IDF cosine of the record's text and the item's prompt
    semantic: float | None = None  # embedding cosine, when the model is in use


@dataclass
class SemanticIndex:
    """Every item, its BM25 postings, prompt vectors, and (lazily) prompt embeddings."""

    items: list[Item]
    bm25: BM25  # over each item's prompt, solution and tests
    atoms: BM25  # over the code atoms of each item's solution
    prompts: TfIdf
    by_name: dict[str, list[int]]
    prompt_texts: list[str]
    position: dict[tuple[str, str], int] = field(default_factory=dict)  # (bench, id) -> i
    _embeddings: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def build(cls, items: Sequence[Item]) -> SemanticIndex:
        items = list(items)
        texts = [prompt_text(item) for item in items]
        by_name: dict[str, list[int]] = {}
        for i, item in enumerate(items):
            if item.entry_point:
                by_name.setdefault(item.entry_point, []).append(i)
        return cls(items, BM25.build([tokens(item_text(item)) for item in items]),
                   BM25.build([code_atoms(item.solution) for item in items]),
                   TfIdf.build([tokens(t) for t in texts]), by_name, texts,
                   position={(item.benchmark, item.item_id): i
                             for i, item in reversed(list(enumerate(items)))})

    def embeddings(self) -> np.ndarray:
        if self._embeddings is None:
            self._embeddings = embedding.embed_cached(self.prompt_texts)
        return self._embeddings


_INDEXES: dict[str, SemanticIndex] = {}


def semantic_index(items: Sequence[Item]) -> SemanticIndex:
    """The index of these items, built once per process per content."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(f"{item.key}\0{item.digest}\0{item.solution}\n".encode(
            "utf-8", "surrogatepass"))
    key = digest.hexdigest()
    index = _INDEXES.get(key)
    if index is None:
        if len(_INDEXES) >= 4:
            _INDEXES.clear()
        index = _INDEXES[key] = SemanticIndex.build(items)
    return index


# --- what a record says ----------------------------------------------------------------


def record_fields(record: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """(claim, task, response, tests) of an experience, "" for what is missing."""
    tests = Record(record).evidence.get("tests")

    def text(value: object) -> str:
        return value if isinstance(value, str) else ""

    return (text(record.get("claim")), text(record.get("task")), text(record.get("response")),
            text(tests))


_DEF_NAME = re.compile(r"^(?:async\s+)?def\s+([A-Za-z_][A-Za-z0-9_]*)", re.MULTILINE)
_COMMENT = re.compile(r"#[^\n]*")


def prose(task: str, claim: str, response: str, docstrings: Sequence[str] | None) -> str:
    """The record's natural-language text: task, claim, and the response's docstrings
    (``docstrings``, see :func:`code_facts`) and comments (the whole response when it is
    not Python: ``docstrings`` is None)."""
    if docstrings is None:
        return "\n".join((task, claim, response))
    parts = [task, claim, *docstrings]
    parts.extend(c.lstrip("# ") for c in _COMMENT.findall(response))
    return "\n".join(p for p in parts if p)


CodeFacts = tuple[list[Function] | None, tuple[str, ...] | None]
# Responses recur (the same program in many records): what one parse of a response
# shows is kept for the next, for responses up to this size and this many of them.
_FACTS: dict[str, CodeFacts] = {}
_FACTS_MAX, _FACTS_MAX_CHARS = 1024, 65_536


def code_facts(response: str) -> CodeFacts:
    """(module-level functions, docstrings) of a response, from one parse; (None, None)
    when it does not compile. The caller must not change the lists."""
    facts = _FACTS.get(response)
    if facts is None:
        tree = compiled_module(response)
        if tree is None:
            facts = (None, None)
        else:
            docs = []
            for node in ast.walk(tree):
                if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef
                              | ast.ClassDef):
                    doc = ast.get_docstring(node, clean=True)
                    if doc:
                        docs.append(doc)
            facts = (module_functions(tree), tuple(docs))
        if len(response) <= _FACTS_MAX_CHARS:
            if len(_FACTS) >= _FACTS_MAX:
                _FACTS.clear()
            _FACTS[response] = facts
    return facts


# --- the screen --------------------------------------------------------------------------


@dataclass
class Screen:
    """Screens batches of records against one index with fixed settings.

    ``functional`` is the sandbox runner with its cache (None: the functional stage is
    off). ``use_embeddings`` is decided once, from the settings and what is installed.
    The lexical text stage always runs; the embedding one adds to it, so a machine with
    the model refuses everything one without it does, and more.
    """

    index: SemanticIndex
    settings: Settings = field(default_factory=Settings)
    functional: FunctionalCheck | None = None
    use_embeddings: bool = False
    workers: int = 1  # functional runs in flight at once
    shortlisted: int = 0  # records that got past the prefilter, over this screen's life

    @classmethod
    def create(cls, index: SemanticIndex, settings: Settings,
               functional: FunctionalCheck | None, workers: int = 1) -> Screen:
        if settings.embeddings == "required" and not embedding.available():
            raise RepoError(f"{CONFIG_FILE}: [decontamination] embeddings = \"required\", "
                            "but the embedding model is not installed: "
                            "pip install 'convergent[embeddings]'")
        use = settings.embeddings != "off" and embedding.available()
        return cls(index, settings, None if settings.functional == OFF else functional, use,
                   workers)

    def prefilter(self, record: Mapping[str, Any]) -> list[Candidate]:
        """The lexical shortlist of one record: cheap, and empty for most records.

        The ``shortlist`` items of best BM25 F (see :meth:`.lexical.BM25.matches`) at or
        over ``floor`` that share a word (not only numbers) with the record, and every
        item whose entry point the response defines by name.
        """
        return self._prefilter(record_fields(record))

    def _prefilter(self, fields: tuple[str, str, str, str]) -> list[Candidate]:
        claim, task, response, tests = fields
        query = tokens("\n".join((claim, task, response, tests)))
        matches = self.index.bm25.matches(query, self.settings.floor)
        if matches:
            # Numbers alone name no item ("123" in a record and in an item's tests): a
            # match must share a word. (On the corpus this drops no leak's item.)
            postings = self.index.bm25.postings
            words = [postings[t] for t in set(query) if t in postings and not t.isdigit()]
            matches = [(f, i) for f, i in matches if any(i in docs for docs in words)]
        chosen = dict.fromkeys(i for _, i in matches[:self.settings.shortlist])
        for name in _DEF_NAME.findall(response):
            chosen.update(dict.fromkeys(self.index.by_name.get(name, ())))
        return [Candidate(i) for i in chosen]

    def _add_code_neighbours(self, response: str, functions: list[Any] | None,
                             shortlist: list[Candidate]) -> None:
        """For a shortlisted record with code: the ``shortlist`` runnable items its
        functions fit whose solutions' code atoms score best against its own (the atoms
        survive renaming: calls, methods, strings and numbers)."""
        if not functions:
            return
        known = {c.item for c in shortlist}
        scored = self.index.atoms.scores(code_atoms(response))
        ranked = sorted(((c, i) for i, c in scored.items() if i not in known), reverse=True)
        added = 0
        for _c, i in ranked:
            item = self.index.items[i]
            if item.runnable and fitting(functions, item):
                shortlist.append(Candidate(i))
                added += 1
                if added == self.settings.shortlist:
                    break

    def screen(self, records: Sequence[Mapping[str, Any]]) -> list[Finding]:
        """Every finding for a batch of records, in record order."""
        return self.screen_settled(records)[0]

    def screen_settled(self, records: Sequence[Mapping[str, Any]],
                       extra: Mapping[int, Sequence[tuple[str, str]]] | None = None
                       ) -> tuple[list[Finding], dict[int, set[tuple[str, str]]]]:
        """:meth:`screen`, plus per record the (benchmark, item) pairs the functional stage
        settled: it ran the response against their tests (a solution is refused; a
        failure shows a different problem). ``extra``: items to shortlist for a record
        whatever the prefilter says (those another stage named)."""
        fields = [record_fields(record) for record in records]  # (claim, task, response, tests)
        shortlists = [self._prefilter(f) for f in fields]
        for n, keys in (extra or {}).items():
            known = {c.item for c in shortlists[n]}
            shortlists[n].extend(Candidate(i) for i in dict.fromkeys(
                self.index.position[k] for k in keys if k in self.index.position)
                if i not in known)
        hits = [n for n, shortlist in enumerate(shortlists) if shortlist]
        self.shortlisted += len(hits)
        sweep = self.functional is not None and self.settings.functional == SWEEP
        if not hits and not sweep:
            return [], {}  # the usual case: no record resembles any item
        coded = [n for n, f in enumerate(fields) if _DEF_NAME.search(f[2])] if sweep else hits
        facts = {n: code_facts(fields[n][2]) for n in sorted(set(hits) | set(coded))}
        parsed = {n: functions for n, (functions, _) in facts.items()}
        for n in hits:
            self._add_code_neighbours(fields[n][2], parsed[n], shortlists[n])
        self._score_texts(hits, {n: prose(fields[n][1], fields[n][0], fields[n][2], facts[n][1])
                                 for n in hits}, shortlists)
        coded_now = [n for n, functions in parsed.items()
                     if self.functional is not None and functions]

        def run(n: int) -> tuple[list[Finding], set[int]]:
            functions = parsed[n]
            assert functions
            return self._functional_findings(n, fields[n][2], functions, shortlists[n], sweep)

        if self.workers > 1 and len(coded_now) > 1:
            # The work is in sandbox subprocesses: threads overlap them.
            with ThreadPoolExecutor(self.workers) as pool:
                ran = dict(zip(coded_now, pool.map(run, coded_now), strict=True))
        else:
            ran = {n: run(n) for n in coded_now}
        findings: list[Finding] = []
        settled: dict[int, set[tuple[str, str]]] = {}
        for n, functions in parsed.items():
            found, tried = ran.get(n, ([], set()))
            findings.extend(found)
            findings.extend(self._text_findings(n, shortlists[n], tried, bool(functions)))
            items = self.index.items
            settled[n] = {(items[i].benchmark, items[i].item_id) for i in tried}
        return findings, settled

    def _score_texts(self, hits: list[int], texts: dict[int, str],
                     shortlists: list[list[Candidate]]) -> None:
        if not hits:
            return
        prompts = self.index.prompts
        if self.use_embeddings:
            vectors = embedding.embed([texts[n] for n in hits])
            sims = vectors @ self.index.embeddings().T
            k = self.settings.shortlist
            for row, n in enumerate(hits):
                known = {c.item for c in shortlists[n]}
                for i in sims[row].argsort()[::-1][:k]:
                    if int(i) not in known:
                        shortlists[n].append(Candidate(int(i)))
                for c in shortlists[n]:
                    c.semantic = float(sims[row, c.item])
        for n in hits:
            query = prompts.vector(tokens(texts[n]))
            for c in shortlists[n]:
                c.lexical = prompts.cosine(query, c.item)

    def _text_findings(self, n: int, shortlist: list[Candidate], tried: set[int],
                       has_code: bool) -> list[Finding]:
        """Text at or over a threshold is refused. A record with code gets the higher
        threshold, and none for an item the functional stage settled (``tried``): it
        refused the response as a solution, or showed a different problem, whatever the
        text says. A record without code has only its text to go by."""
        s = self.settings
        semantic = s.semantic_threshold if has_code else s.semantic_threshold_prose
        lexical = s.lexical_threshold if has_code else s.lexical_threshold_prose
        out = []
        for c in shortlist:
            if c.item in tried:
                continue
            if c.semantic is not None and c.semantic >= semantic:
                method, score, threshold = EMBEDDING, c.semantic, semantic
            elif c.lexical >= lexical:
                method, score, threshold = LEXICAL, c.lexical, lexical
            else:
                continue
            item = self.index.items[c.item]
            out.append(Finding(
                n, TEXT, item.benchmark, item.item_id, "task",
                f"task reads like benchmark {item.benchmark!r} item {item.item_id!r} "
                f"({method} similarity {score:.2f} >= {threshold:.2f})", round(score, 4)))
        return out

    def _functional_findings(self, n: int, response: str, functions: list[Any],
                             shortlist: list[Candidate], sweep: bool
                             ) -> tuple[list[Finding], set[int]]:
        """Findings of the functional stage, and the items it settled: the response was
        run against their tests and solves them (refused here) or does not (a different
        problem, whatever its text says)."""
        assert self.functional is not None
        pool = range(len(self.index.items)) if sweep else [c.item for c in shortlist]
        targets, position = [], {}
        for i in pool:
            item = self.index.items[i]
            names = fitting(functions, item) if item.runnable else []
            if names:
                targets.append((item, names))
                position[item.key] = i
        run = self.functional.sweep if sweep else self.functional.outcomes
        out = []
        settled: set[int] = set()
        unchecked: list[tuple[Item, str]] = []
        for key, outcome in run(response, targets).items():
            item = self.index.items[position[key]]
            if outcome.passed:
                settled.add(position[key])
                passing = ", ".join(repr(name) for name in outcome.passed)
                out.append(Finding(n, FUNCTIONAL, item.benchmark, item.item_id, "response",
                                   f"response function {passing} passes the tests of "
                                   f"benchmark {item.benchmark!r} item {item.item_id!r}: "
                                   "it is a solution of that item"))
            elif outcome.error:
                unchecked.append((item, outcome.error))
            else:
                settled.add(position[key])
        if unchecked:  # fail closed, in one finding: the first item and how many more
            item, error = unchecked[0]
            more = f" (and {len(unchecked) - 1} more items)" if len(unchecked) > 1 else ""
            out.append(Finding(n, FUNCTIONAL, item.benchmark, item.item_id, "response",
                               f"response could not be checked against benchmark "
                               f"{item.benchmark!r} item {item.item_id!r}{more}: {error}"))
        return out, settled

