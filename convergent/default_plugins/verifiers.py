"""Built-in verifiers (``execution``, ``grounding``, ``operator``), registered by hook."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from convergent.hookspecs import hookimpl
from convergent.verifiers import verify_execution, verify_grounding, verify_operator


# tryfirst: pluggy calls later-registered plugins first, so without it the built-ins
# would register last and override a plugin's replacement for the same evidence type.
@hookimpl(tryfirst=True)
def register_verifiers(register: Callable[[str, Callable[..., Any]], None]) -> None:
    register("execution", verify_execution)
    register("grounding", verify_grounding)
    register("operator", verify_operator)
