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
nothing pay for a tokenization and a few dictionary lookups only. Callers do not use this
package directly: :func:`convergent.contamination.contaminated` runs the 13-gram stage and
these two, for every entry point (emit, the gate, proposals, the dataset build).
See :mod:`.engine` for the stages and :class:`.engine.Settings` for the config keys.
"""

from __future__ import annotations

from pathlib import Path

from convergent.decontamination_semantic import embedding
from convergent.decontamination_semantic.engine import (
    FUNCTIONAL,
    TEXT,
    Finding,
    Screen,
    SemanticIndex,
    Settings,
)
from convergent.decontamination_semantic.functional import FunctionalCheck
from convergent.decontamination_semantic.items import Item
from convergent.layout import CONFIG_FILE, local_dir, user_cache_dir

__all__ = ["FUNCTIONAL", "TEXT", "Finding", "FunctionalCheck", "Item", "Screen",
           "SemanticIndex", "Settings", "embedding", "functional_cache_dir"]


def functional_cache_dir(root: Path) -> Path:
    """Where (response, item) outcomes are cached: a records repo's git-ignored local dir
    (the user cache for a directory that is no records repo)."""
    if (root / CONFIG_FILE).is_file():
        return local_dir(root) / "decontamination-runs"
    return user_cache_dir() / "decontamination-runs"
