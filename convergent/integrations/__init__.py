"""Integrations for any Python agent: a context manager and a decorator.

```python
import convergent

with convergent.experience(task="Write add(a, b).", repo="records",
                           emitter="my-agent", model="my-model") as exp:
    code = my_agent.solve(exp.task)
    exp.respond(code)
    exp.verify_with_tests("def check(f):\\n    assert f(1, 2) == 3\\n", entry_point="add")
print(exp.record["verdict"]["verified"])
```

On a clean exit the block emits exactly one experience through the plugin manager's
``convergent_emit`` hook (so ``record_appended`` observers see it), with the verdict the
verifier gives. Nothing is emitted without a response and verification evidence
(``exp.skipped`` then says why), and nothing is emitted when the block raises: a crashed
agent produced no response worth verifying, and the exception propagates unchanged.

The LangChain callback handler lives in :mod:`convergent.integrations.langchain`
(extra ``integrations``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec

from convergent.errors import ConvergentError

P = ParamSpec("P")

CLAIM_MAX_CHARS = 120


class IntegrationError(ConvergentError):
    """An integration was used in a way that cannot produce one valid experience."""


class Experience:
    """One task, its response and the evidence to verify it; emitted by :meth:`emit`."""

    def __init__(self, task: str, *, repo: Path | str = ".", emitter: str = "python",
                 model: str = "unknown", origin: str = "self", claim: str | None = None,
                 confidence: float = 0.5, links: list[str] | None = None) -> None:
        self.task = task
        self.root = Path(repo).resolve()
        self.source = {"emitter": emitter, "model": model, "origin": origin}
        self.claim = claim
        self.confidence = confidence
        self.links = list(links or [])
        self.response: str | None = None
        self.evidence: dict[str, Any] | None = None
        self.record: dict[str, Any] | None = None
        self.skipped: str | None = None

    # -- what the agent tells us ----------------------------------------------------------

    def respond(self, response: str) -> None:
        """The agent's output for the task (for execution evidence: the program)."""
        self.response = response

    def verify_with_tests(self, tests: str, entry_point: str | None = None) -> None:
        """Execution evidence: run the response, then ``tests``, then
        ``check(entry_point)`` when an entry point is given (the HumanEval convention)."""
        self._expect_evidence("execution")
        evidence: dict[str, Any] = {"type": "execution", "language": "python", "tests": tests}
        if entry_point:
            evidence["entry_point"] = entry_point
        self.evidence = evidence

    def cite(self, source: str, quote: str) -> None:
        """Grounding evidence: cite ``quote`` from a registered source snapshot, named
        by ``source`` (``sha256:<hex>``) or given as its text. Call once per citation;
        every quote must be found.

        Nothing is stored here: a record cannot ground itself, so the snapshot must have
        been registered by another source (``convergent source add``, or
        :func:`convergent.sources.store_source` in an ingestion job) and committed
        before this experience; otherwise the verdict says what is missing.
        """
        from convergent.sources import SHA256_REF, snapshot_ref

        self._expect_evidence("grounding")
        ref = source if SHA256_REF.fullmatch(source) else snapshot_ref(source)
        if self.evidence is None:
            self.evidence = {"type": "grounding", "citations": []}
        self.evidence["citations"].append({"source": ref, "quote": quote})

    def _expect_evidence(self, etype: str) -> None:
        if self.evidence is not None and self.evidence["type"] != etype:
            raise IntegrationError(f"this experience already carries {self.evidence['type']} "
                                   f"evidence; one experience has one kind of evidence")

    # -- emitting -------------------------------------------------------------------------

    @property
    def verified(self) -> bool | None:
        """The verifier's verdict once emitted; None before (or when skipped)."""
        return None if self.record is None else bool(self.record["verdict"]["verified"])

    def draft(self) -> dict[str, Any]:
        """The draft record; IntegrationError when the response or evidence is missing."""
        if self.response is None:
            raise IntegrationError("no response: call exp.respond(output) first")
        if self.evidence is None:
            raise IntegrationError("no verification evidence: call exp.verify_with_tests(...) "
                                   "or exp.cite(...)")
        draft: dict[str, Any] = {
            "kind": "experience", "claim": self.claim or default_claim(self.task),
            "task": self.task, "response": self.response, "evidence": self.evidence,
            "confidence": self.confidence, "source": dict(self.source),
        }
        if self.links:
            draft["links"] = list(self.links)
        return draft

    def emit(self) -> dict[str, Any]:
        """Emit through the ``convergent_emit`` hook; returns the record (with its verdict)."""
        from convergent.plugins import load_plugins

        result = load_plugins().hook.convergent_emit(draft=self.draft(), repo=str(self.root))
        if result is None:
            raise IntegrationError("no plugin implements convergent_emit")
        self.record = dict(result)
        return self.record

    def emit_if_ready(self) -> dict[str, Any] | None:
        """Emit when a response and evidence are there; otherwise record why not in
        :attr:`skipped` and return None."""
        try:
            self.draft()
        except IntegrationError as exc:
            self.skipped = str(exc)
            return None
        return self.emit()


def default_claim(task: str) -> str:
    """One line for humans: the task's first line, shortened."""
    first = task.strip().splitlines()[0] if task.strip() else "(empty task)"
    if len(first) > CLAIM_MAX_CHARS:
        first = first[:CLAIM_MAX_CHARS - 3] + "..."
    return f"answered: {first}"


@contextmanager
def experience(task: str, *, repo: Path | str = ".", emitter: str = "python",
               model: str = "unknown", origin: str = "self", claim: str | None = None,
               confidence: float = 0.5, links: list[str] | None = None
               ) -> Iterator[Experience]:
    """Collect one experience in a ``with`` block; emit it on a clean exit.

    The block gets an :class:`Experience`: call ``respond(output)`` and
    ``verify_with_tests(tests, entry_point=...)`` or ``cite(source, quote)``. After
    the block ``exp.record`` holds the appended record (or None, with ``exp.skipped``
    saying why nothing was emitted). An exception in the block emits nothing.
    """
    exp = Experience(task, repo=repo, emitter=emitter, model=model, origin=origin,
                     claim=claim, confidence=confidence, links=links)
    yield exp
    exp.emit_if_ready()


def record_experience(*, tests: str, repo: Path | str = ".", entry_point: str | None = None,
                      emitter: str | None = None, model: str = "unknown",
                      confidence: float = 0.5
                      ) -> Callable[[Callable[P, str]], Callable[P, str]]:
    """Decorate a function that returns code for a task; each call emits one experience.

    The task is the call's first positional argument (or its ``task=`` keyword). The code
    it returns is verified with ``tests`` (and ``check(entry_point)``) and returned
    unchanged; an exception in the function emits nothing. ``emitter`` defaults to the
    function's qualified name.
    """
    def decorate(func: Callable[P, str]) -> Callable[P, str]:
        name = emitter or f"{func.__module__}.{func.__qualname__}"

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> str:
            with experience(_task_of(args, kwargs), repo=repo, emitter=name, model=model,
                            confidence=confidence) as exp:
                code = func(*args, **kwargs)
                exp.respond(code)
                exp.verify_with_tests(tests, entry_point=entry_point)
            return code

        return wrapper

    return decorate


def _task_of(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    task = kwargs["task"] if "task" in kwargs else (args[0] if args else None)
    if not isinstance(task, str):
        raise IntegrationError("@record_experience needs the task as the first positional "
                               "argument or the task= keyword, as a string")
    return task


__all__ = ["Experience", "IntegrationError", "experience", "record_experience"]
