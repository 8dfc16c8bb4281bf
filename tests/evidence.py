"""Evidence for tests: sources registered and committed by someone, commits as someone."""

from __future__ import annotations

import subprocess
from pathlib import Path

from convergent.layout import SOURCES_DIR
from convergent.sources import store_source

OPERATOR = "Ada Operator <ada@example.com>"


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def as_person(who: str) -> list[str]:
    """``git -c`` options that make ``who`` (``Name <email>``) author and committer."""
    name, _, email = who.partition(" <")
    return ["-c", f"user.name={name}", "-c", f"user.email={email.rstrip('>')}"]


def register(root: Path, text: str | bytes, *, by: str = OPERATOR,
             registered_by: str = "docs-ingest") -> str:
    """A snapshot registered by ``registered_by`` and committed by ``by``; its name."""
    ref = store_source(root, text, registered_by=registered_by)
    git(root, "add", SOURCES_DIR)
    git(root, *as_person(by), "commit", "-q", "--no-verify", "-m", "register a source")
    return ref
