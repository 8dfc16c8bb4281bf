"""A records repo set up for real cycles: small frozen hold-out, peft backend, few steps."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from drafts import experience
from gapflow import (
    OPERATOR_EMAIL,
    OPERATOR_NAME,
    acting_as,
    as_operator,
    gap,
    git,
    levers,
    set_config,
)

from convergent.holdout import default_holdout_path, read_tasks, tasks_sha256
from convergent.on_merge import on_merge
from convergent.proposals import propose
from convergent.recorder import Recorder

HOLDOUT = "holdout-small.jsonl"


def cycle_repo(root: Path, monkeypatch: pytest.MonkeyPatch, *, steps: int = 6,
               permissive: bool = True) -> Path:
    """Configure ``root`` (a fresh records repo) for fast cycles on CPU."""
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    tasks = read_tasks(default_holdout_path())[:10]
    (root / HOLDOUT).write_text("".join(json.dumps(t) + "\n" for t in tasks), "utf-8")
    git(root, "add", HOLDOUT)
    git(root, "commit", "-qm", "a small hold-out for fast tests")
    config = root / ".convergent.toml"
    text = re.sub(r'holdout_sha256 = "[^"]*"', f'holdout_sha256 = "{tasks_sha256(tasks)}"',
                  config.read_text("utf-8"))
    config.write_text(text, "utf-8")
    git(root, "commit", "-qam", "freeze the small hold-out")
    settings: list[tuple[str, str, str]] = [
        ("tripwire", "holdout", f'"{HOLDOUT}"'), ("tripwire", "embeddings", "false"),
        ("tripwire", "max_new_tokens", "24"), ("cycle", "backend", '"peft"'),
        ("cycle", "max_steps", str(steps))]
    if permissive:  # these tests are about the cycle's plumbing; the rule has its own tests
        settings += [("tripwire", "pass_rate_tolerance", "1.0"),
                     ("tripwire", "diversity_tolerance", "1.0"),
                     ("tripwire", "shrink_streak", "0")]
    for table, key, value in settings:
        set_config(root, table, key, value)
    return root


def emit_experiences(root: Path, start: int, count: int, **extra: Any) -> list[str]:
    with Recorder(root) as recorder:
        ids = [recorder.emit(experience(n, **extra))["id"] for n in range(start, start + count)]
        recorder.commit()
    return ids


def approve_new_proposal(root: Path, *, first: bool) -> str:
    """Gap (once) + lever tries (one set per cycle), a proposal, the operator's merge;
    returns the proposal id."""
    if first:
        gap(root)
    levers(root)  # one cycle per measured gap state: each proposal measures the levers
    proposal = propose(root, "strings")
    git(root, *as_operator("merge", "--no-ff", "-m", "approve", proposal.branch))
    with acting_as(OPERATOR_NAME, OPERATOR_EMAIL):  # the merger's hook runs the cycle
        on_merge(root)  # no-op when the post-merge hook already claimed it
    return str(proposal.record["id"])
