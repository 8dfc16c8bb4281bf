"""Built-in external (non-self) training data: functions from Python's standard library."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from convergent.hookspecs import hookimpl


def _stdlib() -> Iterator[dict[str, Any]]:
    from convergent.trainer.external_data import iter_stdlib_functions

    for item in iter_stdlib_functions():
        yield dict(item)


# tryfirst: a plugin registering "stdlib" too is called after it and wins.
@hookimpl(tryfirst=True)
def register_external_data(register: Callable[[str, Callable[[], Any]], None]) -> None:
    register("stdlib", _stdlib)
