"""The gates on ref updates (the ``reference-transaction`` hook): every way into the main
line, including ``git revert``, ``cherry-pick``, ``commit --no-verify``, ``update-ref``,
``reset`` and fast-forward merges, none of which runs the pre-commit hook.

An update of the main branch is checked by running every gate on each commit it brings
(those not reachable from the branch's current value), oldest first; a move that is not
a fast-forward must not change the weights either (:func:`convergent.adapters.
rewind_problems`). An ``adapter/`` tag is checked as ``check`` checks it.

A commit whose very tree and parents the pre-commit hook has just checked (:func:`mark_
checked`) is not checked twice: only the gates that depend on the commit itself (its
author and signature: ``adapters``, ``approval``) run again. The marks live in the clone's
``.convergent/`` like the hooks themselves; CI's ``check --rev-range`` trusts neither.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from convergent.adapters import main_ref, rewind_problems, tag_problems_of
from convergent.approval import main_branch
from convergent.config import Config, committed_config, resolve_config
from convergent.errors import RepoError
from convergent.gates import check_commits
from convergent.gates.base import Problem
from convergent.gitops import REPLACE_REFS, is_ancestor, open_repo
from convergent.layout import ACTIVE_FILE, local_dir

ZERO = "0" * 40
TAG_REFS = "refs/tags/adapter/"
# Gates whose verdict depends on the commit object, not only on its tree and parents (its
# author and signature: who moves ACTIVE, who changes the operator policy).
COMMIT_GATES = ("adapters", "approval")


def _mark(root: Path, tree: str, parents: Sequence[str]) -> Path:
    key = hashlib.sha256(" ".join([tree, *parents]).encode()).hexdigest()
    return local_dir(root) / "checked" / key


def mark_checked(root: Path, tree: str, parents: Sequence[str]) -> None:
    """Every gate passed on a commit-to-be of this tree over these parents."""
    path = _mark(root, tree, parents)
    path.parent.mkdir(exist_ok=True)
    path.touch()


def _take_mark(root: Path, tree: str, parents: Sequence[str]) -> bool:
    path = _mark(root, tree, parents)
    if not path.exists():
        return False
    path.unlink(missing_ok=True)
    return True


def _check_new_commits(root: Path, commits: list[str]) -> list[Problem]:
    repo = open_repo(root)
    problems: list[Problem] = []
    for commit in commits:
        obj = repo.commit(commit)
        marked = _take_mark(root, obj.tree.hexsha, [p.hexsha for p in obj.parents])
        problems.extend(check_commits(root, [commit], COMMIT_GATES if marked else None))
    return problems


def _config(root: Path) -> Config:
    """The committed config (the working tree's is anyone's to edit: a main_branch changed
    there would take the real main branch out of these checks)."""
    try:
        return committed_config(root)
    except RepoError:  # no commit yet: the defaults
        return resolve_config({})


def ref_update_problems(root: Path, updates: Sequence[tuple[str, str, str]]) -> list[Problem]:
    """Every problem the ``(old, new, ref)`` updates of one transaction would bring."""
    repo = open_repo(root)
    config = _config(root)
    main = f"refs/heads/{main_branch(config)}"
    problems: list[Problem] = []
    for _, new, ref in updates:
        if new == ZERO:
            continue  # a deletion brings no commit
        if ref.startswith(REPLACE_REFS):
            problems.append(Problem(ref, 0, "append-only", "a replace ref rewrites history "
                                    "for every git command that honors it (a commit, an "
                                    "author, parents): records repos take none"))
            continue
        if ref == main:
            # The old value git passes may be zero even for an existing ref: read it.
            current = repo.git.rev_parse("--verify", "-q", ref, with_exceptions=False).strip()
            if current == new:
                continue
            spec = [new, "--not", current] if current else [new, "--not", "--remotes"]
            commits = repo.git.rev_list("--reverse", "--topo-order", *spec).split()
            problems.extend(_check_new_commits(root, commits))
            if current and not is_ancestor(repo, current, new):
                problems.extend(Problem(ACTIVE_FILE, 1, "adapters", reason) for reason in
                                rewind_problems(repo, current, new, set(commits)))
        elif ref.startswith(TAG_REFS):
            name = ref.removeprefix("refs/tags/")
            problems.extend(Problem(ref, 0, "adapters", reason) for reason in
                            tag_problems_of(root, config, name, new, main_ref(repo, config)))
    return problems
