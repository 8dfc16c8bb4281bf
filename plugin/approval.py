"""Approval by merge: who may approve a proposal, and how a merge commit is checked.

A proposal is approved when the commit that brought it onto the main branch is a
merge whose *author* is a configured operator (``[operators] allowed``). Merges made
by a Git host's web UI qualify: the host records the person who pressed "merge" as
the author (the committer is the host itself, e.g. ``GitHub <noreply@github.com>``, so
the committer is not checked). With ``require_signed = true`` the merge commit must
also carry a signature that ``git verify-commit`` accepts (SSH signatures checked
against ``[operators] allowed_signers``, GPG against the local keyring).
"""

from __future__ import annotations

from pathlib import Path

import git

from convergent.config import Config
from convergent.gitops import is_ancestor, open_repo


def person(actor: git.Actor) -> str:
    return f"{actor.name} <{actor.email}>"


def is_operator(config: Config, who: str) -> bool:
    return who in set(config["operators"].get("allowed", []))


def signature_problem(root: Path, config: Config, sha: str) -> str | None:
    """None when the commit's signature verifies, else why not."""
    repo = open_repo(root)
    args = []
    signers = config["operators"].get("allowed_signers", "")
    if signers:
        args = ["-c", f"gpg.ssh.allowedSignersFile={(root / signers).resolve()}"]
    try:
        repo.git.execute(["git", *args, "verify-commit", sha], with_extended_output=True)
    except git.GitCommandError as exc:
        detail = (exc.stderr or "").strip().splitlines()
        return f"signature does not verify: {detail[-1] if detail else 'unsigned'}"
    return None


def merge_problems(root: Path, config: Config, merge_sha: str, proposal_commit: str | None
                   ) -> list[str]:
    """Why ``merge_sha`` does not approve (empty: it approves).

    :param proposal_commit: a commit that holds the proposal record; the merge must bring
        it in through a non-first parent.
    """
    repo = open_repo(root)
    try:
        merge = repo.commit(merge_sha)
    except (ValueError, git.BadName):
        return [f"approval commit {merge_sha} does not exist"]
    problems = []
    if len(merge.parents) < 2:
        problems.append(f"commit {merge_sha[:12]} is not a merge: a proposal is approved by "
                        "merging its branch")
    elif proposal_commit is not None:
        first, others = merge.parents[0], merge.parents[1:]
        brought = any(is_ancestor(repo, proposal_commit, p.hexsha) for p in others)
        if not brought or is_ancestor(repo, proposal_commit, first.hexsha):
            problems.append(f"merge {merge_sha[:12]} does not bring the proposal's branch in")
    author = person(merge.author)
    if not is_operator(config, author):
        problems.append(f"merge {merge_sha[:12]} was made by {author}, who is not a configured "
                        "operator ([operators] allowed in .convergent.toml)")
    if config["operators"].get("require_signed"):
        problem = signature_problem(root, config, merge_sha)
        if problem:
            problems.append(f"merge {merge_sha[:12]}: {problem}")
    return problems
