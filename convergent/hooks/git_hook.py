"""The git hooks ``convergent init`` installs, dispatched by name.

``python -m convergent.hooks.git_hook NAME [ARGS]`` where NAME is one of:
pre-commit (every gate on the staged change), pre-merge-commit (the same, with
MERGE_HEAD as the merged parent), pre-push (every gate on each pushed commit),
post-merge (``convergent on-merge``: start the cycle of a newly approved proposal),
reference-transaction (every gate on each commit an update of the main branch brings,
and on each ``adapter/`` tag it sets: the one way in that ``git revert``,
``cherry-pick``, ``commit --no-verify``, ``update-ref`` and ``reset`` cannot skip).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from convergent.errors import ConvergentError
from convergent.gates.ref_updates import mark_checked, ref_update_problems
from convergent.gitops import head_sha, open_repo
from convergent.hooks.runner import merge_heads_of, report, run_check

ZERO = "0" * 40


def _root() -> Path:
    repo = open_repo(Path.cwd())
    assert repo.working_tree_dir is not None
    return Path(repo.working_tree_dir)


def pre_commit(root: Path) -> int:
    """The staged change; a conflicted merge being concluded also has a MERGE_HEAD.

    A pass is marked, so the reference-transaction hook does not check the same tree over
    the same parents again.
    """
    heads = merge_heads_of(root)
    problems = run_check(root, merge_heads=heads)
    if not problems:
        repo = open_repo(root)
        parents = [p for p in [head_sha(repo), *(heads or [])] if p]
        mark_checked(root, repo.git.write_tree(), parents)
    return report(problems)


def pre_push(root: Path, lines: Sequence[str]) -> int:
    problems = []
    for line in lines:
        parts = line.split()
        if len(parts) != 4 or parts[1] == ZERO:  # a deleted ref pushes no commits
            continue
        local_sha, remote_sha = parts[1], parts[3]
        spec = local_sha if remote_sha == ZERO else f"{remote_sha}..{local_sha}"
        problems.extend(run_check(root, rev_range=spec))
    return report(problems)


def post_merge(root: Path) -> int:
    # Imported here, not at the top: every other hook of every commit stays light.
    from convergent.approval import main_branch
    from convergent.config import committed_config
    from convergent.on_merge import on_merge

    repo = open_repo(root)
    if repo.head.is_detached or repo.active_branch.name != main_branch(committed_config(root)):
        return 0  # approvals happen on the main line only
    on_merge(root, quiet=False)
    return 0  # post-merge cannot undo a merge; on-merge reports its own refusals


def reference_transaction(root: Path, state: str, lines: Sequence[str]) -> int:
    """In the "prepared" state (the only one that can still refuse), check what each
    update of the main branch or of an ``adapter/`` tag would bring."""
    if state != "prepared":
        return 0

    updates = [tuple(line.split()) for line in lines if len(line.split()) == 3]
    return report(ref_update_problems(root, [(old, new, ref) for old, new, ref in updates]))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m convergent.hooks.git_hook HOOK-NAME [ARGS]", file=sys.stderr)
        return 2
    name = args[0]
    try:
        root = _root()
        if name in ("pre-commit", "pre-merge-commit"):
            return pre_commit(root)
        if name == "pre-push":
            return pre_push(root, sys.stdin.read().splitlines())
        if name == "post-merge":
            return post_merge(root)
        if name == "reference-transaction":
            state = args[1] if len(args) > 1 else ""
            return reference_transaction(root, state, sys.stdin.read().splitlines())
    except ConvergentError as exc:
        print(f"convergent: {exc}", file=sys.stderr)
        return 1
    print(f"convergent: unknown hook {name!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
