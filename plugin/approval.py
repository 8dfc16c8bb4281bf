"""The approval policy, in one place: is this proposal approved, by whom, by which commit.

The answer comes from Git alone (:func:`approval_of`). A proposal is approved when the
commit of the main line (the first-parent history of the main branch) that brought its
record in is a *merge* whose first parent lacks the record and another parent has it,
whose *author* is a configured operator (``[operators] allowed``) and, with
``require_signed = true``, whose signature ``git verify-commit`` accepts (SSH signatures
checked against ``[operators] allowed_signers``, GPG against the local keyring).

Merges made by a Git host's web UI qualify: the host records the person who pressed
"merge" as the author (the committer is the host itself, so the committer is not
checked). Without signatures, anyone who can commit can write any author name: that is
said plainly by ``status`` and ``check`` (:func:`unsigned_warning`).

``approval`` records are a cache of this answer, written by ``convergent on-merge``. The
``approval`` gate and the cycle re-derive it and refuse a record that Git does not back
(:func:`record_problems`); the first approval record of a proposal is the one that counts
(:func:`approval_records`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git

from convergent.config import Config
from convergent.errors import ConvergentError
from convergent.gitops import open_repo
from convergent.layout import RECORDS_DIR

DEFAULT_MAIN_BRANCH = "main"


class ApprovalError(ConvergentError):
    """An approval could not be recorded, claimed or relied on (the message says why)."""


@dataclass(frozen=True)
class Approval:
    """Git's answer for one proposal at one revision of the main line.

    Approved when ``problems`` is empty; then ``merge`` is the approving merge commit,
    ``approved_by`` its author and ``proposal_commit`` the commit (on the merged branch)
    that added the proposal record.
    """

    proposal: str
    merge: str | None = None
    approved_by: str | None = None
    proposal_commit: str | None = None
    signed: bool = False
    problems: tuple[str, ...] = ()

    @property
    def approved(self) -> bool:
        return not self.problems and self.merge is not None


def person(actor: git.Actor) -> str:
    return f"{actor.name} <{actor.email}>"


def is_operator(config: Config, who: str) -> bool:
    return who in set(config["operators"].get("allowed", []))


def signatures_required(config: Config) -> bool:
    return bool(config["operators"].get("require_signed"))


def unsigned_warning(config: Config) -> str | None:
    """What ``status`` and ``check`` say when approvals need no signature (else None)."""
    if signatures_required(config):
        return None
    return ("approvals are unsigned ([operators] require_signed = false): any committer can "
            "spoof an operator by writing their name; require signed merges (see "
            "docs/operators.md, 'Signed approvals')")


def main_branch(config: Config) -> str:
    """The branch whose first-parent line approvals, cycles and ACTIVE live on."""
    return str(config["operators"].get("main_branch") or DEFAULT_MAIN_BRANCH)


def require_main_branch(repo: git.Repo, config: Config, what: str) -> None:
    """Refuse unless HEAD is the main branch, checked out."""
    branch = main_branch(config)
    current = None if repo.head.is_detached else repo.active_branch.name
    if current != branch:
        raise ApprovalError(f"{what} runs on the main branch {branch!r} ([operators] "
                            f"main_branch), but HEAD is {current or 'detached'}: "
                            f"`git checkout {branch}` first")


def current_identity(repo: git.Repo) -> str:
    """``Name <email>`` git would write as the author of the next commit."""
    ident = repo.git.var("GIT_AUTHOR_IDENT")
    return ident[:ident.rindex(">") + 1]


def require_operator(root: Path, config: Config) -> str:
    who = current_identity(open_repo(root))
    if not is_operator(config, who):
        raise ApprovalError(f"{who} is not a configured operator ([operators] allowed in "
                            ".convergent.toml): only an operator's merge approves")
    return who


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


def operator_commit_problems(root: Path, config: Config, sha: str) -> list[str]:
    """Why ``sha`` is not an operator's own commit (empty: it is): its author is a
    configured operator and, when signatures are required, its signature verifies."""
    commit = open_repo(root).commit(sha)
    author = person(commit.author)
    problems = []
    if not is_operator(config, author):
        problems.append(f"commit {sha[:12]} was made by {author}, who is not a configured "
                        "operator ([operators] allowed in .convergent.toml)")
    if signatures_required(config):
        problem = signature_problem(root, config, sha)
        if problem:
            problems.append(f"commit {sha[:12]}: {problem}")
    return problems


def _line_needle(record_id: str) -> str:
    # Canonical JSON: a record's own id is the only place this exact text can occur
    # (quotes inside strings are escaped), links and references do not match it.
    return f'"id":"{record_id}"'


def _first_adding(repo: git.Repo, needle: str, rev: str, *, first_parent: bool) -> str | None:
    """The oldest commit of ``rev``'s history (first-parent line only, when asked) whose
    log gained ``needle``."""
    args = ["--first-parent"] if first_parent else []
    try:
        out = repo.git.log(*args, "--reverse", "--format=%H", f"-S{needle}", rev, "--",
                           RECORDS_DIR)
    except git.GitCommandError:  # no such revision (e.g. no commit yet)
        return None
    return out.split()[0] if out.strip() else None


def approval_of(root: Path, config: Config, proposal_id: str, at: str = "HEAD") -> Approval:
    """Whether the proposal is approved on ``at``'s main line, by whom and by which merge."""
    repo = open_repo(root)
    needle = _line_needle(proposal_id)
    brought = _first_adding(repo, needle, at, first_parent=True)
    if brought is None:
        return Approval(proposal_id, problems=(
            f"proposal {proposal_id} is not in the committed history of {at}",))
    merge = repo.commit(brought)
    if len(merge.parents) < 2:
        return Approval(proposal_id, problems=(
            f"commit {brought[:12]} brought proposal {proposal_id} into the main line "
            "without a merge: a proposal is approved by merging its branch",))
    proposal_commit = None
    for parent in merge.parents[1:]:
        proposal_commit = _first_adding(repo, needle, parent.hexsha, first_parent=False)
        if proposal_commit is not None:
            break
    problems = list(operator_commit_problems(root, config, brought))
    if proposal_commit is None:
        problems.append(f"merge {brought[:12]} does not bring the proposal's branch in")
    return Approval(proposal_id, merge=brought, approved_by=person(merge.author),
                    proposal_commit=proposal_commit,
                    signed=not problems and signatures_required(config),
                    problems=tuple(problems))


def approval_records(history: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Proposal id -> its first approval record (a later one never counts)."""
    out: dict[str, dict[str, Any]] = {}
    for record in history:
        if record.get("kind") != "approval":
            continue
        evidence = record.get("evidence")
        proposal = evidence.get("proposal") if isinstance(evidence, dict) else None
        if isinstance(proposal, str):
            out.setdefault(proposal, dict(record))
    return out


def _named_merge_problems(root: Path, sha: str) -> list[str]:
    """What is wrong with the commit an approval names, on its face."""
    try:
        commit = open_repo(root).commit(sha)
    except (ValueError, git.BadName):
        return [f"approval commit {sha} does not exist"]
    if len(commit.parents) < 2:
        return [f"commit {sha[:12]} is not a merge: a proposal is approved by merging its "
                "branch"]
    return []


def record_problems(root: Path, config: Config, record: Mapping[str, Any], at: str
                    ) -> list[str]:
    """Why the approval record is not backed by Git at ``at`` (empty: it is).

    The record must name the proposal, and repeat Git's answer: the approving merge, its
    author and the proposal commit.
    """
    evidence = record.get("evidence")
    evidence = evidence if isinstance(evidence, dict) else {}
    proposal, merge = evidence.get("proposal"), evidence.get("commit")
    if not isinstance(proposal, str) or not isinstance(merge, str):
        return ["an approval names the proposal (evidence.proposal) and the merge commit "
                "that approved it (evidence.commit)"]
    answer = approval_of(root, config, proposal, at)
    if not answer.approved:
        return [*_named_merge_problems(root, merge),
                *(f"Git does not back this approval: {p}" for p in answer.problems)]
    problems = []
    if merge != answer.merge:
        problems.append(f"names merge {merge[:12]}, but proposal {proposal} was brought into "
                        f"the main line by {str(answer.merge)[:12]}")
    if evidence.get("approved_by") != answer.approved_by:
        problems.append(f"approved_by {evidence.get('approved_by')!r} is not the merge's "
                        f"author {answer.approved_by!r}")
    if evidence.get("proposal_commit") != answer.proposal_commit:
        problems.append(f"proposal_commit {evidence.get('proposal_commit')!r} is not the "
                        f"commit that added the proposal ({answer.proposal_commit})")
    return problems
