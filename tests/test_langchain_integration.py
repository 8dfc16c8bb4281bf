"""The LangChain callback handler, against the real langchain-core and its fake chat models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from evidence import register

pytest.importorskip("langchain_core")

from langchain_core.language_models.fake_chat_models import FakeListChatModel  # noqa: E402
from langchain_core.output_parsers import StrOutputParser  # noqa: E402
from langchain_core.prompts import ChatPromptTemplate  # noqa: E402
from langchain_core.runnables import Runnable, RunnableLambda  # noqa: E402

from convergent.integrations.langchain import ConvergentCallbackHandler  # noqa: E402
from convergent.log import iter_raw_lines  # noqa: E402

# Not add(a, b): a + b is HumanEval/53, which decontamination refuses.
TASK = "Write times(a, b) returning a times b, plus one."
GOOD = "def times(a, b):\n    return a * b + 1\n"
BAD = "def times(a, b):\n    return a * b - 1\n"
TESTS = "def check(f):\n    assert f(1, 2) == 3\n    assert f(-1, 1) == 0\n"
EVIDENCE = {"convergent": {"tests": TESTS, "entry_point": "times"}}


def logged(root: Path) -> list[dict[str, Any]]:
    return [json.loads(raw) for _, _, raw in iter_raw_lines(root)]


def coder(*responses: str) -> Runnable[Any, str]:
    """prompt | fake chat model | string parser: a chain that writes code for a task."""
    prompt = ChatPromptTemplate.from_messages([("system", "Answer with Python code only."),
                                               ("human", "{task}")])
    return prompt | FakeListChatModel(responses=list(responses)) | StrOutputParser()


def test_runs_with_tests_land_verified_or_unverified(records_repo: Path) -> None:
    handler = ConvergentCallbackHandler(records_repo, emitter="tests/langchain")
    chain = coder(GOOD, BAD)
    config: Any = {"callbacks": [handler], "metadata": EVIDENCE}
    assert chain.invoke({"task": TASK}, config=config) == GOOD
    assert chain.invoke({"task": TASK}, config=config) == BAD
    records = logged(records_repo)
    assert records == handler.records
    assert [r["verdict"]["verified"] for r in records] == [True, False]
    first = records[0]
    assert first["task"] == TASK and first["response"] == GOOD
    assert first["evidence"] == {"type": "execution", "language": "python", "tests": TESTS,
                                 "entry_point": "times"}
    assert first["source"] == {"emitter": "tests/langchain", "model": "fake-list-chat-model",
                               "origin": "self"}


def test_runs_without_evidence_are_ignored(records_repo: Path) -> None:
    handler = ConvergentCallbackHandler(records_repo)
    coder(GOOD).invoke({"task": TASK}, config={"callbacks": [handler]})
    assert logged(records_repo) == [] and handler.records == []


def test_a_failing_run_emits_nothing(records_repo: Path) -> None:
    def explode(_: str) -> str:
        raise RuntimeError("tool failed")

    chain = coder(GOOD) | RunnableLambda(explode)
    handler = ConvergentCallbackHandler(records_repo)
    with pytest.raises(RuntimeError, match="tool failed"):
        chain.invoke({"task": TASK}, config={"callbacks": [handler], "metadata": EVIDENCE})
    assert logged(records_repo) == []


def test_evidence_in_the_chains_output(records_repo: Path) -> None:
    """A chain may return its own evidence: {"response", "tests", "entry_point"}."""
    def with_tests(code: str) -> dict[str, str]:
        return {"response": code, "tests": TESTS, "entry_point": "times"}

    chain = coder(GOOD) | RunnableLambda(with_tests)
    handler = ConvergentCallbackHandler(records_repo, model="my-model")
    chain.invoke({"task": TASK}, config={"callbacks": [handler]})
    (record,) = logged(records_repo)
    assert record["verdict"]["verified"] is True
    assert record["source"]["model"] == "my-model"


def test_citations_give_grounding_evidence(records_repo: Path) -> None:
    doc = "Rollback is one git revert of the promotion commit."
    register(records_repo, doc)
    meta = {"convergent": {"citations": [{"source_text": doc,
                                          "quote": "one git revert"}]}}
    handler = ConvergentCallbackHandler(records_repo)
    coder("By one git revert.").invoke("How is an adapter rolled back?",
                                       config={"callbacks": [handler], "metadata": meta})
    (record,) = logged(records_repo)
    assert record["task"] == "How is an adapter rolled back?"
    assert record["verdict"] == {"verified": True, "verifier": "grounding",
                                 "detail": "1 quote(s) found in their snapshots"}


def test_batched_runs_each_emit_one_experience(records_repo: Path) -> None:
    handler = ConvergentCallbackHandler(records_repo)
    tasks = [{"task": TASK}, {"task": TASK + " Name it times."}]
    coder(GOOD).batch(tasks, config={"callbacks": [handler], "metadata": EVIDENCE})
    records = logged(records_repo)
    assert sorted(r["task"] for r in records) == sorted(t["task"] for t in tasks)
    assert all(r["verdict"]["verified"] for r in records)
