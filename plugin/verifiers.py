"""Verifiers: how an experience's evidence is checked, one per evidence type.

The built-ins (``execution``, ``grounding``, ``operator``) are registered through the
``register_verifiers`` hook like any plugin's; :func:`verify` dispatches on
``record["evidence"]["type"]``. A verifier is ``verify(record, ctx) -> Verdict`` and never
raises for bad evidence: it returns an unverified :class:`Verdict` that says why.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import git

from convergent.config import Config
from convergent.harness import ExecutionCase, Harness
from convergent.layout import SOURCES_DIR
from convergent.records import Verdict

Verifier = Callable[[Mapping[str, Any], "VerifyContext"], Verdict]

SHA256_REF = re.compile(r"sha256:([0-9a-f]{64})")
# A commit named by its (abbreviated) hex id, never a rev expression such as HEAD~1.
COMMIT_SHA = re.compile(r"[0-9a-f]{7,64}")


@dataclass
class VerifyContext:
    """What a verifier may use: the records repo and its resolved config."""

    root: Path
    config: Config

    @cached_property
    def sandbox(self) -> Harness:
        """The repo's execution harness (limits, isolation policy, verdict cache)."""
        return Harness.for_repo(self.root, self.config)

    @cached_property
    def verifiers(self) -> dict[str, Verifier]:
        return registered_verifiers()


def registered_verifiers() -> dict[str, Verifier]:
    """Evidence type -> verifier, from every plugin; the last registration wins."""
    from convergent.plugins import collect

    return collect("register_verifiers")


def verify(record: Mapping[str, Any], ctx: VerifyContext) -> Verdict:
    """The verdict of the verifier registered for the record's evidence type."""
    evidence = record.get("evidence")
    etype = evidence.get("type") if isinstance(evidence, Mapping) else None
    verifier = ctx.verifiers.get(etype) if isinstance(etype, str) else None
    if verifier is None:
        known = ", ".join(sorted(ctx.verifiers)) or "none"
        return Verdict(False, str(etype), f"no verifier for evidence type {etype!r} "
                       f"(registered: {known})")
    try:
        return verifier(record, ctx)
    except (KeyError, TypeError, AttributeError) as exc:
        # A hand-edited record may lack fields the schema gate reports; refuse, not crash.
        return Verdict(False, etype, f"malformed evidence: {type(exc).__name__}: {exc}")


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


def source_path(root: Path, ref: str) -> Path:
    """Where the snapshot named ``sha256:<hex>`` lives; ValueError for any other name
    (so a citation cannot point outside the sources dir)."""
    match = SHA256_REF.fullmatch(ref)
    if match is None:
        raise ValueError(f"source {ref!r} is not 'sha256:' + 64 lower-case hex digits")
    return root / SOURCES_DIR / match.group(1)


def store_source(root: Path, content: str | bytes) -> str:
    """Write a content-addressed source snapshot (UTF-8 for text); returns its name."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    ref = "sha256:" + hashlib.sha256(data).hexdigest()
    path = source_path(root, ref)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Temp file then rename: a concurrent reader never sees half a snapshot.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    return ref


def _snapshot_text(root: Path, ref: str) -> str:
    """The snapshot's text; ValueError naming what is wrong with it."""
    path = source_path(root, ref)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"snapshot {ref} is missing from {SOURCES_DIR}/") from None
    if "sha256:" + hashlib.sha256(data).hexdigest() != ref:
        raise ValueError(f"snapshot {ref} does not match its hash (edited after storing)")
    return data.decode("utf-8", errors="replace")


def verify_grounding(record: Mapping[str, Any], ctx: VerifyContext) -> Verdict:
    """Verified iff every cited quote occurs, whitespace-normalized, in its snapshot."""
    citations = record["evidence"]["citations"]
    if not citations:
        return Verdict(False, "grounding", "no citations")
    for i, citation in enumerate(citations):
        try:
            text = _snapshot_text(ctx.root, citation["source"])
        except ValueError as exc:
            return Verdict(False, "grounding", f"citation {i}: {exc}")
        quote = normalize_whitespace(citation["quote"])
        if not quote or quote not in normalize_whitespace(text):
            return Verdict(False, "grounding",
                           f"citation {i}: quote not found in {citation['source']}")
    return Verdict(True, "grounding", f"{len(citations)} quote(s) found in their snapshots")


# --- operator ------------------------------------------------------------------------------


def verify_operator(record: Mapping[str, Any], ctx: VerifyContext) -> Verdict:
    """Verified iff the commit exists here and its author is a configured operator
    (and is who ``approved_by`` names)."""
    evidence = record["evidence"]
    sha = evidence["commit"]
    if not isinstance(sha, str) or COMMIT_SHA.fullmatch(sha) is None:
        return Verdict(False, "operator", f"commit {sha!r} is not a hex commit id")
    author = _commit_author(ctx.root, sha)
    if author is None:
        return Verdict(False, "operator", f"commit {sha} does not exist in {ctx.root}")
    allowed = ctx.config.get("operators", {}).get("allowed", [])
    if author not in allowed:
        return Verdict(False, "operator", f"commit {sha} is by {author}, not a configured "
                       "operator ([operators] allowed)")
    if normalize_whitespace(evidence["approved_by"]) != author:
        return Verdict(False, "operator", f"approved_by {evidence['approved_by']!r} is not "
                       f"the commit's author {author}")
    return Verdict(True, "operator", f"commit {sha} by operator {author}")


def _commit_author(root: Path, sha: str) -> str | None:
    """``Name <email>`` of the commit's author, or None when there is no such commit."""
    try:
        commit = git.Repo(root).commit(sha)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.BadName, ValueError):
        return None
    return f"{commit.author.name} <{commit.author.email}>"
