"""Built-in implementation of the ``convergent_emit`` hook: the Recorder appends."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from convergent.hookspecs import hookimpl
from convergent.recorder import recorder_for


# trylast: firstresult, so a plugin's own emit answers before the built-in one.
@hookimpl(trylast=True)
def convergent_emit(draft: Mapping[str, Any], repo: str) -> Mapping[str, Any]:
    return recorder_for(Path(repo)).emit(draft)
