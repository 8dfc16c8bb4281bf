"""A LangChain callback handler that emits a verified experience when a run ends.

```python
from convergent.integrations.langchain import ConvergentCallbackHandler

handler = ConvergentCallbackHandler(repo="records", emitter="my-chain")
chain.invoke({"task": "Write add(a, b)."}, config={
    "callbacks": [handler],
    "metadata": {"convergent": {"tests": "def check(f):\\n    assert f(1, 2) == 3\\n",
                                "entry_point": "add"}},
})
```

The contract, for the outermost run the handler sees (a run whose parent it never saw):

- **task**: the run's input when it is a string, else its ``task`` key (then ``input``,
  ``question``), else ``metadata["convergent"]["task"]``.
- **response**: the run's output when it is a string or a message (its text), else its
  ``response`` key (then ``output``, ``text``).
- **evidence**: ``tests`` (with optional ``entry_point``) for execution evidence, or
  ``citations`` (a list of ``{"source": "sha256:...", "quote"}``, or ``{"source_text",
  "quote"}``: the text of a source snapshot registered and committed beforehand, see
  ``convergent source add``) for grounding evidence; read from the output when it is a
  dict that carries them, else from ``metadata["convergent"]``.
- **model**: the handler's ``model``, else the first chat model or LLM seen in the run.

A run without a task, a response or evidence emits nothing; a run that fails emits
nothing. An error while emitting (say, ``repo`` is not a records repo) is LangChain's to
report: a warning, or an exception with ``handler.raise_error = True``. Needs
``langchain-core`` (extra ``integrations``); only this module imports it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage

from convergent.integrations import Experience

METADATA_KEY = "convergent"
TASK_KEYS = ("task", "input", "question")
RESPONSE_KEYS = ("response", "output", "text")


@dataclass
class _Run:
    """What the handler learned about one outermost run while it was running."""

    inputs: Any
    metadata: dict[str, Any]
    model: str | None = None
    children: set[UUID] = field(default_factory=set)


class ConvergentCallbackHandler(BaseCallbackHandler):
    """Emit one experience per outermost run that ends with verification evidence."""

    def __init__(self, repo: Path | str = ".", *, emitter: str = "langchain",
                 model: str | None = None, confidence: float = 0.5) -> None:
        super().__init__()
        self.repo = Path(repo)
        self.emitter = emitter
        self.model = model
        self.confidence = confidence
        self.records: list[dict[str, Any]] = []
        self._runs: dict[UUID, _Run] = {}
        self._root_of: dict[UUID, UUID] = {}
        self._lock = threading.Lock()

    # -- run bookkeeping ------------------------------------------------------------------

    def on_chain_start(self, serialized: dict[str, Any] | None, inputs: Any, *, run_id: UUID,
                       parent_run_id: UUID | None = None,
                       metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        root = self._track(run_id, parent_run_id)
        if root is None:
            with self._lock:
                self._runs[run_id] = _Run(inputs, dict(metadata or {}))

    def on_chat_model_start(self, serialized: dict[str, Any] | None, messages: Any, *,
                            run_id: UUID, parent_run_id: UUID | None = None,
                            metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self._saw_model(run_id, parent_run_id, metadata, kwargs.get("invocation_params"))

    def on_llm_start(self, serialized: dict[str, Any] | None, prompts: list[str], *,
                     run_id: UUID, parent_run_id: UUID | None = None,
                     metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self._saw_model(run_id, parent_run_id, metadata, kwargs.get("invocation_params"))

    def on_tool_start(self, serialized: dict[str, Any] | None, input_str: str, *,
                      run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        self._track(run_id, parent_run_id)  # so a chain inside a tool is not a new run

    def on_retriever_start(self, serialized: dict[str, Any] | None, query: str, *,
                           run_id: UUID, parent_run_id: UUID | None = None,
                           **kwargs: Any) -> None:
        self._track(run_id, parent_run_id)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._finish(run_id)
        if run is not None:
            self._emit(run, outputs)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._finish(run_id)

    def _track(self, run_id: UUID, parent_run_id: UUID | None) -> UUID | None:
        """Remember which outermost run ``run_id`` belongs to; None when it is one."""
        with self._lock:
            root = self._root_of.get(parent_run_id) if parent_run_id else None
            if root is None and parent_run_id in self._runs:
                root = parent_run_id
            if root is not None:
                self._root_of[run_id] = root
                self._runs[root].children.add(run_id)
            return root

    def _saw_model(self, run_id: UUID, parent_run_id: UUID | None,
                   metadata: Mapping[str, Any] | None, params: Mapping[str, Any] | None) -> None:
        root = self._track(run_id, parent_run_id)
        name = model_name(metadata or {}, params or {})
        with self._lock:
            run = self._runs.get(root) if root else None
            if run is not None and run.model is None:
                run.model = name

    def _finish(self, run_id: UUID) -> _Run | None:
        """Forget an outermost run and its children; returns it (None for a child run)."""
        with self._lock:
            run = self._runs.pop(run_id, None)
            for child in run.children if run else ():
                self._root_of.pop(child, None)
            return run

    # -- emitting -------------------------------------------------------------------------

    def _emit(self, run: _Run, outputs: Any) -> None:
        meta = run.metadata.get(METADATA_KEY)
        meta = meta if isinstance(meta, Mapping) else {}
        task = task_of(run.inputs, meta)
        response = response_of(outputs)
        if task is None or response is None:
            return
        exp = Experience(task, repo=self.repo, emitter=self.emitter,
                         model=self.model or run.model or "unknown",
                         confidence=self.confidence)
        exp.respond(response)
        add_evidence(exp, evidence_source(outputs, meta))
        record = exp.emit_if_ready()
        if record is not None:
            with self._lock:
                self.records.append(record)


def model_name(metadata: Mapping[str, Any], params: Mapping[str, Any]) -> str | None:
    """The model's name as LangChain reports it (``ls_model_name``, then the params)."""
    for value in (metadata.get("ls_model_name"), params.get("model"),
                  params.get("model_name"), params.get("_type")):
        if isinstance(value, str) and value:
            return value
    return None


def task_of(inputs: Any, meta: Mapping[str, Any]) -> str | None:
    """The prompt: the input string, a task-like input key, or ``convergent.task``."""
    if isinstance(inputs, str):
        return str(inputs)
    return _first_str(inputs, TASK_KEYS) or _first_str(meta, ("task",))


def response_of(outputs: Any) -> str | None:
    """The output: a string, a message's text, or a response-like output key."""
    if isinstance(outputs, str):
        return str(outputs)
    if isinstance(outputs, BaseMessage):
        return str(outputs.text)
    return _first_str(outputs, RESPONSE_KEYS)


def evidence_source(outputs: Any, meta: Mapping[str, Any]) -> Mapping[str, Any]:
    """The output when it carries evidence, else the run's ``convergent`` metadata."""
    if isinstance(outputs, Mapping) and ("tests" in outputs or "citations" in outputs):
        return outputs
    return meta


def add_evidence(exp: Experience, source: Mapping[str, Any]) -> None:
    """Give ``exp`` the execution or grounding evidence that ``source`` carries, if any."""
    tests = source.get("tests")
    if isinstance(tests, str):
        entry_point = source.get("entry_point")
        exp.verify_with_tests(tests, entry_point if isinstance(entry_point, str) else None)
        return
    for citation in source.get("citations") or ():
        source_ref = citation.get("source", citation.get("source_text"))
        exp.cite(str(source_ref), str(citation["quote"]))


def _first_str(obj: Any, keys: tuple[str, ...]) -> str | None:
    if not isinstance(obj, Mapping):
        return None
    for key in keys:
        if isinstance(obj.get(key), str):
            return str(obj[key])
    return None


__all__ = ["ConvergentCallbackHandler"]
