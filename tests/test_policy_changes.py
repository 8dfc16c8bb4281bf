"""The operator policy (``[operators]`` in the committed config and the allowed-signers file
it names) changes only in an operator's commit, as judged by the policy committed before
that commit; approvals are judged by the policy (and the signers) committed before them;
on-merge and the cycle read the committed config, never the working tree.

Each attack is made by a non-operator who wants to approve their own proposal: by making
themselves an operator (committed on main, on the proposal branch, or only in the working
tree), or by adding their own key under the operator's e-mail to the allowed signers.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from drafts import note
from evidence import NO_HOOKS, OPERATOR, as_person
from gapflow import as_operator, git, proposal_branch, records, set_config

from convergent.cli import cli
from convergent.on_merge import on_merge
from convergent.proposals import Proposal
from convergent.records import encode, finalize

ATTACKER = "Mallory Agent <mallory@example.com>"
CONFIG = ".convergent.toml"


@pytest.fixture
def proposal_repo(records_repo: Path, monkeypatch: pytest.MonkeyPatch
                  ) -> tuple[Path, Proposal]:
    """A records repo (no cycle autostart) with a proposal branch, worked in by Mallory."""
    root = records_repo
    proposal = proposal_branch(root, monkeypatch)
    name, _, email = ATTACKER.partition(" <")
    git(root, "config", "user.name", name)
    git(root, "config", "user.email", email.rstrip(">"))
    return root, proposal


def add_operator(root: Path, who: str) -> None:
    path = root / CONFIG
    text = path.read_text("utf-8")
    text = re.sub(r"(\[operators\]\n(?:[^\[]*?\n)?)allowed = \[", rf'\1allowed = ["{who}", ',
                  text, count=1)
    assert who in text
    path.write_text(text, "utf-8")


def check_all(root: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["check", "--all", "--repo", str(root)])
    return result.exit_code, result.output


def merge(root: Path, branch: str, *extra: str) -> None:
    """Mallory merges the branch past the hooks (as in a clone without them); on-merge is
    then run by hand, as CI would."""
    git(root, *NO_HOOKS, *extra, "merge", "--no-ff", "-q", "-m", "merge it", branch)


def test_a_non_operator_cannot_commit_himself_into_the_operators(
        proposal_repo: tuple[Path, Proposal]) -> None:
    root, proposal = proposal_repo
    add_operator(root, ATTACKER)
    git(root, "add", CONFIG)
    refused = git(root, "commit", "-q", "-m", "add a colleague", check=False)
    assert refused.returncode != 0, refused.stdout + refused.stderr
    assert (f"{CONFIG}:0: approval: the operator policy ([operators]) changes only in an "
            "operator's commit") in refused.stderr, refused.stderr
    assert "Mallory Agent <mallory@example.com>" in refused.stderr
    git(root, *NO_HOOKS, "commit", "-q", "-m", "add a colleague")  # a clone without hooks
    merge(root, proposal.branch)
    assert on_merge(root) == []
    assert not records(root, "approval")
    code, out = check_all(root)
    assert code == 1 and f"{CONFIG}:0: approval: the operator policy" in out, out


def test_an_uncommitted_policy_approves_nothing(proposal_repo: tuple[Path, Proposal]) -> None:
    root, proposal = proposal_repo
    merge(root, proposal.branch)
    add_operator(root, ATTACKER)  # only in the working tree
    assert on_merge(root) == []
    assert not records(root, "approval")


def test_a_policy_change_on_the_proposal_branch_approves_nothing(
        proposal_repo: tuple[Path, Proposal]) -> None:
    root, proposal = proposal_repo
    git(root, "checkout", "-q", proposal.branch)
    add_operator(root, ATTACKER)
    git(root, *NO_HOOKS, "commit", "-qam", "a config tweak")
    git(root, "checkout", "-q", "main")
    merge(root, proposal.branch)
    assert ATTACKER in (root / CONFIG).read_text()  # the merge brought it in
    assert on_merge(root) == []
    code, out = check_all(root)
    assert code == 1 and f"{CONFIG}:0: approval: the operator policy" in out, out


def keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f",
                    str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


@pytest.fixture
def signed_repo(proposal_repo: tuple[Path, Proposal], tmp_path: Path
                ) -> tuple[Path, Proposal, Path]:
    """Approvals must be signed by a key in the committed allowed_signers (Ada's)."""
    root, proposal = proposal_repo
    ada, mallory = tmp_path / "ada_key", tmp_path / "mallory_key"
    (root / "allowed_signers").write_text(f'ada@example.com namespaces="git" {keygen(ada)}\n')
    keygen(mallory)
    git(root, "add", "allowed_signers")
    git(root, *as_operator("commit", "-q", "-m", "operators' signing keys"))
    set_config(root, "operators", "allowed_signers", '"allowed_signers"')
    set_config(root, "operators", "require_signed", "true")
    return root, proposal, mallory


def sign_as_ada(root: Path, branch: str, key: Path) -> None:
    """A merge that names Ada as its author, signed with ``key``."""
    merge(root, branch, *as_person(OPERATOR), "-c", "gpg.format=ssh", "-c",
          f"user.signingkey={key}", "-c", "commit.gpgsign=true")


def test_a_key_added_to_the_working_trees_signers_does_not_sign_for_the_operator(
        signed_repo: tuple[Path, Proposal, Path]) -> None:
    root, proposal, mallory = signed_repo
    with (root / "allowed_signers").open("a") as fh:
        fh.write(f'ada@example.com namespaces="git" {mallory.with_suffix(".pub").read_text()}')
    sign_as_ada(root, proposal.branch, mallory)
    assert on_merge(root) == []
    assert not records(root, "approval")


def test_a_key_committed_with_the_approval_does_not_sign_for_the_operator(
        signed_repo: tuple[Path, Proposal, Path]) -> None:
    root, proposal, mallory = signed_repo
    git(root, "checkout", "-q", proposal.branch)
    git(root, *NO_HOOKS, "merge", "-q", "--no-edit", "main")
    with (root / "allowed_signers").open("a") as fh:
        fh.write(f'ada@example.com namespaces="git" {mallory.with_suffix(".pub").read_text()}')
    git(root, *NO_HOOKS, "commit", "-qam", "one more key")
    git(root, "checkout", "-q", "main")
    sign_as_ada(root, proposal.branch, mallory)
    assert on_merge(root) == []
    code, out = check_all(root)
    assert code == 1 and "allowed_signers:0: approval: the operator policy" in out, out


def test_the_operators_own_policy_change_is_accepted_and_judged_by_the_policy_before(
        proposal_repo: tuple[Path, Proposal]) -> None:
    root, proposal = proposal_repo
    add_operator(root, ATTACKER)
    git(root, "add", CONFIG)
    git(root, *as_operator("commit", "-q", "-m", "Mallory is an operator now"))
    # Mallory's own merge now approves: he was an operator before it.
    merge(root, proposal.branch)
    [approval] = on_merge(root)
    assert approval["evidence"]["approved_by"] == ATTACKER
    code, out = check_all(root)
    assert code == 0, out


def test_the_working_trees_main_branch_does_not_take_main_out_of_the_ref_checks(
        records_repo: Path) -> None:
    """reference-transaction finds the main branch in the committed config: renaming it in
    the working tree does not let a bad commit onto main past `--no-verify`."""
    root = records_repo
    path = root / CONFIG
    path.write_text(path.read_text().replace('main_branch = "main"', 'main_branch = "x"'))
    segment = root / "data/convergence/records/seg-000001.jsonl"
    with segment.open("ab") as fh:
        fh.write(b'{"kind": "approval"}\n')
    git(root, "add", str(segment))
    done = git(root, "commit", "--no-verify", "-q", "-m", "bad", check=False)
    assert done.returncode != 0, done.stdout + done.stderr
    assert ": schema: " in done.stderr, done.stderr


# --- the approving merge is found by the proposal's own line -------------------------------


def append_line(root: Path, record: dict[str, object], *, by: str, message: str) -> None:
    with (root / "data/convergence/records/seg-000001.jsonl").open("ab") as fh:
        fh.write(encode(record))
    git(root, "add", "data/convergence/records")
    git(root, *as_person(by), *NO_HOOKS, "commit", "-q", "-m", message)


def test_a_record_that_embeds_a_proposals_id_does_not_bring_that_proposal_in(
        proposal_repo: tuple[Path, Proposal]) -> None:
    """Mallory's branch, merged by Ada, holds a record embedding the id of a proposal that
    is not there yet (`{"id": "<P2>"}` in a nested object: the very text of P2's own
    line). P2 itself is then committed on main directly: Ada's merge did not approve it."""
    root, proposal = proposal_repo
    second = finalize({**{k: v for k, v in proposal.record.items()
                          if k not in ("v", "id", "ts", "verdict")},
                       "claim": "distill gap strings, again"}, None)
    git(root, "checkout", "-q", proposal.branch)
    append_line(root, finalize({**note(7), "meta": {"id": second["id"]}}, None), by=ATTACKER,
                message="a note")
    git(root, "checkout", "-q", "main")
    git(root, *as_operator(*NO_HOOKS, "merge", "--no-ff", "-q", "-m", "approve",
                           proposal.branch))
    [approved] = on_merge(root)
    assert approved["evidence"]["proposal"] == proposal.record["id"]
    append_line(root, second, by=ATTACKER, message="one more proposal")
    assert on_merge(root) == []  # brought in by Mallory's own commit, not by a merge
    assert [a["evidence"]["proposal"] for a in records(root, "approval")] == [
        proposal.record["id"]]


# --- tricks that fail: kept as regressions -------------------------------------------------


def test_a_fast_forward_by_the_operator_approves_nothing(
        proposal_repo: tuple[Path, Proposal]) -> None:
    root, proposal = proposal_repo
    git(root, *as_operator(*NO_HOOKS, "merge", "--ff-only", "-q", proposal.branch))
    assert on_merge(root) == []
    assert not records(root, "approval")


def test_an_octopus_merge_by_the_operator_approves_what_it_brings_once(
        proposal_repo: tuple[Path, Proposal]) -> None:
    root, proposal = proposal_repo
    git(root, "checkout", "-q", "-b", "side", "main")
    (root / "side.txt").write_text("side\n")
    git(root, "add", "side.txt")
    git(root, *NO_HOOKS, "commit", "-q", "-m", "side work")
    git(root, "checkout", "-q", "main")
    git(root, *as_operator(*NO_HOOKS, "merge", "--no-ff", "-q", "-m", "approve both",
                           "side", proposal.branch))
    [approval] = on_merge(root)
    assert approval["evidence"]["approved_by"] == OPERATOR
    assert on_merge(root) == []


def test_rewriting_the_proposal_branch_after_its_approval_changes_nothing(
        proposal_repo: tuple[Path, Proposal]) -> None:
    root, proposal = proposal_repo
    git(root, *as_operator(*NO_HOOKS, "merge", "--no-ff", "-q", "-m", "approve",
                           proposal.branch))
    [approval] = on_merge(root)
    git(root, "checkout", "-q", proposal.branch)
    git(root, "reset", "-q", "--hard", "main~2")  # as a force-push would leave it
    (root / "other.txt").write_text("rewritten\n")
    git(root, "add", "other.txt")
    git(root, *NO_HOOKS, "commit", "-q", "-m", "rewritten branch")
    git(root, "checkout", "-q", "main")
    assert on_merge(root) == []
    assert records(root, "approval") == [approval]
    code, out = check_all(root)
    assert code == 0, out
