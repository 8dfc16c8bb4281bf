"""convergent.integrations: the context manager and the decorator, on a real records repo."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from evidence import register

from convergent import plugins
from convergent.hookspecs import hookimpl
from convergent.integrations import IntegrationError, experience, record_experience
from convergent.log import iter_raw_lines

# Not add(a, b): a + b is HumanEval/53, which decontamination refuses.
TASK = "Write times(a, b) returning a times b, plus one."
GOOD = "def times(a, b):\n    return a * b + 1\n"
BAD = "def times(a, b):\n    return a * b - 1\n"
TESTS = "def check(f):\n    assert f(1, 2) == 3\n    assert f(-1, 1) == 0\n"
DOC = "Convergent records are appended to a Git-tracked log.\nRollback is one git revert."


def logged(root: Path) -> list[dict[str, Any]]:
    return [json.loads(raw) for _, _, raw in iter_raw_lines(root)]


@pytest.fixture
def observed() -> Iterator[list[dict[str, Any]]]:
    """Records that an observer plugin on ``convergent.plugins.pm`` was told about."""
    seen: list[dict[str, Any]] = []

    class Observer:
        @hookimpl
        def record_appended(self, record: dict[str, Any], repo: str) -> None:
            seen.append(record)

    observer = Observer()
    plugins.load_plugins()
    plugins.pm.register(observer)
    try:
        yield seen
    finally:
        plugins.pm.unregister(observer)


@pytest.mark.parametrize(("code", "verified"), [(GOOD, True), (BAD, False)],
                         ids=["passing", "failing"])
def test_context_manager_emits_one_verdicted_experience(
        records_repo: Path, observed: list[dict[str, Any]], code: str, verified: bool) -> None:
    with experience(task=TASK, repo=records_repo, emitter="tests/agent", model="tiny") as exp:
        exp.respond(code)
        exp.verify_with_tests(TESTS, entry_point="times")
    assert exp.record is not None and exp.verified is verified
    assert exp.record["verdict"]["verifier"] == "execution"
    assert exp.record["source"] == {"emitter": "tests/agent", "model": "tiny", "origin": "self"}
    assert exp.record["task"] == TASK and exp.record["response"] == code
    assert [r["id"] for r in observed] == [exp.record["id"]]
    assert logged(records_repo) == [exp.record]


def test_an_exception_emits_nothing(records_repo: Path, observed: list[dict[str, Any]]) -> None:
    with pytest.raises(RuntimeError, match="agent crashed"), \
            experience(task=TASK, repo=records_repo) as exp:
        exp.respond(GOOD)
        exp.verify_with_tests(TESTS, entry_point="times")
        raise RuntimeError("agent crashed")
    assert exp.record is None
    assert observed == [] and logged(records_repo) == []


def test_no_evidence_emits_nothing(records_repo: Path, observed: list[dict[str, Any]]) -> None:
    with experience(task=TASK, repo=records_repo) as exp:
        exp.respond(GOOD)
    assert exp.record is None and exp.verified is None
    assert exp.skipped is not None and "evidence" in exp.skipped
    assert observed == [] and logged(records_repo) == []


@pytest.mark.parametrize(("quote", "verified"), [
    ("Rollback is   one git revert.", True),
    ("Rollback needs a retrain.", False),
], ids=["quoted", "misquoted"])
def test_cite_gives_grounding_evidence(records_repo: Path, quote: str, verified: bool) -> None:
    ref = register(records_repo, DOC)
    with experience(task="How is an adapter rolled back?", repo=records_repo) as exp:
        exp.respond("With one git revert.")
        exp.cite(DOC, quote)
    assert exp.record is not None and exp.verified is verified
    citation = exp.record["evidence"]["citations"][0]
    assert citation["source"].startswith("sha256:") and citation["source"] == ref


def test_cite_of_a_source_nobody_registered_is_unverified(records_repo: Path) -> None:
    with experience(task="How is an adapter rolled back?", repo=records_repo) as exp:
        exp.respond("With one git revert.")
        exp.cite(DOC, "Rollback is one git revert.")
    assert exp.record is not None and exp.verified is False
    assert "missing" in exp.record["verdict"]["detail"]


def test_one_experience_has_one_kind_of_evidence(records_repo: Path) -> None:
    with pytest.raises(IntegrationError, match="one kind of evidence"), \
            experience(task=TASK, repo=records_repo) as exp:
        exp.verify_with_tests(TESTS)
        exp.cite(DOC, "Rollback")
    assert logged(records_repo) == []


def test_decorator_emits_per_call(records_repo: Path, observed: list[dict[str, Any]]) -> None:
    @record_experience(repo=records_repo, tests=TESTS, entry_point="times", model="tiny")
    def solve(task: str, *, wrong: bool = False) -> str:
        return BAD if wrong else GOOD

    assert solve(TASK) == GOOD
    assert solve(task=TASK, wrong=True) == BAD
    assert [r["verdict"]["verified"] for r in observed] == [True, False]
    assert observed[0]["source"]["emitter"].endswith("solve")
    assert observed[0]["claim"].startswith("answered: Write times")
    assert len(logged(records_repo)) == 2


def test_decorator_emits_nothing_when_the_function_raises(
        records_repo: Path, observed: list[dict[str, Any]]) -> None:
    @record_experience(repo=records_repo, tests=TESTS, entry_point="times")
    def solve(task: str) -> str:
        raise ValueError("no idea")

    with pytest.raises(ValueError, match="no idea"):
        solve(TASK)
    assert observed == [] and logged(records_repo) == []


def test_convergent_experience_is_reexported_lazily() -> None:
    """``convergent.experience`` works, and ``import convergent`` alone stays light."""
    probe = ("import sys, convergent\n"
             "assert 'convergent.integrations' not in sys.modules\n"
             "from convergent.integrations import experience, record_experience\n"
             "assert convergent.experience is experience\n"
             "assert convergent.record_experience is record_experience\n"
             "heavy = {'torch', 'transformers', 'langchain_core', 'pluggy', 'git'}\n"
             "assert not heavy & set(sys.modules), heavy & set(sys.modules)\n")
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)
