"""Attacks on who moves weights: a commit that registers an adapter, appends a cycle or
promotion record or changes ACTIVE is an operator's own or a listed cycle runner's
(`[operators] cycle_runners`), judged by the policy in force before it, signed when
required. Real repos, real hooks, real ssh-keygen."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from gapflow import (
    as_operator,
    git,
    proposal_branch,
    records,
    set_config,
    skip_git_hooks,
    without_hooks,
)

from convergent.adapter_hash import adapter_sha256
from convergent.cli import cli
from convergent.layout import ACTIVE_FILE, ADAPTERS_DIR, CONFIG_FILE
from convergent.recorder import Recorder

RUNNER_NAME, RUNNER_EMAIL = "Cycle Runner", "runner@example.com"
RUNNER = f"{RUNNER_NAME} <{RUNNER_EMAIL}>"


def as_runner(*args: str) -> list[str]:
    return ["-c", f"user.name={RUNNER_NAME}", "-c", f"user.email={RUNNER_EMAIL}", *args]


def check(root: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["check", "--all", "--repo", str(root)])
    return result.exit_code, result.output


def head(root: Path) -> str:
    return git(root, "rev-parse", "HEAD").stdout.strip()


def register(root: Path, tmp_path: Path, payload: bytes) -> str:
    """An adapter folder staged in the registry; returns its sha256."""
    folder = Path(tempfile.mkdtemp(dir=tmp_path, prefix="adapter-"))
    (folder / "adapter_config.json").write_text('{"r": 8}')
    (folder / "adapter_model.safetensors").write_bytes(payload)
    sha = adapter_sha256(folder)
    target = root / ADAPTERS_DIR / sha
    shutil.copytree(folder, target)
    (target / "metadata.json").write_text(json.dumps({"adapter": f"sha256:{sha}"}))
    git(root, "add", ADAPTERS_DIR)
    return sha


def refusal(out: str, what: str, commit: str, who: str) -> bool:
    return (f"adapters: {what} in commit {commit[:12]} is refused: only an operator" in out
            and f"made by {who}" in out)


def test_a_non_operator_commit_appending_only_a_cycle_record_is_refused(
        records_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = records_repo
    proposal = proposal_branch(root, monkeypatch)
    git(root, *as_operator("merge", "--no-ff", "-q", "-m", "approve", proposal.branch))
    [approval] = records(root, "approval")
    with Recorder(root, verify=False) as recorder:
        recorder.emit({"kind": "cycle", "claim": "cycle: halted", "confidence": 1.0,
                       "source": {"emitter": "mallory", "model": "none", "origin": "self"},
                       "links": [proposal.record["id"], approval["id"]],
                       "evidence": {"type": "cycle", "proposal": proposal.record["id"],
                                    "approval": approval["id"], "outcome": "halted",
                                    "adapter": None}})
    git(root, "add", "-A")
    refused = git(root, "commit", "-qm", "a cycle record by hand", check=False)
    assert refused.returncode != 0  # the pre-commit hook: the next author moves no weights
    assert ("appending a cycle record in the next commit is refused" in refused.stderr
            and "Test Agent <agent@example.com> is neither a configured operator nor a "
            "listed cycle runner" in refused.stderr), refused.stderr
    git(root, *without_hooks("commit", "-qm", "a cycle record by hand"))
    code, out = check(root)
    assert code == 1 and refusal(out, "appending a cycle record", head(root),
                                 "Test Agent <agent@example.com>"), out


def operator_activates(root: Path, tmp_path: Path, *payloads: bytes) -> list[str]:
    """The operator registers weights of each payload and activates them in turn, in
    commits of their own; returns the adapters' sha256s."""
    shas = []
    for payload in payloads:
        sha = register(root, tmp_path, payload)
        (root / ACTIVE_FILE).write_text(f"sha256:{sha}\n")
        git(root, "add", ACTIVE_FILE)
        git(root, *as_operator("commit", "-qm", f"the operator activates {sha[:8]}"))
        shas.append(sha)
    return shas


def test_a_non_operator_commit_rolling_active_back_to_an_earlier_promotion_is_refused(
        records_repo: Path, tmp_path: Path) -> None:
    """base -> A -> B set by the operator; a non-operator's commit that sets ACTIVE back to
    A alone (a rollback along the chain, once anyone's to make) moves weights: refused."""
    root = records_repo
    shas = operator_activates(root, tmp_path, b"weights A", b"weights B")
    assert check(root)[0] == 0
    (root / ACTIVE_FILE).write_text(f"sha256:{shas[0]}\n")
    refused = git(root, "commit", "-qam", "back to A", check=False)
    assert refused.returncode != 0
    assert f"adapters: ACTIVE -> sha256:{shas[0][:12]} in the next commit" in refused.stderr
    git(root, *without_hooks("commit", "-qam", "back to A"))
    code, out = check(root)
    assert code == 1 and refusal(out, f"ACTIVE -> sha256:{shas[0][:12]}", head(root),
                                 "Test Agent <agent@example.com>"), out
    assert out.count("adapters:") == 1, out  # the commit, once: a rollback in shape
    git(root, *without_hooks("reset", "-q", "--hard", "HEAD~1"))
    (root / ACTIVE_FILE).write_text(f"sha256:{shas[0]}\n")
    git(root, *as_operator("commit", "-qam", "the operator rolls back to A"))
    assert check(root)[0] == 0


def test_a_cycle_runner_listed_outside_an_operators_commit_moves_nothing(
        records_repo: Path, tmp_path: Path) -> None:
    """The runner list is operator policy: a non-operator who lists themselves (past the
    hooks) is refused for that commit and, as the list is not in force, for the weights."""
    root = records_repo
    config = root / CONFIG_FILE
    config.write_text(config.read_text().replace(
        "cycle_runners = []", 'cycle_runners = ["Test Agent <agent@example.com>"]'))
    refused = git(root, "commit", "-qam", "list myself as the cycle runner", check=False)
    assert refused.returncode != 0
    assert "the operator policy ([operators]) changes only in an operator's commit" in (
        refused.stderr), refused.stderr
    git(root, *without_hooks("commit", "-qam", "list myself as the cycle runner"))
    listing = head(root)
    sha = register(root, tmp_path, b"mallory's weights")
    git(root, *without_hooks("commit", "-qm", "register my weights"))
    code, out = check(root)
    assert code == 1, out
    assert "approval: the operator policy ([operators]) changes only" in out, out
    assert f"commit {listing[:12]} was made by Test Agent" in out, out
    assert refusal(out, f"registering sha256:{sha[:12]}", head(root),
                   "Test Agent <agent@example.com>"), out


def _keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f",
                    str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


def test_with_signatures_required_an_unsigned_commit_in_a_runners_name_is_refused(
        records_repo: Path, tmp_path: Path) -> None:
    root = records_repo
    key = tmp_path / "runner_key"
    (root / "allowed_signers").write_text(f'{RUNNER_EMAIL} namespaces="git" {_keygen(key)}\n')
    git(root, "add", "allowed_signers")
    git(root, *as_operator("commit", "-qm", "the runner's signing key"))
    set_config(root, "operators", "allowed_signers", '"allowed_signers"')
    set_config(root, "operators", "cycle_runners", f'["{RUNNER}"]')
    set_config(root, "operators", "require_signed", "true")
    sha = register(root, tmp_path, b"weights under the runner's name")
    refused = git(root, *as_runner("commit", "-qm", "register, unsigned"), check=False)
    assert refused.returncode != 0  # the reference-transaction hook checks the signature
    assert "signature does not verify" in refused.stderr, refused.stderr
    git(root, *without_hooks(*as_runner("commit", "-qm", "register, unsigned")))
    unsigned = head(root)
    code, out = check(root)
    assert code == 1, out
    assert (f"registering sha256:{sha[:12]} in commit {unsigned[:12]} is refused" in out
            and f"commit {unsigned[:12]}: signature does not verify" in out), out
    git(root, "reset", "-q", "--soft", "HEAD~1")
    done = git(root, *as_runner("-c", "gpg.format=ssh", "-c", f"user.signingkey={key}",
                                "commit", "-S", "-qm", "register, signed"), check=False)
    assert done.returncode == 0, done.stderr
    assert check(root)[0] == 0, check(root)[1]


@pytest.mark.train
@pytest.mark.slow
def test_a_cycle_run_by_a_listed_runner_passes_check_all(records_repo: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """The legitimate path: the operator approves, the listed runner runs the cycle (its
    commits go through the real hooks) and reverts it; `check --all` is green."""
    pytest.importorskip("torch")
    from cycleflow import approve_new_proposal, cycle_repo, emit_experiences
    from gapflow import acting_as

    from convergent.trainer.cycle import run_due_cycles
    from convergent.trainer.rollback import revert

    root = records_repo
    with monkeypatch.context() as m:
        skip_git_hooks(m)
        cycle_repo(root, m, steps=4)
        set_config(root, "cycle", "autostart", "false")
        set_config(root, "operators", "cycle_runners", f'["{RUNNER}"]')
        emit_experiences(root, 0, 3)
        approve_new_proposal(root, first=True)
    with acting_as(RUNNER_NAME, RUNNER_EMAIL):
        [cycle] = run_due_cycles(root)
        assert cycle["evidence"]["outcome"] == "promoted"
        authors = git(root, "log", "-2", "--format=%an <%ae>").stdout.split("\n")[:2]
        assert authors == [RUNNER, RUNNER]
        assert check(root)[0] == 0, check(root)[1]
        revert(root)
    assert check(root)[0] == 0, check(root)[1]


def test_a_merge_that_takes_the_weights_as_they_are_moves_nothing_an_evil_merge_does(
        records_repo: Path, tmp_path: Path) -> None:
    """A contributor merging main (with the operator's weight commits) into their branch
    makes no weight change of their own; a merge whose ACTIVE is on neither side does."""
    root = records_repo
    git(root, "checkout", "-q", "-b", "work")
    (root / "notes.txt").write_text("my work\n")
    git(root, "add", "notes.txt")
    git(root, "commit", "-qm", "my work")
    git(root, "checkout", "-q", "main")
    shas = operator_activates(root, tmp_path, b"weights A", b"weights B")
    git(root, "checkout", "-q", "work")
    # Concluded by `git commit`, whose pre-commit hook sees MERGE_HEAD (git 2.39 runs
    # pre-merge-commit before writing it: a merge hook there cannot tell the merged side).
    git(root, "merge", "--no-ff", "--no-commit", "-q", "main")
    done = git(root, "commit", "-qm", "merge main into my branch", check=False)
    assert done.returncode == 0, done.stderr
    assert check(root)[0] == 0, check(root)[1]
    git(root, *without_hooks("reset", "-q", "--hard", "HEAD~1"))
    git(root, "merge", "--no-ff", "--no-commit", "-q", "main")
    (root / ACTIVE_FILE).write_text(f"sha256:{shas[0]}\n")  # on neither side
    git(root, "add", ACTIVE_FILE)
    refused = git(root, "commit", "-qm", "an evil merge", check=False)
    assert refused.returncode != 0
    assert (f"adapters: ACTIVE -> sha256:{shas[0][:12]} in the next commit is refused"
            in refused.stderr), refused.stderr
    git(root, *without_hooks("commit", "-qm", "an evil merge"))
    code, out = check(root)
    assert code == 1 and refusal(out, f"ACTIVE -> sha256:{shas[0][:12]}", head(root),
                                 "Test Agent <agent@example.com>"), out
