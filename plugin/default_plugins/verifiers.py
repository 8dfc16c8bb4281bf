"""Built-in verifiers (``execution``, ``grounding``, ``operator``), registered by hook."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from convergent.hookspecs import hookimpl


# tryfirst: pluggy calls later-registered plugins first, so without it the built-ins
# would register last and override a plugin's replacement for the same evidence type.
@hookimpl(tryfirst=True)
def register_verifiers(register: Callable[[str, Callable[..., Any]], None]) -> None:
    from convergent.verifiers import verify_execution, verify_grounding, verify_operator

    register("execution", verify_execution)
    register("grounding", verify_grounding)
    register("operator", verify_operator)
