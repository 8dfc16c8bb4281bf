"""Where things live in a records repo (the spec's layout), relative to its root."""

from __future__ import annotations

import os
from pathlib import Path

CONFIG_FILE = ".convergent.toml"
GITATTRIBUTES = ".gitattributes"
RECORDS_DIR = "data/convergence/records"
SOURCES_DIR = "data/convergence/sources"
ADAPTERS_DIR = "data/convergence/adapters"
# Completions of measured gaps and levers, each file named by its own sha256.
OUTCOMES_DIR = "data/convergence/outcomes"
ACTIVE_FILE = "data/convergence/ACTIVE"
LOCAL_DIR = ".convergent"
SEGMENT_PREFIX = "seg-"
SEGMENT_SUFFIX = ".jsonl"


def segment_name(number: int) -> str:
    """Segments sort by name in log order: seg-000001.jsonl, seg-000002.jsonl, ..."""
    return f"{SEGMENT_PREFIX}{number:06d}{SEGMENT_SUFFIX}"


def outcomes_file(sha256: str) -> str:
    """Where the completions file whose content hashes to ``sha256`` lives."""
    return f"{OUTCOMES_DIR}/{sha256}.jsonl"


def is_segment(relpath: str) -> bool:
    """Whether a repo-relative path (POSIX) names a log segment."""
    head, _, name = relpath.rpartition("/")
    return head == RECORDS_DIR and name.startswith(SEGMENT_PREFIX) and name.endswith(
        SEGMENT_SUFFIX)


def local_dir(root: Path) -> Path:
    """The git-ignored per-clone directory (index, caches, locks), created on demand."""
    path = root / LOCAL_DIR
    path.mkdir(exist_ok=True)
    return path


def user_cache_dir() -> Path:
    """This user's cache for convergent (fingerprints, the tiny model): never a records repo."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "convergent"
