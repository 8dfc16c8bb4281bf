"""Helpers for the gap -> levers -> proposal -> approval tests: real git, real files."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from convergent.approval import POLICY_TABLES
from convergent.gaps import record_gap, record_lever
from convergent.history import read_records
from convergent.proposals import Proposal, propose

OPERATOR_NAME, OPERATOR_EMAIL = "Ada Operator", "ada@example.com"
EVAL = "evals/strings.jsonl"

# Three HumanEval-format tasks (not a public benchmark): real prompts and real tests.
TASKS = [
    {"task_id": "strings/0", "entry_point": "shout",
     "prompt": 'def shout(s):\n    """Upper-case s and add one "!"."""\n',
     "test": "def check(f):\n    assert f('hi') == 'HI!'\n    assert f('') == '!'\n"},
    {"task_id": "strings/1", "entry_point": "initials",
     "prompt": 'def initials(name):\n    """First letter of each word, upper-cased."""\n',
     "test": "def check(f):\n    assert f('ada love lace') == 'ALL'\n"
             "    assert f('x') == 'X'\n"},
    {"task_id": "strings/2", "entry_point": "rot13",
     "prompt": 'def rot13(s):\n    """ROT13 of the ASCII letters of s."""\n',
     "test": "def check(f):\n    assert f('Hello') == 'Uryyb'\n    assert f('a-z') == 'n-m'\n"},
]


def skip_git_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commits in this test skip the git hooks: for setup whose gates are tested elsewhere
    (each hook run costs a second)."""
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "core.hooksPath")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "/dev/null")


@contextmanager
def acting_as(name: str, email: str) -> Iterator[None]:
    """Git calls of this process (and its hooks) author and commit as ``name <email>``
    until the block ends: who runs a cycle or a revert in-process."""
    with pytest.MonkeyPatch.context() as mp:
        for role in ("AUTHOR", "COMMITTER"):
            mp.setenv(f"GIT_{role}_NAME", name)
            mp.setenv(f"GIT_{role}_EMAIL", email)
        yield


def git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The real git CLI; output captured (hooks' output lands in stderr/stdout)."""
    return subprocess.run(["git", *args], cwd=root, text=True, capture_output=True,
                          check=check)


def without_hooks(*args: str) -> list[str]:
    """Git arguments for a clone without our hooks (hooks are not cloned): how a commit
    that the local gates refuse still gets made, for CI's gates to catch."""
    return ["-c", "core.hooksPath=/dev/null", *args]


def as_operator(*args: str) -> list[str]:
    return ["-c", f"user.name={OPERATOR_NAME}", "-c", f"user.email={OPERATOR_EMAIL}", *args]


def write_eval(root: Path) -> str:
    path = root / EVAL
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(t) + "\n" for t in TASKS), "utf-8")
    return EVAL


def set_config(root: Path, table: str, key: str, value: str) -> None:
    """Set ``[table] key = value`` (a TOML literal) in .convergent.toml and commit it (as
    the operator when it is the operator policy: only an operator's commit changes it)."""
    path = root / ".convergent.toml"
    text = path.read_text("utf-8")
    pattern = re.compile(rf"(\[{table}\]\n(?:[^\[\n][^\n]*\n)*?){key} = [^\n]*\n")
    if pattern.search(text):
        text = pattern.sub(lambda m: f"{m.group(1)}{key} = {value}\n", text, count=1)
    else:
        text = text.replace(f"[{table}]\n", f"[{table}]\n{key} = {value}\n", 1)
    path.write_text(text, "utf-8")
    git(root, "add", ".convergent.toml")
    who = as_operator() if table in POLICY_TABLES else []
    git(root, *who, "commit", "-q", "-m", f"config: [{table}] {key} = {value}")


def allow_reported(root: Path) -> None:
    """Let the repo accept typed numbers ([levers] allow_reported = true), once: for tests
    about what happens after the levers (their measuring is tested in test_measured_levers)."""
    if "allow_reported = true" not in (root / ".convergent.toml").read_text("utf-8"):
        set_config(root, "levers", "allow_reported", "true")


def gap(root: Path, name: str = "strings", measured: float = 0.3) -> dict[str, Any]:
    """A gap with a typed value (the repo is set to allow reported numbers)."""
    write_eval(root)
    allow_reported(root)
    return record_gap(root, name, "pass@1", 0.8, EVAL, measured)


def levers(root: Path, name: str = "strings", order: tuple[str, ...] = (
        "route", "verify_best_of_n", "rag"), measured: tuple[float, ...] = (0.4, 0.5, 0.6)
           ) -> list[dict[str, Any]]:
    """Lever tries with typed values (the repo is set to allow reported numbers)."""
    allow_reported(root)
    return [record_lever(root, name, lever, value, {"how": f"{lever} tried in a test"})
            for lever, value in zip(order, measured, strict=True)]


def proposal_branch(root: Path, monkeypatch: pytest.MonkeyPatch) -> Proposal:
    """A records repo set to start no cycle on its own ([cycle] autostart = false), with a
    gap, its lever tries and a proposal branch for it; the setup's commits skip the git
    hooks."""
    set_config(root, "cycle", "autostart", "false")
    with monkeypatch.context() as m:
        skip_git_hooks(m)
        gap(root)
        levers(root)
        return propose(root, "strings")


def records(root: Path, kind: str) -> list[dict[str, Any]]:
    return [r for r in read_records(root) if r.get("kind") == kind]
