"""The gates of the spec, each one function, and the runner every entry point shares."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from pathlib import Path

from convergent.gates.base import Gate, GateContext, Problem
from convergent.gates.context import commit_context, staged_context
from convergent.gitops import history_rewrites, open_repo, rev_list
from convergent.progress import tracked

# gate id -> "module:function"; resolved on use so a light entry point imports little.
GATES: dict[str, str] = {
    "schema": "convergent.gates.schema:check_schema",
    "append-only": "convergent.gates.append_only:check_append_only",
    "source": "convergent.gates.source:check_source",
    "decontamination": "convergent.gates.decontamination:check_decontamination",
    "secrets": "convergent.gates.secrets:check_secrets",
    "levers-first": "convergent.gates.levers_first:check_levers_first",
    "benchmark-not-target": "convergent.gates.benchmark_not_target:check_benchmark_not_target",
    "never-removed": "convergent.gates.never_removed:check_never_removed",
    "approval": "convergent.gates.approval:check_approval",
    "adapters": "convergent.gates.adapters:check_adapters",
}


def gate_function(name: str) -> Gate:
    if name not in GATES:
        raise KeyError(f"unknown gate {name!r}; known: {', '.join(GATES)}")
    module, _, func = GATES[name].partition(":")
    gate: Gate = getattr(importlib.import_module(module), func)
    return gate


def run_gates(ctx: GateContext, names: Iterable[str] | None = None) -> list[Problem]:
    """Every problem the named gates (default: all) find in one change."""
    problems: list[Problem] = []
    for name in names or GATES:
        problems.extend(gate_function(name)(ctx))
    return problems


def check_staged(root: Path, names: Iterable[str] | None = None,
                 merge_heads: list[str] | None = None) -> list[Problem]:
    repo = open_repo(root)
    return run_gates(staged_context(repo, root, merge_heads), names)


def check_commits(root: Path, commits: list[str], names: Iterable[str] | None = None
                  ) -> list[Problem]:
    """Check each commit against its parents: append-only must hold at every commit."""
    repo = open_repo(root)
    selected = list(names or GATES)
    problems: list[Problem] = []
    for commit in tracked(commits, "checking commits", total=len(commits)):
        problems.extend(run_gates(commit_context(repo, root, commit), selected))
    return problems


def check_range(root: Path, spec: str, names: Iterable[str] | None = None) -> list[Problem]:
    """``A..B`` (or any rev-list spec): every commit it selects, oldest first; with the
    ``adapters`` gate, also every ``adapter/vN`` tag; with ``append-only``, any replace ref
    or grafts file (history as other git commands would show it is not what was committed).
    """
    selected = list(names or GATES)
    repo = open_repo(root)
    problems = check_commits(root, rev_list(repo, spec), selected)
    if "append-only" in selected:
        problems.extend(Problem(where, 0, "append-only", why)
                        for where, why in history_rewrites(repo))
    if "adapters" in selected:
        from convergent.config import committed_config
        from convergent.gates.adapters import check_tags

        problems.extend(check_tags(root, committed_config(root)))
    return problems


def check_all(root: Path, names: Iterable[str] | None = None) -> list[Problem]:
    return check_range(root, "HEAD", names)
