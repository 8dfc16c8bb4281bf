"""The hooks a host framework or a plugin can implement or call.

Collecting hooks receive a ``register`` callback; ``firstresult`` hooks answer
"who handles this". Specs gain arguments, never change them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pluggy import HookimplMarker, HookspecMarker

if TYPE_CHECKING:
    from convergent.decontamination import BenchmarkRegister

hookspec = HookspecMarker("convergent")
hookimpl = HookimplMarker("convergent")


@hookspec(firstresult=True)
def convergent_emit(draft: Mapping[str, Any], repo: str) -> Mapping[str, Any] | None:
    """Append one draft record to the records repo at ``repo``; return the full record.

    Hosts call this hook (``pm.hook.convergent_emit(draft=..., repo=...)``); the built-in
    plugin implements it. firstresult: the first implementation that returns wins.
    """


@hookspec
def record_appended(record: Mapping[str, Any], repo: str) -> None:
    """Notification: ``record`` was appended durably to the log of ``repo``."""


@hookspec
def cycle_ended(result: Mapping[str, Any], repo: str) -> None:
    """Notification: a training cycle finished (promoted, halted or failed).

    :param result: the cycle's outcome, as recorded in its ``cycle``/``halt`` record.
    """


@hookspec
def register_verifiers(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register verifiers: ``register(evidence_type, verify)``.

    ``verify(record, ctx) -> Verdict`` where ``ctx`` is a :class:`convergent.verifiers.
    VerifyContext`. The last registration of a type wins, so a plugin can replace one.
    """


@hookspec
def register_benchmarks(register: BenchmarkRegister) -> None:
    """Register decontamination benchmarks: ``register(name, load, source=None)``.

    ``load()`` yields ``(item_id, text)`` pairs; their 13-gram fingerprints are built
    once and cached outside the records repo. ``source``, a file whose bytes change when
    the benchmark does, keys that cache (without it the items are hashed on each load).
    Every stage of :func:`convergent.contamination.contaminated` checks them: n-gram and
    text; the built-in ``humaneval`` and the hold-out, whose items carry tests, are also
    checked functionally.
    """


@hookspec
def register_external_data(register: Callable[[str, Callable[[], Any]], None]) -> None:
    """Register external (non-self) training data: ``register(name, load)``.

    ``load()`` yields ``{"id", "prompt", "completion", "origin"}`` dicts.
    """


@hookspec
def register_holdouts(register: Callable[[str, Callable[[], Any]], None]) -> None:
    """Register frozen hold-out sets: ``register(name, load)``.

    ``load()`` yields tasks ``{"task_id", "prompt", "entry_point", "test"}`` in the
    HumanEval format.
    """


@hookspec
def register_members(register: Callable[[str, Callable[..., list[list[str]]]], None],
                     config: Mapping[str, Any]) -> None:
    """Register members, the models levers route to: ``register(name, generate)``.

    ``generate(prompts: list[str], n: int, temperature: float, seed: int) ->
    list[list[str]]`` returns ``n`` completions per prompt (HumanEval convention: the text
    that follows the prompt), deterministic at temperature 0. The built-in ``base`` is the
    repo's configured base model; a plugin's member of the same name replaces it.

    :param config: the records repo's resolved config.
    """


@hookspec
def register_samplers(register: Callable[[str, Callable[[str, int], list[str]]], None]) -> None:
    """Older form of :func:`register_members`: ``register(name, sample)``, where
    ``sample(prompt, n)`` returns ``n`` completions; each sampler is a member of that name
    (unless a member of that name is registered).
    """


@hookspec(firstresult=True)
def choose_backend(config: Mapping[str, Any], gpu_available: bool) -> str | None:
    """Pick the training backend (``"unsloth"`` or ``"peft"``). firstresult.

    :param config: the resolved ``[cycle]`` config.
    :param gpu_available: whether a CUDA device is visible.
    """


@hookspec
def register_commands(cli: Any) -> None:
    """Add click commands to the ``convergent`` CLI group."""
