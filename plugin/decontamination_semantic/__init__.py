"""Decontamination that paraphrase cannot slip past: text and functional checks.

The 13-gram gate (:mod:`convergent.decontamination`) catches copies and light edits; this
package catches the rest of what a rephrased benchmark or hold-out item looks like:

- a *text stage* refuses task text whose similarity to an item's prompt is at or over a
  threshold (TF-IDF cosine, and MiniLM embeddings when installed), naming the item and
  the score;
- a *functional stage* runs the response against the item's own tests in the sandbox and
  refuses a response that passes them: it is a solution of that item, however renamed or
  restructured.

Both work on a bounded shortlist from a cheap BM25 prefilter, so records that resemble
nothing pay for a tokenization and a few dictionary lookups only. Entry point::

    screen = screener(root, config)
    findings = screen.screen(records)  # one batch, any size

See :mod:`.engine` for the stages and :class:`.engine.Settings` for the config keys.

Not wired in yet: the gate, emit screening, proposals and the dataset build still call
the 13-gram index only. Proposed single entry point, once decontamination has one API::

    contaminated(root, config, records, *, build=False) -> list[Finding]

n-gram findings first (the gate's messages, field and span), then this package's; a
``Finding`` names the record (index in the batch), stage, benchmark, item, field, score
and message, and callers print ``path:line: decontamination: <message>``. ``build=True``
(the dataset build, proposals) sweeps every item; a check that cannot run raises (fail
closed), as the gate does today.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from convergent.decontamination_semantic import embedding
from convergent.decontamination_semantic.engine import (
    FUNCTIONAL,
    TEXT,
    Finding,
    Screen,
    SemanticIndex,
    Settings,
    semantic_index,
)
from convergent.decontamination_semantic.functional import FunctionalCheck
from convergent.decontamination_semantic.items import Item, configured_items

__all__ = ["FUNCTIONAL", "TEXT", "Finding", "FunctionalCheck", "Item", "Screen",
           "SemanticIndex", "Settings", "embedding", "functional_cache_dir", "screener"]


def functional_cache_dir(root: Path) -> Path:
    """Where (response, item) outcomes are cached: the repo's git-ignored local dir."""
    from convergent.layout import local_dir

    return local_dir(root) / "decontamination-runs"


def screener(root: Path, config: Mapping[str, Any], *, build: bool = False,
             workers: int = 1) -> Screen:
    """The screen for a records repo: its benchmarks and hold-out, its settings (those of
    the dataset build with ``build``), its sandbox limits, and its functional-run cache;
    ``workers`` sandbox runs at once."""
    from convergent.sandbox import SandboxLimits

    settings = Settings.from_config(config, build=build)
    index = semantic_index(configured_items(root, config))
    check = FunctionalCheck(functional_cache_dir(root), SandboxLimits.from_config(config))
    return Screen.create(index, settings, check, workers)
