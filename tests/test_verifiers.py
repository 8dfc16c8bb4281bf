"""The built-in verifiers (execution, grounding, operator) and the hook dispatcher."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from drafts import SOURCE, experience
from evidence import OPERATOR, as_person, git, register

from convergent.config import Config, default_config
from convergent.hookspecs import hookimpl
from convergent.layout import SOURCES_DIR
from convergent.plugins import pm
from convergent.records import Verdict
from convergent.sources import store_source
from convergent.verifiers import VerifyContext, verify
from convergent.vouch import vouch_digest, vouch_message


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "records"
    root.mkdir()
    git(root, "init", "-q")
    return root


@pytest.fixture
def config() -> Config:
    cfg = default_config()
    cfg["operators"]["allowed"] = [OPERATOR]
    cfg["sandbox"].update(timeout_s=2.0, cpu_s=1)
    return cfg


@pytest.fixture
def ctx(repo: Path, config: Config) -> VerifyContext:
    return VerifyContext(repo, config)


# --- execution -----------------------------------------------------------------------------


def test_execution_passes_humaneval_style(ctx: VerifyContext) -> None:
    verdict = verify(experience(3), ctx)
    assert verdict == Verdict(True, "execution", verdict.detail)
    assert "tests passed" in verdict.detail


def test_execution_fails_with_the_reason(ctx: VerifyContext) -> None:
    verdict = verify(experience(3, passing=False), ctx)
    assert not verdict.verified and verdict.verifier == "execution"
    assert "AssertionError" in verdict.detail


def test_execution_without_entry_point_runs_tests_as_written(ctx: VerifyContext) -> None:
    record = experience(0)
    record["evidence"] = {"type": "execution", "language": "python",
                          "tests": "assert times_0(2, 2) == 4\n"}
    assert verify(record, ctx).verified
    record["evidence"]["tests"] = "assert times_0(2, 2) == 5\n"
    assert not verify(record, ctx).verified


def test_execution_entry_point_must_be_checked(ctx: VerifyContext) -> None:
    # HumanEval: tests only define check(); without calling it nothing would be tested.
    record = experience(0, passing=False)
    record["evidence"]["entry_point"] = "times_0"
    assert not verify(record, ctx).verified


def test_execution_over_the_limits_is_unverified(ctx: VerifyContext) -> None:
    record = experience(0)
    record["response"] += "while True:\n    pass\n"
    verdict = verify(record, ctx)
    assert not verdict.verified
    assert "CPU limit" in verdict.detail or "timed out" in verdict.detail


def test_re_verifying_uses_the_cache(repo: Path, config: Config) -> None:
    first = VerifyContext(repo, config)
    assert verify(experience(1), first).verified
    again = VerifyContext(repo, config)
    assert verify(experience(1), again).verified
    assert (first.sandbox.runs, again.sandbox.runs, again.sandbox.hits) == (1, 0, 1)
    assert list((repo / ".convergent" / "verify-cache").glob("*/*.json"))


# --- grounding -----------------------------------------------------------------------------


def grounded(*citations: tuple[str, str]) -> dict[str, Any]:
    return {"kind": "experience", "claim": "cited", "task": "q", "response": "a",
            "evidence": {"type": "grounding",
                         "citations": [{"source": s, "quote": q} for s, q in citations]},
            "confidence": 0.8, "source": dict(SOURCE)}


TEXT = "The mitochondria is\nthe  powerhouse of the cell.\n\tIt makes ATP."


def test_store_source_is_content_addressed(repo: Path) -> None:
    ref = store_source(repo, TEXT, registered_by="docs-ingest")
    assert ref.startswith("sha256:")
    assert store_source(repo, TEXT.encode(), registered_by="docs-ingest") == ref
    assert (repo / SOURCES_DIR / ref.removeprefix("sha256:")).read_text() == TEXT


def test_grounding_passes_with_whitespace_normalized_quotes(ctx: VerifyContext) -> None:
    ref = register(ctx.root, TEXT)
    verdict = verify(grounded((ref, "the powerhouse   of the\ncell. It makes"),
                              (ref, "mitochondria")), ctx)
    assert verdict.verified, verdict


def test_grounding_fails_on_a_quote_not_in_the_source(ctx: VerifyContext) -> None:
    ref = register(ctx.root, TEXT)
    verdict = verify(grounded((ref, "mitochondria"), (ref, "the powerhouse of the city")), ctx)
    assert not verdict.verified
    assert "citation 1" in verdict.detail and "not found" in verdict.detail


def test_grounding_fails_on_a_missing_snapshot(ctx: VerifyContext) -> None:
    verdict = verify(grounded(("sha256:" + "0" * 64, "anything")), ctx)
    assert not verdict.verified and "missing" in verdict.detail


@pytest.mark.parametrize("ref", ["sha256:../../.convergent.toml", "md5:abc", "sha256:ABC"])
def test_grounding_refuses_names_that_are_not_hashes(ctx: VerifyContext, ref: str) -> None:
    verdict = verify(grounded((ref, "x")), ctx)
    assert not verdict.verified and "not 'sha256:'" in verdict.detail


def test_grounding_fails_on_an_edited_snapshot(ctx: VerifyContext) -> None:
    ref = register(ctx.root, TEXT)
    # Edited after storing, and the edit committed (the working tree is never read).
    (ctx.root / SOURCES_DIR / ref.removeprefix("sha256:")).write_text(TEXT + " Also: lies.")
    git(ctx.root, "commit", "-q", "-am", "edit a source")
    verdict = verify(grounded((ref, "Also: lies.")), ctx)
    assert not verdict.verified and "does not match its hash" in verdict.detail


# --- operator ------------------------------------------------------------------------------


def approval(commit: str | None = None, approved_by: str = OPERATOR) -> dict[str, Any]:
    evidence = {"type": "operator", "approved_by": approved_by}
    if commit is not None:
        evidence["commit"] = commit
    return {"kind": "experience", "claim": "approved", "task": "t", "response": "r",
            "evidence": evidence,
            "confidence": 1.0, "source": {**SOURCE, "origin": "operator"}}


def commit_as(repo: Path, author: str, message: str = "approve") -> str:
    git(repo, *as_person(author), "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def vouched(repo: Path, author: str, approved_by: str = OPERATOR) -> dict[str, Any]:
    """An approval whose commit, by ``author``, carries the trailer for this record."""
    record = approval(approved_by=approved_by)
    sha = commit_as(repo, author, vouch_message([vouch_digest(record)], ["approved"]))
    record["evidence"]["commit"] = sha
    return record


def test_operator_passes_for_a_configured_author(ctx: VerifyContext) -> None:
    record = vouched(ctx.root, OPERATOR)
    assert verify(record, ctx).verified
    sha = record["evidence"]["commit"]
    record["evidence"]["commit"] = sha[:12]
    assert verify(record, ctx).verified


def test_operator_fails_for_an_author_not_configured(ctx: VerifyContext) -> None:
    record = vouched(ctx.root, "Mallory <mallory@example.com>", "Mallory <mallory@example.com>")
    verdict = verify(record, ctx)
    assert not verdict.verified and "not a configured operator" in verdict.detail


def test_operator_fails_when_approved_by_is_not_the_author(ctx: VerifyContext) -> None:
    record = vouched(ctx.root, OPERATOR, "Bob Operator <bob@example.com>")
    verdict = verify(record, ctx)
    assert not verdict.verified and "approved_by" in verdict.detail


@pytest.mark.parametrize("commit", ["deadbeef" * 5, "deadbeef", "HEAD", "main~0"])
def test_operator_fails_for_a_missing_commit(ctx: VerifyContext, commit: str) -> None:
    commit_as(ctx.root, OPERATOR)
    verdict = verify(approval(commit), ctx)
    assert not verdict.verified and commit in verdict.detail


def test_operator_fails_outside_a_git_repo(tmp_path: Path, config: Config) -> None:
    verdict = verify(approval("a" * 40), VerifyContext(tmp_path, config))
    assert not verdict.verified and "does not exist" in verdict.detail


# --- dispatch ------------------------------------------------------------------------------


def test_unknown_evidence_type_is_unverified(ctx: VerifyContext) -> None:
    record = experience(0)
    record["evidence"] = {"type": "oracle"}
    verdict = verify(record, ctx)
    assert not verdict.verified
    assert "no verifier for evidence type 'oracle'" in verdict.detail
    assert "execution" in verdict.detail  # names what is registered


def test_malformed_evidence_is_unverified_not_an_error(ctx: VerifyContext) -> None:
    record = experience(0)
    del record["evidence"]["tests"]
    verdict = verify(record, ctx)
    assert not verdict.verified and "malformed evidence" in verdict.detail


class OracleVerifiers:
    """A third-party plugin: adds a type and replaces a built-in one."""

    @hookimpl
    def register_verifiers(self, register: Callable[[str, Callable[..., Any]], None]) -> None:
        register("oracle", lambda record, ctx: Verdict(True, "oracle", "the oracle agrees"))
        register("execution", lambda record, ctx: Verdict(False, "strict", "never"))


@pytest.fixture
def oracle_plugin() -> Iterator[None]:
    plugin = OracleVerifiers()
    pm.register(plugin, "test-oracle")
    yield
    pm.unregister(plugin)


@pytest.mark.usefixtures("oracle_plugin")
def test_a_plugin_adds_and_replaces_verifiers(repo: Path, config: Config) -> None:
    ctx = VerifyContext(repo, config)
    record = experience(0)
    assert verify(record, ctx) == Verdict(False, "strict", "never")
    record["evidence"] = {"type": "oracle"}
    assert verify(record, ctx).verified
