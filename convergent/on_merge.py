"""The exactly-once trigger of approval by merge: ``convergent on-merge``.

Run by the post-merge git hook, by CI on pushes to main, and by ``convergent approve``.
For every committed proposal of the main branch that has no ``approval`` record yet, it
asks :func:`convergent.approval.approval_of` whether Git approves it (an operator's merge
brought it into the main line, signed when required) and records that answer as an
``approval`` record: a cache of Git's answer, which the ``approval`` gate and the cycle
re-derive before relying on it.

Exactly once: the approval record is the claim. It is appended under a lock in
``.convergent/`` after re-reading the committed log, so a second run in this clone finds
it and starts nothing. Its content (its ``ts`` is the merge's commit time) depends only on
the merge, so two clones racing on the same merge write the very same line, which Git
merges as one. With ``push_remote`` the claim is pushed before the cycle starts: only the
clone whose push lands starts it.
"""

from __future__ import annotations

import sys
from datetime import UTC
from pathlib import Path
from typing import Any

import git

from convergent.approval import (
    Approval,
    ApprovalError,
    approval_of,
    approval_records,
    require_main_branch,
)
from convergent.config import Config, committed_config
from convergent.gitops import commit_log, is_ancestor, open_repo, repo_lock
from convergent.history import read_records, records_at
from convergent.recorder import Recorder
from convergent.records import Record, addressed, finalize, typed, validate_draft

EMITTER = "convergent/on-merge"
LOCK_NAME = "on-merge.lock"


def _say(quiet: bool, message: str, *, err: bool = False) -> None:
    if not quiet:
        print(message, file=sys.stderr if err else sys.stdout, flush=True)


def unapproved_proposals(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    approved = approval_records(records)
    # Each proposal id once, as the record it addresses (never a later look-alike line).
    return [dict(r.raw) for r in typed(addressed(records, kind="proposal").values())
            if r.id not in approved]


def approval_record(repo: git.Repo, config: Config, answer: Approval) -> dict[str, Any]:
    """The approval record that caches ``answer``: a function of the merge only."""
    assert answer.merge is not None
    merge = repo.commit(answer.merge)
    by = answer.approved_by
    draft = {"kind": "approval",
             "claim": f"{by} approved proposal {answer.proposal} by merge {answer.merge[:12]}",
             "evidence": {"type": "operator", "approved_by": by, "commit": answer.merge,
                          "proposal": answer.proposal,
                          "proposal_commit": answer.proposal_commit},
             "links": [answer.proposal], "confidence": 1.0,
             "source": {"emitter": EMITTER, "model": str(config["base"]["model"]),
                        "origin": "operator"}}
    validate_draft(draft)
    ts = merge.committed_datetime.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    return finalize(draft, None, ts=ts)


def _append(root: Path, records: list[dict[str, Any]]) -> None:
    if records:
        with Recorder(root, verify=False) as recorder:
            recorder.append_records(records)


def _uncommitted_ids(root: Path, committed: list[dict[str, Any]]) -> set[str]:
    """Ids of the working tree's log lines that no commit holds."""
    known = {str(r.get("id")) for r in committed}
    return {str(r.get("id")) for r in read_records(root)} - known


def _claim(root: Path, config: Config, quiet: bool) -> list[tuple[dict[str, Any],
                                                                   dict[str, Any]]]:
    """Under the lock: append and commit one approval per approved, unclaimed proposal."""
    repo = open_repo(root)
    claimed = []
    with repo_lock(root, LOCK_NAME):
        _settle_finished_merge(repo)
        if (Path(repo.git_dir) / "MERGE_HEAD").exists():
            raise ApprovalError("a merge is in progress: conclude or abort it, then run "
                                "`convergent on-merge`")
        # Re-read under the lock, from HEAD: only committed records count, never the
        # working tree (where anyone can append an approval line).
        history = records_at(repo, "HEAD")
        for proposal in unapproved_proposals(history):
            answer = approval_of(root, proposal["id"], "HEAD")
            if not answer.approved:
                _say(quiet, f"proposal {proposal['id']} is not approved:\n"
                     + "\n".join(f"  - {p}" for p in answer.problems), err=True)
                continue
            claimed.append((proposal, approval_record(repo, config, answer)))
        if claimed:
            ours = {approval["id"] for _, approval in claimed}
            stray = _uncommitted_ids(root, history) - ours
            if stray:  # they would be swept into the approval commit
                raise ApprovalError(f"the log has {len(stray)} uncommitted record(s): commit "
                                    "them (`convergent commit`) or discard them, then run "
                                    "`convergent on-merge`")
            # An earlier run whose commit was refused left its (identical) line behind.
            present = {r.get("id") for r in read_records(root)}
            _append(root, [a for _, a in claimed if a["id"] not in present])
            _commit(root, [approval for _, approval in claimed])
    return claimed


def _settle_finished_merge(repo: git.Repo) -> None:
    """Drop merge state that outlived its merge commit.

    While the post-merge hook runs, git (2.39) still keeps MERGE_HEAD of the merge it
    has already committed, and refuses any commit then ("cannot do a partial commit
    during a merge"); git deletes that state right after the hook. It is removed here
    only when HEAD already contains every merged head: a merge still in progress (with
    conflicts) is never touched.
    """
    gitdir = Path(repo.git_dir)
    heads = (gitdir / "MERGE_HEAD").read_text().split() if (gitdir / "MERGE_HEAD").exists() \
        else []
    if heads and all(is_ancestor(repo, h, repo.head.commit.hexsha) for h in heads):
        for name in ("MERGE_HEAD", "MERGE_MODE", "MERGE_MSG", "AUTO_MERGE"):
            (gitdir / name).unlink(missing_ok=True)


def _commit(root: Path, approvals: list[dict[str, Any]]) -> None:
    ids = "\n".join(f"approval {a['id']} of proposal {Record(a).evidence['proposal']}"
                    for a in approvals)
    try:
        commit_log(root, f"convergent: record approval by merge\n\n{ids}")
    except git.GitCommandError as exc:  # a gate refused in the pre-commit hook
        raise ApprovalError(f"the approval commit was refused:\n{(exc.stderr or '').strip()}"
                            ) from None


def _push_claim(root: Path, remote: str) -> None:
    """Push the approval commit; it is our claim only if the push moved the remote ref."""
    repo = open_repo(root)
    if repo.head.is_detached:
        raise ApprovalError("HEAD is detached: check out the main branch to push the claim")
    branch = repo.active_branch.name
    lost = ("so no cycle was started here (another machine claimed it first); run "
            "`git pull` and `convergent on-merge` again")
    try:
        out = repo.git.push("--porcelain", remote, f"HEAD:refs/heads/{branch}")
    except git.GitCommandError as exc:
        raise ApprovalError(f"pushing the approval to {remote}/{branch} failed "
                            f"({(exc.stderr or '').strip()}), {lost}") from None
    # Two machines can write byte-identical approval commits (same merge, same identity,
    # same second): "=" (up to date) then means the other one's push landed first.
    if any(line.startswith("=\t") for line in out.splitlines()):
        raise ApprovalError(f"{remote}/{branch} already had this approval, {lost}")


def start_or_announce(root: Path, config: Config, proposal: dict[str, Any],
                      approval: dict[str, Any], quiet: bool) -> None:
    """Start the proposal's cycle when the config says so."""
    if not config["cycle"].get("autostart", True):
        _say(quiet, f"cycle due for proposal {proposal['id']}: run `convergent cycle run`")
        return
    from convergent.trainer.cycle import start_cycle

    _say(quiet, f"starting the cycle of proposal {proposal['id']}")
    start_cycle(root, proposal, approval)


def on_merge(root: Path, quiet: bool = True, *, push_remote: str | None = None
             ) -> list[dict[str, Any]]:
    """Record the approval of each newly merged proposal and start its cycle, once.

    :param push_remote: push the approval commit there before starting any cycle, so
        only one of several machines sharing that remote starts it.
    :returns: the approval records appended by this call (empty when nothing was new).
    """
    root = Path(root).resolve()
    config = committed_config(root)  # never the working tree's: anyone can edit that
    require_main_branch(open_repo(root), config, "on-merge")
    claimed = _claim(root, config, quiet)
    if claimed and push_remote:
        _push_claim(root, push_remote)
    for proposal, approval in claimed:
        evidence = Record(approval).evidence
        _say(quiet, f"proposal {proposal['id']} approved by {evidence['approved_by']}"
             f" (merge {evidence['commit'][:12]})")
        start_or_announce(root, config, proposal, approval, quiet)
    return [approval for _, approval in claimed]
