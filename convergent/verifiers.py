"""Verifiers: how an experience's evidence is checked, one per evidence type.

The built-ins (``execution``, ``grounding``, ``operator``) are registered through the
``register_verifiers`` hook like any plugin's; :func:`verify` dispatches on
``record["evidence"]["type"]``. A verifier is ``verify(record, ctx) -> Verdict`` and never
raises for bad evidence: it returns an unverified :class:`Verdict` that says why.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import git

from convergent.approval import (
    is_operator,
    operator_commit_problems,
    person,
    policy_before,
)
from convergent.config import Config
from convergent.gitops import author_identity, is_ancestor
from convergent.harness import ExecutionCase, Harness
from convergent.plugins import collect
from convergent.records import Record, Verdict
from convergent.sources import committed_snapshot, provenance_problem
from convergent.vouch import TRAILER, commit_vouches, vouch_digest
from convergent.vouch import signature_problem as vouch_signature_problem

Verifier = Callable[[Mapping[str, Any], "VerifyContext"], Verdict]

# A commit named by its (abbreviated) hex id, never a rev expression such as HEAD~1.
COMMIT_SHA = re.compile(r"[0-9a-f]{7,64}")


@dataclass
class VerifyContext:
    """What a verifier may use: the records repo and its resolved config, and where the
    record stands in Git.

    ``base_rev`` is the revision the record builds on, where its evidence must already be
    committed: HEAD at emit and for the staged change, the first parent when a commit is
    checked (None: nothing committed yet). ``committer`` is who commits the record
    (``Name <email>``): the commit's author when a commit is checked, else (None) the git
    identity of this clone.
    """

    root: Path
    config: Config
    base_rev: str | None = "HEAD"
    committer: str | None = None

    @cached_property
    def repo(self) -> git.Repo | None:
        from convergent.errors import RepoError
        from convergent.gitops import open_repo

        try:
            return open_repo(self.root)
        except RepoError:
            return None

    @cached_property
    def policy(self) -> tuple[Config, str | None]:
        """The operator policy in force at ``base_rev`` (who is an operator, the allowed
        signers) and the commit it is committed at: a record cannot make its own approver
        an operator. Nothing committed yet: ``config`` (the working tree's signers)."""
        from convergent.approval import policy_in_force

        if self.repo is None or self.base_commit is None:
            return self.config, None
        return policy_in_force(self.repo, self.base_commit) or (self.config, None)

    @cached_property
    def base_commit(self) -> str | None:
        """``base_rev`` as a commit sha; None when there is none."""
        if self.repo is None or self.base_rev is None:
            return None
        try:
            return self.repo.commit(self.base_rev).hexsha
        except (git.BadName, ValueError):
            return None

    @cached_property
    def record_author(self) -> str | None:
        if self.committer is not None or self.repo is None:
            return self.committer

        try:
            return author_identity(self.repo)
        except git.GitCommandError:  # no identity configured: nobody to compare with
            return None

    @cached_property
    def sandbox(self) -> Harness:
        """The repo's execution harness (limits, isolation policy, verdict cache)."""
        return Harness.for_repo(self.root, self.config)

    @cached_property
    def verifiers(self) -> dict[str, Verifier]:
        return registered_verifiers()


def registered_verifiers() -> dict[str, Verifier]:
    """Evidence type -> verifier, from every plugin; the last registration wins."""
    return collect("register_verifiers")


def verify(record: Mapping[str, Any], ctx: VerifyContext) -> Verdict:
    """The verdict of the verifier registered for the record's evidence type."""
    etype = Record(record).evidence.get("type")
    verifier = ctx.verifiers.get(etype) if isinstance(etype, str) else None
    if verifier is None:
        known = ", ".join(sorted(ctx.verifiers)) or "none"
        return Verdict(False, str(etype), f"no verifier for evidence type {etype!r} "
                       f"(registered: {known})")
    try:
        return verifier(record, ctx)
    except (KeyError, TypeError, AttributeError) as exc:
        # A hand-edited record may lack fields the schema gate reports; refuse, not crash.
        return Verdict(False, str(etype), f"malformed evidence: {type(exc).__name__}: {exc}")


# --- execution -----------------------------------------------------------------------------


def execution_case(record: Mapping[str, Any]) -> ExecutionCase:
    """What the HumanEval convention runs: the response, its tests, ``check(entry_point)``."""
    evidence = record["evidence"]
    for name in ("tests", "entry_point"):
        if evidence.get(name) is not None and not isinstance(evidence[name], str):
            raise TypeError(f"evidence.{name} must be a string")
    if not isinstance(record["response"], str):
        raise TypeError("response must be a string")
    return ExecutionCase(record["response"], evidence["tests"], evidence.get("entry_point") or None)


def verify_execution(record: Mapping[str, Any], ctx: VerifyContext) -> Verdict:
    """Verified iff the harness reports that every test ran to the end, on honest values,
    with tests that fail a null solution, inside an isolated sandbox's limits (see
    :mod:`convergent.harness`)."""
    outcome = ctx.sandbox.verify(execution_case(record))
    # The detail is deterministic (no timings): the verdict is part of the record's id.
    return Verdict(outcome.passed, "execution", outcome.detail())


# --- grounding -----------------------------------------------------------------------------


def normalize_whitespace(text: str) -> str:
    return " ".join(text.split())


def verify_grounding(record: Mapping[str, Any], ctx: VerifyContext) -> Verdict:
    """Verified iff every cited quote occurs, whitespace-normalized, in its snapshot, and
    every snapshot may be cited by this record (see :mod:`convergent.sources`:
    committed before it, a regular file, registered by another source or an operator)."""
    citations = record["evidence"]["citations"]
    if not citations:
        return Verdict(False, "grounding", "no citations")
    if ctx.repo is None:
        return Verdict(False, "grounding", f"{ctx.root} is not a git repository: snapshots "
                       "are cited as committed")
    emitter = record["source"]["emitter"] if isinstance(record.get("source"), Mapping) else None
    for i, citation in enumerate(citations):
        try:
            snapshot = committed_snapshot(ctx.repo, citation["source"], ctx.base_commit)
        except ValueError as exc:
            return Verdict(False, "grounding", f"citation {i}: {exc}")
        problem = provenance_problem(snapshot, emitter=emitter, committer=ctx.record_author,
                                     config=ctx.config, root=ctx.root)
        if problem is not None:
            return Verdict(False, "grounding", f"citation {i}: {problem}")
        quote = normalize_whitespace(citation["quote"])
        if not quote or quote not in normalize_whitespace(snapshot.text):
            return Verdict(False, "grounding",
                           f"citation {i}: quote not found in {citation['source']}")
    return Verdict(True, "grounding", f"{len(citations)} quote(s) found in their snapshots")


# --- operator ------------------------------------------------------------------------------


def verify_operator(record: Mapping[str, Any], ctx: VerifyContext) -> Verdict:
    """Verified iff a configured operator vouches for *this* record (its vouch digest,
    :mod:`convergent.vouch`): by a commit of theirs in the record's history that carries
    the digest (signed, when the config requires signatures), or by their SSH signature
    over it. Every piece of evidence given must hold."""
    evidence = record["evidence"]
    approved_by = normalize_whitespace(evidence["approved_by"])
    policy, policy_rev = ctx.policy
    if not is_operator(policy, approved_by):
        return Verdict(False, "operator", f"approved_by {approved_by} is not a configured "
                       "operator ([operators] allowed)")
    digest = vouch_digest(record)
    passed = []
    if "commit" in evidence:
        problem = _commit_problem(evidence["commit"], approved_by, digest, ctx)
        if problem is not None:
            return Verdict(False, "operator", problem)
        passed.append(f"commit {evidence['commit'][:12]} by operator {approved_by}")
    if "signature" in evidence:
        signature = evidence["signature"]
        problem = (vouch_signature_problem(ctx.root, policy, policy_rev, approved_by, digest,
                                           signature)
                   if isinstance(signature, str) else "evidence.signature must be a string")
        if problem is not None:
            return Verdict(False, "operator", problem)
        passed.append(f"signature of operator {approved_by}")
    if not passed:
        return Verdict(False, "operator", "no evidence.commit or evidence.signature vouches")
    return Verdict(True, "operator", f"{' and '.join(passed)} vouch for {digest}")


def _commit_problem(sha: Any, approved_by: str, digest: str, ctx: VerifyContext) -> str | None:
    """Why the commit ``sha`` does not vouch for ``digest`` as ``approved_by`` (None: it
    does)."""
    if not isinstance(sha, str) or COMMIT_SHA.fullmatch(sha) is None:
        return f"commit {sha!r} is not a hex commit id"
    try:
        if ctx.repo is None:
            raise ValueError(sha)
        commit = ctx.repo.commit(sha)
    except (git.BadName, ValueError):
        return f"commit {sha} does not exist in {ctx.root}"
    author = person(commit.author)
    # An operator's by the policy in force before that commit (signed, when required).
    if not is_operator(policy_before(ctx.repo, commit.hexsha, ctx.config)[0], author):
        return f"commit {sha} is by {author}, not a configured operator ([operators] allowed)"
    if author != approved_by:
        return f"approved_by {approved_by!r} is not the commit's author {author}"
    problems = operator_commit_problems(ctx.root, commit.hexsha, ctx.config)
    if problems:
        return f"commit {sha}: {'; '.join(problems)} ([operators] require_signed)"
    if ctx.base_commit is None or not is_ancestor(ctx.repo, commit.hexsha, ctx.base_commit):
        return (f"commit {sha} is not in the history this record is committed on (vouch on "
                "this branch, before the record)")
    if not commit_vouches(ctx.repo, commit, digest):
        return (f"commit {sha} by operator {author} does not vouch for this record: no "
                f"'{TRAILER}: {digest}' trailer and no added line holding the digest "
                "(vouch with `convergent vouch`)")
    return None
