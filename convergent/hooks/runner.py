"""The shared ``main`` behind every gate entry point (pre-commit hooks, git hooks, CI)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from convergent.errors import ConvergentError
from convergent.gates import GATES, Problem, check_all, check_range, check_staged
from convergent.gitops import open_repo


def run_check(root: Path, *, names: Sequence[str] | None = None, rev_range: str | None = None,
              all_commits: bool = False, merge_heads: list[str] | None = None
              ) -> list[Problem]:
    """Run the gates on one selection: a range, every commit, or (default) the staged index."""
    if all_commits:
        return check_all(root, names)
    if rev_range:
        return check_range(root, rev_range, names)
    return check_staged(root, names, merge_heads=merge_heads)


def report(problems: Sequence[Problem]) -> int:
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


def _pushed_range() -> str | None:
    """At the pre-push stage the pre-commit framework names what is pushed."""
    old, new = os.environ.get("PRE_COMMIT_FROM_REF"), os.environ.get("PRE_COMMIT_TO_REF")
    if not new:
        return None
    return f"{old}..{new}" if old and set(old) != {"0"} else new


def merge_heads_of(root: Path) -> list[str] | None:
    """A merge being committed: check it against MERGE_HEAD too."""
    path = Path(open_repo(root).git_dir) / "MERGE_HEAD"
    return path.read_text().split() if path.exists() else None


def gate_main(names: Sequence[str] | None, argv: Sequence[str] | None = None) -> int:
    """``main(argv)`` of a gate hook: checks the staged change unless told otherwise."""
    parser = argparse.ArgumentParser(description="convergent gates: " + ", ".join(
        names or GATES))
    parser.add_argument("--repo", default=".", help="records repo (default: current directory)")
    parser.add_argument("--rev-range", help="check every commit of A..B instead of the index")
    parser.add_argument("--all", action="store_true", help="check every commit")
    parser.add_argument("filenames", nargs="*", help="ignored: gates look at the whole change")
    args = parser.parse_args(argv)
    root = Path(args.repo).resolve()
    rev_range = args.rev_range or _pushed_range()
    try:
        problems = run_check(root, names=names, rev_range=rev_range, all_commits=args.all,
                             merge_heads=merge_heads_of(root))
    except ConvergentError as exc:
        print(f"convergent: {exc}", file=sys.stderr)
        return 1
    return report(problems)
