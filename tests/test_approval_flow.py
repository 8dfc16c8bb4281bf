"""Approval by merge, end to end with the real git CLI and the installed git hooks: only an
operator's merge (signed, when required) approves, and it makes exactly one cycle due."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import UNSIGNED_WARNING
from gapflow import (
    as_operator,
    gap,
    git,
    levers,
    records,
    set_config,
    skip_git_hooks,
    without_hooks,
)

from convergent.cli import cli
from convergent.log import segment_paths
from convergent.on_merge import ApprovalError, on_merge
from convergent.proposals import Proposal, propose
from convergent.records import encode, finalize
from convergent.trainer import cycle

OPERATOR = "Ada Operator <ada@example.com>"


@pytest.fixture
def proposal_repo(records_repo: Path, monkeypatch: pytest.MonkeyPatch
                  ) -> Iterator[tuple[Path, Proposal]]:
    """A records repo (cycles not autostarted) with a proposal branch for gap 'strings'."""
    set_config(records_repo, "cycle", "autostart", "false")  # no training in these tests
    with monkeypatch.context() as m:
        skip_git_hooks(m)  # the setup's gates are tested elsewhere; merges below run them
        gap(records_repo)
        levers(records_repo)
        proposal = propose(records_repo, "strings")
    yield records_repo, proposal


def output(done: subprocess.CompletedProcess[str]) -> str:
    return done.stdout + done.stderr  # git runs hooks with their stdout on its stderr


def check_all(root: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["check", "--all", "--repo", str(root)])
    return result.exit_code, result.output


def forge_approval(root: Path, proposal: str, merge: str) -> dict[str, object]:
    """An approval record written by hand into the log (not through on-merge)."""
    record = finalize({"kind": "approval", "claim": "approved, trust me",
                       "evidence": {"type": "operator", "approved_by": OPERATOR,
                                    "commit": merge, "proposal": proposal},
                       "links": [proposal], "confidence": 1.0,
                       "source": {"emitter": "by-hand", "model": "none", "origin": "operator"}},
                      None)
    with segment_paths(root)[-1].open("ab") as fh:
        fh.write(encode(record))
    git(root, "add", "data/convergence/records")
    return record


def test_only_an_operators_merge_approves_and_starts_exactly_one_cycle(
        proposal_repo: tuple[Path, Proposal]) -> None:
    root, proposal = proposal_repo
    pid = proposal.record["id"]

    # A non-operator's merge: the post-merge hook says why, nothing is approved.
    merged = git(root, "merge", "--no-ff", "-m", "merge it", proposal.branch)
    assert f"proposal {pid} is not approved" in output(merged)
    assert "Test Agent <agent@example.com>, who is not a configured operator" in output(merged)
    assert on_merge(root) == []
    assert not records(root, "approval")
    git(root, "reset", "--hard", "-q", "HEAD~1")

    # The operator's merge: the hook records one approval and one cycle is due.
    merged = git(root, *as_operator("merge", "--no-ff", "-m", "approve", proposal.branch))
    assert f"cycle due for proposal {pid}: run `convergent cycle run`" in output(merged)
    merge = git(root, "rev-parse", "HEAD~1").stdout.strip()  # HEAD is the approval commit
    [approval] = records(root, "approval")
    assert approval["evidence"] == {"type": "operator", "approved_by": OPERATOR,
                                    "commit": merge, "proposal": pid,
                                    "proposal_commit": git(root, "rev-parse",
                                                           proposal.branch).stdout.strip()}
    assert approval["links"] == [pid] and approval["source"]["origin"] == "operator"

    for _ in range(3):  # on-merge again and again: nothing new, no second cycle
        again = CliRunner().invoke(cli, ["on-merge", "--repo", str(root)])
        assert again.exit_code == 0 and again.output == ""
    assert records(root, "approval") == [approval]
    assert check_all(root) == (0, UNSIGNED_WARNING + "all gates passed\n")

    # A second approval of the same proposal, even naming the real merge, is refused.
    forge_approval(root, pid, merge)
    refused = git(root, "commit", "-m", "approve twice", check=False)
    assert refused.returncode != 0
    assert f"approval: proposal {pid} is already approved by {approval['id']}" in refused.stderr


def test_the_merge_starts_the_cycle_once_when_autostart_is_on(
        proposal_repo: tuple[Path, Proposal], monkeypatch: pytest.MonkeyPatch) -> None:
    root, proposal = proposal_repo
    set_config(root, "cycle", "autostart", "true")
    started: list[tuple[Path, str, str]] = []
    monkeypatch.setattr(cycle, "start_cycle", lambda root, proposal, approval: started.append(
        (root, proposal["id"], approval["id"])))
    skip_git_hooks(monkeypatch)  # the hook would run the real cycle in its own process
    git(root, *as_operator("merge", "--no-ff", "-q", "-m", "approve", proposal.branch))
    [approval] = on_merge(root)
    assert on_merge(root) == [] and on_merge(root) == []
    assert started == [(root, proposal.record["id"], approval["id"])]


def test_a_forged_approval_without_a_merge_is_refused(proposal_repo: tuple[Path, Proposal]
                                                      ) -> None:
    root, proposal = proposal_repo
    head = git(root, "rev-parse", "HEAD").stdout.strip()
    forge_approval(root, proposal.record["id"], head)
    refused = git(root, *as_operator("commit", "-m", "approve"), check=False)
    assert refused.returncode != 0  # the pre-commit hook ran the approval gate
    assert f"approval: commit {head[:12]} is not a merge" in refused.stderr
    skipped = git(root, *as_operator("commit", "--no-verify", "-m", "approve, skipping hooks"),
                  check=False)
    assert skipped.returncode != 0  # the reference-transaction hook ran the gates anyway
    assert f"approval: commit {head[:12]} is not a merge" in skipped.stderr
    git(root, *without_hooks(*as_operator("commit", "-q", "-m", "approve, without hooks")))
    code, text = check_all(root)
    assert code == 1 and f"approval: commit {head[:12]} is not a merge" in text


def test_approve_merges_as_the_current_operator(proposal_repo: tuple[Path, Proposal]) -> None:
    root, proposal = proposal_repo
    head = git(root, "rev-parse", "HEAD").stdout
    refused = CliRunner().invoke(cli, ["approve", "--repo", str(root)])
    assert refused.exit_code == 1
    assert "Test Agent <agent@example.com> is not a configured operator" in refused.output
    assert git(root, "rev-parse", "HEAD").stdout == head  # nothing was merged

    git(root, "config", "user.name", "Ada Operator")
    git(root, "config", "user.email", "ada@example.com")
    result = CliRunner().invoke(cli, ["approve", "--repo", str(root)])
    assert result.exit_code == 0, result.output
    [approval] = records(root, "approval")
    assert f"approved: {approval['id']} (merge {approval['evidence']['commit'][:12]})" in (
        result.output)
    merge = git(root, "log", "-1", "--format=%an <%ae> %s", approval["evidence"]["commit"])
    assert merge.stdout.strip() == f"{OPERATOR} convergent: approve {proposal.branch}"
    assert approval["evidence"]["proposal"] == proposal.record["id"]


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f",
                    str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


def test_signed_approvals_need_a_valid_signature_from_an_allowed_signer(
        proposal_repo: tuple[Path, Proposal], tmp_path: Path) -> None:
    root, proposal = proposal_repo
    allowed, stranger = tmp_path / "ada_key", tmp_path / "stranger_key"
    (root / "allowed_signers").write_text(f'ada@example.com namespaces="git" '
                                          f"{_keygen(allowed)}\n")
    _keygen(stranger)
    git(root, "add", "allowed_signers")
    git(root, "commit", "-q", "-m", "operators' signing keys")
    set_config(root, "operators", "allowed_signers", '"allowed_signers"')
    set_config(root, "operators", "require_signed", "true")

    def merge(key: Path | None) -> str:
        signing = ["-c", f"user.signingkey={key}"] if key else []
        done = git(root, *as_operator("-c", "gpg.format=ssh", *signing, "merge", "--no-ff",
                                      *(["-S"] if key else []), "-m", "approve",
                                      proposal.branch))
        return output(done)

    for key in (None, stranger):  # unsigned, then signed by a key not in allowed_signers
        refused = merge(key)
        assert "signature does not verify" in refused and "cycle due" not in refused
        assert not records(root, "approval")
        git(root, "reset", "--hard", "-q", "HEAD~1")

    approved = merge(allowed)
    assert f"cycle due for proposal {proposal.record['id']}" in approved
    assert len(records(root, "approval")) == 1
    assert check_all(root)[0] == 0


def test_two_clones_sharing_a_remote_start_one_cycle(proposal_repo: tuple[Path, Proposal],
                                                     tmp_path: Path) -> None:
    root, proposal = proposal_repo
    git(tmp_path, "clone", "-q", "--bare", str(root), "remote.git")
    for name in ("a", "b"):
        git(tmp_path, "clone", "-q", "remote.git", name)
    a, b = tmp_path / "a", tmp_path / "b"
    git(b, "config", "user.name", "Another Machine")
    git(a, *as_operator("merge", "--no-ff", "-q", "-m", "approve",
                        f"origin/{proposal.branch}"))
    git(a, "push", "-q", "origin", "main")
    git(b, "pull", "-q", "--no-rebase")

    [mine] = on_merge(a, push_remote="origin")
    with pytest.raises(ApprovalError, match="so no cycle was started here"):
        on_merge(b, push_remote="origin")  # it lost the race to claim the merge
    git(b, "pull", "-q", "--no-rebase", "--no-edit")
    assert on_merge(b, push_remote="origin") == []
    # Both wrote the same approval (a function of the merge); Git kept one line.
    assert records(b, "approval") == [mine]


def test_unsigned_approvals_are_said_plainly(proposal_repo: tuple[Path, Proposal]) -> None:
    """Without required signatures anyone can write an operator's name on a merge; status
    and check say so every time."""
    root, proposal = proposal_repo
    spoofed = git(root, *as_operator("merge", "--no-ff", "-m", "I am Ada", proposal.branch))
    assert f"cycle due for proposal {proposal.record['id']}" in output(spoofed)  # the hole
    status = CliRunner().invoke(cli, ["status", "--json", "--repo", str(root)])
    assert '"approval_signatures": "UNSIGNED: approvals are unsigned' in status.output
    text = CliRunner().invoke(cli, ["status", "--repo", str(root)]).output
    flat = " ".join(part.strip(" │") for part in text.splitlines())
    assert "approval signatures │ UNSIGNED: approvals are unsigned" in text
    assert "any committer can spoof an operator" in " ".join(flat.split())
    code, out = check_all(root)
    assert code == 0 and out.startswith(UNSIGNED_WARNING)
    set_config(root, "operators", "require_signed", "true")
    assert "warning" not in check_all(root)[1]


def test_a_later_line_reusing_the_approved_proposal_id_is_not_what_a_cycle_runs(
        proposal_repo: tuple[Path, Proposal], monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator merges the proposal; a line past the hooks then repeats its id with
    another manifest (what the cycle would train on): on-merge and the cycle take the
    record that id addresses, never the look-alike (before: on-merge claimed the approval
    twice and started a cycle for each, and the cycle's due list took the last line)."""
    import json

    from convergent.records import canonical_json

    root, proposal = proposal_repo
    set_config(root, "cycle", "autostart", "true")
    started: list[dict[str, object]] = []
    monkeypatch.setattr(cycle, "start_cycle", lambda root, proposal, approval: started.append(
        proposal))
    skip_git_hooks(monkeypatch)  # no post-merge hook: the forged line lands before on-merge
    git(root, *as_operator("merge", "--no-ff", "-q", "-m", "approve", proposal.branch))
    honest = proposal.record
    evidence = dict(honest["evidence"], manifest=dict(
        honest["evidence"]["manifest"], experiences=["sha256:" + "ee" * 32]))
    forged = dict(honest, evidence=evidence)  # the id kept: it is not this content's
    with segment_paths(root)[-1].open("ab") as fh:
        fh.write(canonical_json(forged).encode() + b"\n")
    git(root, "add", "data/convergence/records")
    git(root, *without_hooks("commit", "-q", "-m", "the same id, another manifest"))

    [approval] = on_merge(root)
    assert approval["evidence"]["proposal"] == honest["id"]
    assert started == [honest]
    lines = [json.loads(line) for seg in segment_paths(root) for line in
             seg.read_text().splitlines()]
    assert [r["id"] for r in lines].count(approval["id"]) == 1  # claimed once
    due, refused = cycle.due_proposals(root)
    assert refused == [] and due == [(honest, approval)]
