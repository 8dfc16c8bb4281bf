"""``convergent approve``: approval for flows without PRs.

The operator merges the proposal branch locally, as the current git user
(``git merge --no-ff [-S] <branch>``), and the merge is then handled exactly like one
made on a Git host: :func:`convergent.on_merge.on_merge` checks it and claims it. The
post-merge hook may already have done so; either way the proposal gets one approval.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git

from convergent.approval import (
    ApprovalError,
    approval_records,
    require_main_branch,
    require_operator,
    signatures_required,
)
from convergent.config import load_config
from convergent.gitops import open_repo
from convergent.history import records_at
from convergent.on_merge import on_merge
from convergent.proposals import BRANCH_PREFIX, short_id


@dataclass(frozen=True)
class Approved:
    """What :func:`approve` did: the merge, git's own output, and the approval record
    (None when the merge did not approve, e.g. a signature that does not verify)."""

    branch: str
    merge: str
    git_output: str
    approval: dict[str, Any] | None


def proposal_branch(repo: git.Repo, proposal: str | None) -> str:
    """The branch to merge: named, named by (a prefix of) its proposal id, or the only
    proposal branch not yet merged into HEAD."""
    if proposal is not None:
        name = proposal if proposal.startswith(BRANCH_PREFIX) else (
            BRANCH_PREFIX + short_id(proposal))
        if not repo.git.branch("--list", name).strip():
            raise ApprovalError(f"no proposal branch {name}: see `git branch --list "
                                f"'{BRANCH_PREFIX}*'`")
        return name
    pending = [b.strip(" *+") for b in repo.git.branch(
        "--no-merged", "HEAD", "--list", f"{BRANCH_PREFIX}*").splitlines() if b.strip()]
    if len(pending) != 1:
        found = ", ".join(pending) or "none"
        raise ApprovalError(f"name the proposal to approve; unmerged proposal branches: {found}")
    return pending[0]


def _merge(repo: git.Repo, branch: str, sign: bool) -> str:
    message = f"convergent: approve {branch}"
    args = ["--no-ff", *(["-S"] if sign else []), "-m", message, branch]
    try:
        _, out, err = repo.git.merge(*args, with_extended_output=True)
    except git.GitCommandError as exc:
        if (Path(repo.git_dir) / "MERGE_HEAD").exists():
            repo.git.merge("--abort")
        raise ApprovalError(f"merging {branch} failed:\n{(exc.stderr or '').strip()}") from None
    return "\n".join(x for x in (out.strip(), err.strip()) if x)


def approve(root: Path, proposal: str | None = None, *, sign: bool | None = None,
            quiet: bool = True) -> Approved:
    """Merge a proposal branch as the current (operator) git user, then run on-merge.

    :param sign: sign the merge (``-S``); default: when the config requires signatures.
    """
    root = Path(root).resolve()
    config = load_config(root)
    repo = open_repo(root)
    require_operator(root, config)
    require_main_branch(repo, config, "approve")
    required = signatures_required(config)
    sign = required if sign is None else sign
    if required and not sign:
        raise ApprovalError("[operators] require_signed = true: approve with --sign")
    branch = proposal_branch(repo, proposal)
    before = repo.head.commit.hexsha
    output = _merge(repo, branch, sign)
    # Not simply HEAD: the post-merge hook may already have committed the approval on top.
    merge = repo.git.rev_list("--first-parent", "--reverse", f"{before}..HEAD").split()[0]
    on_merge(root, quiet=quiet)
    approvals = approval_records(records_at(repo, "HEAD"))
    suffix = branch.removeprefix(BRANCH_PREFIX)
    approval = next((a for pid, a in approvals.items() if short_id(pid) == suffix), None)
    return Approved(branch, merge, output, approval)
