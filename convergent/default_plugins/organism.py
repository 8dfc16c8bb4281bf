"""Built-ins of the embedded organism base model: its hold-out (``[tripwire] holdout =
"organism"``) and its external replay data (``[cycle] external = ["organism"]``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from convergent.hookspecs import hookimpl
from convergent.organism_tasks import ORGANISM, read_holdout, replay_items


@hookimpl(tryfirst=True)
def register_holdouts(register: Callable[[str, Callable[[], Any]], None]) -> None:
    register(ORGANISM, read_holdout)


@hookimpl(tryfirst=True)
def register_external_data(register: Callable[[str, Callable[[], Any]], None]) -> None:
    register(ORGANISM, replay_items)
