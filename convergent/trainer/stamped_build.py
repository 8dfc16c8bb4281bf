"""Build a model directory once: staged beside its target, stamped last, renamed into place.

The embedded bases (the tiny test model, the organism, the SmolLM2 conversion) are built
into the user cache on first use. A directory counts as built when its stamp file holds the
build's inputs (``wanted``); a killed build never looks complete, and two identical builds
racing each other both succeed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def read_stamp(out_dir: Path, stamp_file: str) -> dict[str, Any] | None:
    """The stamp of ``out_dir`` (None: missing or not a JSON object)."""
    try:
        stamp = json.loads((Path(out_dir) / stamp_file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) else None


def holds(out_dir: Path, stamp_file: str, wanted: Mapping[str, Any]) -> bool:
    """Whether ``out_dir`` is a complete build of ``wanted``."""
    stamp = read_stamp(out_dir, stamp_file)
    return stamp is not None and all(stamp.get(k) == v for k, v in wanted.items())


def build_once(out_dir: Path, *, stamp_file: str, wanted: Mapping[str, Any],
               build: Callable[[Path], Mapping[str, Any]],
               refusal: Callable[[Path], Exception]) -> Path:
    """Reuse ``out_dir`` when it holds ``wanted``, else build it and return it.

    ``build(staging)`` writes the files into an empty staging folder and returns facts for
    the stamp; ``refusal(out_dir)`` is raised when ``out_dir`` holds something else.
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        if holds(out_dir, stamp_file, wanted):
            return out_dir
        if any(out_dir.iterdir()):
            raise refusal(out_dir)
        out_dir.rmdir()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        facts = build(staging)
        stamp = {**facts, **wanted}
        (staging / stamp_file).write_text(json.dumps(stamp, sort_keys=True) + "\n", "utf-8")
        try:
            os.replace(staging, out_dir)
        except OSError:
            if not holds(out_dir, stamp_file, wanted):  # an identical build that won the race
                raise
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir
