"""Only an operator moves weights: each attack of issue 11, made by a non-operator on a copy
of the records repo `convergent demo` leaves (adapter/v1 promoted by the operator's signed
merge, then rolled back; approvals must be signed).

Every test shows that no cycle starts and no weights change (ACTIVE, tags, registry and
cycles as before), and, where a commit got through (made in a clone without our hooks,
since hooks are not cloned), that `convergent check --all` is red.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import OPERATOR, DemoRun
from gapflow import git, without_hooks

from convergent.adapter_hash import adapter_sha256
from convergent.adapters import active_at
from convergent.cli import cli
from convergent.demo import GAP
from convergent.history import read_records, records_at
from convergent.layout import ACTIVE_FILE, ADAPTERS_DIR
from convergent.proposals import propose

pytestmark = [pytest.mark.train, pytest.mark.slow]

ATTACKER = ("Mallory Agent", "mallory@example.com")


@pytest.fixture
def repo(demo_run: DemoRun, tmp_path: Path) -> Path:
    """A copy of the demo's records repo, worked in by a non-operator."""
    assert demo_run.done.returncode == 0, demo_run.done.stdout[-2000:] + demo_run.done.stderr
    root = tmp_path / "records"
    shutil.copytree(demo_run.root, root, symlinks=True)
    git(root, "config", "user.name", ATTACKER[0])
    git(root, "config", "user.email", ATTACKER[1])
    return root


def invoke(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=input)


def weights(root: Path) -> dict[str, Any]:
    """Everything a weight change would touch."""
    from git import Repo

    repo = Repo(root)
    return {"active": (root / ACTIVE_FILE).read_text(), "committed": active_at(repo, "HEAD"),
            "tags": sorted((t.name, t.commit.hexsha) for t in repo.tags),
            "adapters": sorted(p.name for p in (root / ADAPTERS_DIR).iterdir()),
            "cycles": [r["id"] for r in read_records(root) if r["kind"] == "cycle"]}


def red(root: Path, *gates: str) -> str:
    """`check --all` refuses, naming each gate; returns its output."""
    result = invoke("check", "--all", "--repo", str(root))
    assert result.exit_code == 1, result.output
    for gate in gates:
        assert f": {gate}: " in result.output, result.output
    return result.output


def green(root: Path) -> None:
    result = invoke("check", "--all", "--repo", str(root))
    assert result.exit_code == 0, result.output


def no_cycle(root: Path, before: dict[str, Any], *, refused: str | None = None) -> None:
    """`convergent cycle run` trains nothing (refusing, when given, with that reason)."""
    ran = invoke("cycle", "run", "--repo", str(root))
    if refused is None:
        assert ran.exit_code == 0, ran.output
        assert "no approved proposal is waiting for a cycle" in ran.output
    else:
        assert ran.exit_code == 1, ran.output
        assert "starts no cycle" in ran.output and refused in ran.output, ran.output
    assert weights(root) == before


def genuine_merge(root: Path) -> str:
    """The operator's signed merge that approved the demo's proposal."""
    [approval] = [r for r in records_at_head(root) if r["kind"] == "approval"]
    return str(approval["evidence"]["commit"])


def records_at_head(root: Path) -> list[dict[str, Any]]:
    from git import Repo

    return records_at(Repo(root), "HEAD")


def merged_proposal(root: Path) -> tuple[str, str]:
    """A new proposal for the demo's gap, merged into main by the attacker (which approves
    nothing); returns its id and the commit that added it."""
    proposal = propose(root, GAP)
    tip = git(root, "rev-parse", proposal.branch).stdout.strip()
    merged = git(root, "merge", "--no-ff", "-m", "merge my own proposal", proposal.branch)
    assert f"proposal {proposal.record['id']} is not approved" in merged.stdout + merged.stderr
    return str(proposal.record["id"]), tip


def forged_approval(proposal: str, merge: str, proposal_commit: str) -> str:
    """An approval draft naming the operator and an earlier genuine operator merge."""
    return json.dumps({"kind": "approval", "claim": f"{OPERATOR} approved {proposal}",
                       "evidence": {"type": "operator", "approved_by": OPERATOR,
                                    "commit": merge, "proposal": proposal,
                                    "proposal_commit": proposal_commit},
                       "links": [proposal], "confidence": 1.0,
                       "source": {"emitter": "mallory", "model": "none",
                                  "origin": "operator"}}) + "\n"


def proposal_without_levers() -> str:
    """A proposal draft for the demo's gap that links no gap and no lever try."""
    return json.dumps({"kind": "proposal", "claim": "distill now, no levers",
                       "evidence": {"type": "proposal", "gap": GAP, "levers": [],
                                    "manifest": {"experiences": [], "external": "stdlib"},
                                    "cycle_config": {}},
                       "links": [], "confidence": 1.0,
                       "source": {"emitter": "mallory", "model": "none",
                                  "origin": "self"}}) + "\n"


def emit(root: Path, line: str) -> str:
    done = invoke("emit", "-", "--repo", str(root), input=line)
    assert done.exit_code == 0, done.output
    return done.output.split()[0]


def test_a_forged_approval_in_the_working_tree_starts_no_cycle(repo: Path) -> None:
    before = weights(repo)
    proposal, tip = merged_proposal(repo)
    forged = emit(repo, forged_approval(proposal, genuine_merge(repo), tip))
    assert forged in {r["id"] for r in read_records(repo)}  # in the working tree's log
    no_cycle(repo, before)  # the cycle reads committed history only
    claimed = invoke("on-merge", "--repo", str(repo))
    assert claimed.exit_code == 0 and f"proposal {proposal} is not approved" in claimed.output
    assert [r["evidence"]["proposal"] for r in records_at_head(repo)
            if r["kind"] == "approval"] != [proposal]  # only the demo's own approval
    assert len([r for r in records_at_head(repo) if r["kind"] == "approval"]) == 1
    committed = invoke("commit", "--repo", str(repo))
    assert committed.exit_code == 1  # the pre-commit hook's approval gate
    assert "approval: Git does not back this approval" in committed.output
    assert f"made by {ATTACKER[0]} <{ATTACKER[1]}>, who is not a configured operator" in (
        committed.output)
    assert weights(repo) == before
    green(repo)  # nothing bad landed


def test_a_forged_approval_committed_starts_no_cycle_and_turns_check_red(repo: Path) -> None:
    before = weights(repo)
    proposal, tip = merged_proposal(repo)
    emit(repo, forged_approval(proposal, genuine_merge(repo), tip))
    skipped = git(repo, "commit", "--no-verify", "-qam", "approve, skipping hooks", check=False)
    assert skipped.returncode != 0  # reference-transaction: --no-verify skips no gate
    assert "approval: Git does not back this approval" in skipped.stderr
    git(repo, *without_hooks("commit", "-qam", "approve, in a clone without hooks"))
    no_cycle(repo, before, refused="approval: Git does not back this approval")
    assert "approval: Git does not back this approval" in red(repo, "approval")


def test_a_proposal_without_levers_and_a_forged_approval_start_no_cycle(repo: Path) -> None:
    before = weights(repo)
    head = git(repo, "rev-parse", "HEAD").stdout.strip()
    proposal = emit(repo, proposal_without_levers())
    skipped = git(repo, "commit", "--no-verify", "-qam", "a proposal", check=False)
    assert skipped.returncode != 0 and "levers-first: proposal does not link" in skipped.stderr
    git(repo, *without_hooks("commit", "-qam", "a proposal, without hooks"))
    emit(repo, forged_approval(proposal, genuine_merge(repo),
                               git(repo, "rev-parse", "HEAD").stdout.strip()))
    git(repo, *without_hooks("commit", "-qam", "and its approval"))
    no_cycle(repo, before, refused="levers-first: proposal does not link the records it "
                                   "relies on")
    no_cycle(repo, before, refused="approval: Git does not back this approval: commit "
                                   f"{git(repo, 'rev-parse', 'HEAD~1').stdout[:12]} brought")
    red(repo, "levers-first", "approval")
    assert head != git(repo, "rev-parse", "HEAD").stdout.strip()


def test_the_cycle_checks_levers_first_itself_even_after_a_genuine_approval(
        repo: Path, demo_run: DemoRun) -> None:
    """The operator (signing, but without hooks) merges a branch whose proposal links no
    lever tries: the approval is genuine, the cycle still refuses."""
    before = weights(repo)
    git(repo, "checkout", "-q", "-b", "sneaky")
    proposal = emit(repo, proposal_without_levers())
    git(repo, *without_hooks("commit", "-qam", "a proposal"))
    git(repo, "checkout", "-q", "main")
    git(repo, *without_hooks("-c", f"user.name={OPERATOR.split(' <')[0]}",
                             "-c", "user.email=ada@example.com", "-c", "gpg.format=ssh",
                             "-c", f"user.signingkey={demo_run.operator_key}", "merge",
                             "--no-ff", "-S", "-q", "-m", "merge (careless)", "sneaky"))
    started = invoke("on-merge", "--repo", str(repo))
    assert started.exit_code == 1, started.output
    assert f"proposal {proposal} approved by {OPERATOR}" in started.output
    assert "levers-first: proposal does not link the records it relies on" in started.output
    assert weights(repo) == before
    no_cycle(repo, before, refused="levers-first: proposal does not link")
    red(repo, "levers-first")


def _fake_adapter(tmp_path: Path) -> Path:
    folder = tmp_path / "fake"
    folder.mkdir()
    (folder / "adapter_config.json").write_text('{"r": 8, "target_modules": ["q", "v"]}')
    (folder / "adapter_model.safetensors").write_bytes(b"weights no cycle produced")
    return folder


def test_unregistered_weights_never_go_live(repo: Path, tmp_path: Path) -> None:
    before = weights(repo)
    fake = _fake_adapter(tmp_path)
    sha = adapter_sha256(fake)
    target = repo / ADAPTERS_DIR / sha
    shutil.copytree(fake, target)
    (target / "metadata.json").write_text(json.dumps({"adapter": f"sha256:{sha}"}))
    (repo / ACTIVE_FILE).write_text(f"sha256:{sha}\n")
    git(repo, "add", ADAPTERS_DIR, ACTIVE_FILE)
    status = json.loads(invoke("status", "--json", "--repo", str(repo)).output)
    assert status["active_adapter"] == "unknown"  # uncommitted: activates nothing
    refused = git(repo, "commit", "-qm", "my adapter goes live", check=False)
    assert refused.returncode != 0 and f"adapters: ACTIVE -> sha256:{sha[:12]}" in (
        refused.stderr)
    git(repo, *without_hooks("commit", "-qm", "my adapter goes live, without hooks"))
    status = json.loads(invoke("status", "--json", "--repo", str(repo)).output)
    assert status["active_adapter"] == "unknown"
    assert status["active_adapter_refused"]["value"] == f"sha256:{sha}"
    assert "not a cycle's promotion" in " ".join(status["active_adapter_refused"]["reasons"])
    shown = invoke("status", "--repo", str(repo)).output
    assert "unknown: ACTIVE names" in shown and "which is REFUSED" in shown
    no_cycle(repo, dict(before, active=f"sha256:{sha}\n", committed=f"sha256:{sha}",
                        adapters=sorted([*before["adapters"], sha])))
    assert "not an operator's own commit" in red(repo, "adapters")

    # Registered files never change, and new ones must hash to their folder's name.
    (target / "adapter_model.safetensors").write_bytes(b"swapped")
    git(repo, *without_hooks("commit", "-qam", "swap the weights"))
    assert f"registered adapter sha256:{sha} is changed or removed" in red(repo, "adapters")
    misnamed = repo / ADAPTERS_DIR / ("0" * 64)
    shutil.copytree(fake, misnamed)
    git(repo, "add", ADAPTERS_DIR)
    refused = git(repo, "commit", "-qm", "a misnamed adapter", check=False)
    assert refused.returncode != 0 and f"hashes to {sha}, not to its name" in refused.stderr


def _rollback(root: Path) -> str:
    [revert] = [r for r in records_at_head(root) if r["kind"] == "revert"]
    return str(revert["evidence"]["revert_commit"])


def test_a_non_operator_cannot_undo_the_rollback(repo: Path) -> None:
    before = weights(repo)
    head = git(repo, "rev-parse", "HEAD").stdout
    promotion = git(repo, "rev-parse", "adapter/v1^{commit}").stdout.strip()
    attempts = [("revert", "--no-edit", _rollback(repo)),   # no pre-commit hook runs here
                ("cherry-pick", promotion),                 # nor here
                ("reset", "--hard", "-q", f"{_rollback(repo)}~1")]  # a rewind
    for attempt in attempts:
        done = git(repo, *attempt, check=False)
        assert done.returncode != 0, attempt
        assert "adapters: " in done.stderr, done.stderr
        assert "not a rollback along the promoted chain" in done.stderr, done.stderr
        assert git(repo, "rev-parse", "HEAD").stdout == head
        git(repo, "reset", "-q", "--hard", "HEAD")  # drop the refused attempt's leftovers
        git(repo, "cherry-pick", "--quit", check=False)
        git(repo, "revert", "--quit", check=False)
        assert weights(repo) == before
    no_cycle(repo, before)
    green(repo)

    git(repo, *without_hooks("revert", "--no-edit", _rollback(repo)))
    status = json.loads(invoke("status", "--json", "--repo", str(repo)).output)
    assert status["active_adapter"] == "unknown"  # never reported as active
    assert "ACTIVE -> sha256:" in red(repo, "adapters")


def test_the_operator_may_re_promote_with_a_signed_commit(repo: Path, demo_run: DemoRun
                                                          ) -> None:
    """Reverting the rollback is a weight change an operator may make: their own commit,
    signed (the approvals of this repo must be signed)."""
    sign = ["-c", "gpg.format=ssh", "-c", f"user.signingkey={demo_run.operator_key}"]
    unsigned = git(repo, "-c", "user.name=Ada Operator", "-c", "user.email=ada@example.com",
                   "revert", "--no-edit", _rollback(repo), check=False)
    assert unsigned.returncode != 0 and "signature does not verify" in unsigned.stderr
    git(repo, "revert", "--abort", check=False)
    git(repo, "reset", "-q", "--hard", "HEAD")
    done = git(repo, "-c", "user.name=Ada Operator", "-c", "user.email=ada@example.com", *sign,
               "revert", "-S", "--no-edit", _rollback(repo), check=False)
    assert done.returncode == 0, done.stderr
    v1 = json.loads(git(repo, "tag", "-l", "--format=%(contents)", "adapter/v1").stdout)
    status = json.loads(invoke("status", "--json", "--repo", str(repo)).output)
    assert status["active_adapter"] == v1["adapter"]
    green(repo)


def test_moved_or_forged_tags_are_refused_and_never_reverted(repo: Path) -> None:
    before = weights(repo)
    promotion = git(repo, "rev-parse", "adapter/v1^{commit}").stdout.strip()
    records_commit = f"{promotion}~1"
    metadata = git(repo, "tag", "-l", "--format=%(contents)", "adapter/v1").stdout
    refused = git(repo, "tag", "-f", "adapter/v1", records_commit, check=False)
    assert refused.returncode != 0 and "adapter/v1 is a lightweight tag" in refused.stderr
    assert weights(repo) == before

    forgeries = [["tag", "-f", "adapter/v1", records_commit],
                 ["tag", "-f", "-a", "adapter/v1", "-m", metadata, records_commit]]
    for forgery in forgeries:
        git(repo, *without_hooks(*forgery))
        head = git(repo, "rev-parse", "HEAD").stdout
        reverted = invoke("revert", "adapter/v1", "--repo", str(repo))
        assert reverted.exit_code == 1
        assert "refusing to revert adapter/v1: only a promotion commit is reverted" in (
            reverted.output)
        assert git(repo, "rev-parse", "HEAD").stdout == head
        assert "refs/tags/adapter/v1:0: adapters: adapter/v1" in red(repo, "adapters")
        no_cycle(repo, dict(before, tags=weights(repo)["tags"]))

    # A second tag on the genuine promotion, with genuine-looking metadata: out of order.
    git(repo, *without_hooks("tag", "-f", "-a", "adapter/v1", "-m", metadata, promotion))
    green(repo)
    twin = json.dumps(dict(json.loads(metadata), tag="adapter/v2"))
    git(repo, *without_hooks("tag", "-a", "adapter/v2", "-m", twin, promotion))
    assert "adapter/v2 does not come after adapter/v1" in red(repo, "adapters")


def test_a_spoofed_operator_name_approves_nothing_when_signatures_are_required(
        repo: Path, tmp_path: Path) -> None:
    before = weights(repo)
    proposal = propose(repo, GAP)
    key = tmp_path / "mallory_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    for signing in ([], ["-c", "gpg.format=ssh", "-c", f"user.signingkey={key}"]):
        merged = git(repo, "-c", "user.name=Ada Operator", "-c", "user.email=ada@example.com",
                     *signing, "merge", "--no-ff", *(["-S"] if signing else []), "-m",
                     "Merge as if I were Ada", proposal.branch)
        out = merged.stdout + merged.stderr
        assert f"proposal {proposal.record['id']} is not approved" in out
        assert "signature does not verify" in out
        assert not [r for r in records_at_head(repo) if r["kind"] == "approval"
                    and r["evidence"]["proposal"] == proposal.record["id"]]
        no_cycle(repo, before)
        git(repo, "reset", "-q", "--hard", "HEAD~1")
    green(repo)
