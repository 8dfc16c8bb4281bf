"""The `adapters` gate without training: registry folders hash to their names (the same hash
on disk and in Git), an operator's own commit may set ACTIVE, and the reference-transaction
hook runs the gates on every way into the main line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import git as gitpython
import pytest
from click.testing import CliRunner
from gapflow import (
    OPERATOR_EMAIL,
    OPERATOR_NAME,
    as_operator,
    git,
    proposal_branch,
    records,
    without_hooks,
)

from convergent.adapter_hash import adapter_files_sha256, adapter_sha256, tree_files
from convergent.cli import cli
from convergent.hooks.gate_hooks import check_adapters as adapters_hook
from convergent.layout import ACTIVE_FILE, ADAPTERS_DIR
from convergent.recorder import Recorder


def _adapter(tmp_path: Path, payload: bytes) -> tuple[Path, str]:
    folder = tmp_path / f"adapter-{len(payload)}"
    folder.mkdir()
    (folder / "adapter_config.json").write_text('{"target_modules": ["v", "q"], "r": 8}')
    (folder / "adapter_model.safetensors").write_bytes(payload)
    return folder, adapter_sha256(folder)


def _register(root: Path, folder: Path, sha: str) -> Path:
    target = root / ADAPTERS_DIR / sha
    shutil.copytree(folder, target)
    (target / "metadata.json").write_text(json.dumps({"adapter": f"sha256:{sha}"}))
    git(root, "add", ADAPTERS_DIR)
    return target


def check(root: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["check", "--all", "--repo", str(root)])
    return result.exit_code, result.output


def test_the_registry_hash_is_the_same_on_disk_in_the_index_and_in_a_commit(
        records_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder, sha = _adapter(tmp_path, b"\x00weights" * 1000)
    _register(records_repo, folder, sha)
    repo = gitpython.Repo(records_repo)
    staged = tree_files(repo, None, f"{ADAPTERS_DIR}/{sha}")
    assert sorted(staged) == ["adapter_config.json", "adapter_model.safetensors",
                              "metadata.json"]
    staged.pop("metadata.json")
    assert adapter_files_sha256(staged) == sha
    assert adapters_hook(["--repo", str(records_repo)]) == 1  # the agent moves no weights
    monkeypatch.setenv("GIT_AUTHOR_NAME", OPERATOR_NAME)
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", OPERATOR_EMAIL)
    assert adapters_hook(["--repo", str(records_repo)]) == 0  # an operator registers it
    git(records_repo, "commit", "-qm", "register an adapter")
    committed = tree_files(repo, "HEAD", f"{ADAPTERS_DIR}/{sha}")
    committed.pop("metadata.json")
    assert adapter_files_sha256(committed) == sha
    assert check(records_repo)[0] == 0


def test_a_misnamed_folder_is_refused_by_the_hook_entry_point(records_repo: Path,
                                                              tmp_path: Path) -> None:
    folder, sha = _adapter(tmp_path, b"weights")
    _register(records_repo, folder, "f" * 64)
    assert adapters_hook(["--repo", str(records_repo)]) == 1
    _register(records_repo, folder, "not-a-sha")
    refused = git(records_repo, "commit", "-qm", "misnamed", check=False)
    assert refused.returncode != 0
    assert f"adapters: {ADAPTERS_DIR}/{'f' * 64}/ hashes to {sha}, not to its name" in (
        refused.stderr)
    assert "not-a-sha/ is not named by a sha256" in refused.stderr


def test_only_an_operators_own_commit_sets_active_to_a_registered_adapter(
        records_repo: Path, tmp_path: Path) -> None:
    folder, sha = _adapter(tmp_path, b"weights")
    _register(records_repo, folder, sha)
    git(records_repo, *as_operator("commit", "-qm", "register an adapter"))
    (records_repo / ACTIVE_FILE).write_text(f"sha256:{sha}\n")
    git(records_repo, "add", ACTIVE_FILE)
    refused = git(records_repo, "commit", "-qm", "activate it", check=False)
    assert refused.returncode != 0  # by the pre-commit hook: the next author is no operator
    assert "Test Agent <agent@example.com> is not a configured operator" in refused.stderr
    done = git(records_repo, *as_operator("commit", "-qm", "the operator activates it"),
               check=False)
    assert done.returncode == 0, done.stderr
    status = CliRunner().invoke(cli, ["status", "--json", "--repo", str(records_repo)])
    assert json.loads(status.output)["active_adapter"] == f"sha256:{sha}"
    assert check(records_repo)[0] == 0
    # Back to base: a rollback along the chain, which an operator (or a cycle runner) makes.
    (records_repo / ACTIVE_FILE).write_text("base\n")
    refused = git(records_repo, "commit", "-qam", "roll back", check=False)
    assert refused.returncode != 0
    assert ("adapters: ACTIVE -> base in the next commit is refused: only an operator"
            in refused.stderr), refused.stderr
    git(records_repo, *as_operator("commit", "-qam", "roll back"))
    assert check(records_repo)[0] == 0


def test_every_way_into_main_runs_the_gates(records_repo: Path, tmp_path: Path) -> None:
    """update-ref, a fast-forward merge and push-to-self skip pre-commit; the
    reference-transaction hook does not."""
    folder, sha = _adapter(tmp_path, b"weights")
    _register(records_repo, folder, sha)
    (records_repo / ACTIVE_FILE).write_text(f"sha256:{sha}\n")
    git(records_repo, "add", ACTIVE_FILE)
    git(records_repo, "checkout", "-q", "-b", "side")
    git(records_repo, *without_hooks("commit", "-qm", "unregistered weights, on a branch"))
    bad = git(records_repo, "rev-parse", "HEAD").stdout.strip()
    git(records_repo, "checkout", "-q", "main")
    head = git(records_repo, "rev-parse", "HEAD").stdout
    for way in (["update-ref", "refs/heads/main", bad], ["merge", "--ff-only", "-q", "side"],
                ["cherry-pick", bad], ["reset", "-q", "--hard", bad]):
        done = git(records_repo, *way, check=False)
        assert done.returncode != 0, way
        assert "adapters: ACTIVE -> sha256:" in done.stderr, (way, done.stderr)
        assert git(records_repo, "rev-parse", "HEAD").stdout == head
        git(records_repo, "cherry-pick", "--abort", check=False)
        git(records_repo, "reset", "-q", "--hard", "HEAD")
    assert check(records_repo)[0] == 0


def _hand_written_promotion(root: Path, tmp_path: Path, proposal_id: str, approval_id: str,
                            payload: bytes, origin: str) -> tuple[str, str]:
    """The shape of a cycle's promotion, written by hand and committed without hooks:
    weights registered, a cycle record (outcome promoted, naming ``approval_id``) and its
    promotion record, then a commit setting ACTIVE alone and an adapter tag on it.
    Returns (the cycle record's id, the adapter's sha256)."""
    folder, sha = _adapter(tmp_path, payload)
    _register(root, folder, sha)
    source = {"emitter": "mallory", "model": "none", "origin": origin}
    with Recorder(root, verify=False) as recorder:
        cycle = recorder.emit({
            "kind": "cycle", "claim": "cycle: promoted", "confidence": 1.0, "source": source,
            "evidence": {"type": "cycle", "proposal": proposal_id, "approval": approval_id,
                         "outcome": "promoted", "adapter": f"sha256:{sha}"},
            "links": [proposal_id, approval_id]})
        recorder.emit({"kind": "promotion", "claim": "promote", "confidence": 1.0,
                       "source": source, "links": [cycle["id"]],
                       "evidence": {"type": "promotion", "adapter": f"sha256:{sha}",
                                    "cycle": cycle["id"]}})
    git(root, "add", "-A")
    git(root, *without_hooks("commit", "-qm", "a cycle written by hand"))
    (root / ACTIVE_FILE).write_text(f"sha256:{sha}\n")
    git(root, *without_hooks("commit", "-qam", "promote it"))
    metadata = json.dumps({"tag": "adapter/v1", "adapter": f"sha256:{sha}"})
    git(root, *without_hooks("tag", "-a", "adapter/v1", "-m", metadata))
    return cycle["id"], sha


def test_a_promotion_whose_cycle_names_another_approval_is_refused_with_its_reason(
        records_repo: Path, tmp_path: Path, monkeypatch) -> None:
    """A cycle that promoted adapter X, with its promotion record, appended by the commit
    before the one that sets ACTIVE = X: the shape of a promotion. But the cycle names an
    approval that is not its proposal's approval, so neither the ACTIVE commit nor an
    adapter tag on it is a promotion (this path once raised AttributeError)."""
    root = records_repo
    proposal = proposal_branch(root, monkeypatch)
    git(root, *as_operator("merge", "--no-ff", "-q", "-m", "approve", proposal.branch))
    [approval] = [r for r in records(root, "approval")
                  if r["evidence"]["proposal"] == proposal.record["id"]]
    other = "sha256:" + "0" * 64
    assert approval["id"] != other
    cycle_id, sha = _hand_written_promotion(root, tmp_path, proposal.record["id"], other,
                                            b"weights of a cycle that never ran", "operator")
    reason = (f"cycle {cycle_id[:19]} names approval {other}, which is not its proposal's "
              "approval")
    code, out = check(root)
    assert code == 1, out
    assert f"adapters: ACTIVE -> sha256:{sha[:12]}" in out and reason in out, out
    assert (f"adapters: adapter/v1 does not point at the promotion of sha256:{sha[:12]}"
            in out and out.count(reason) == 2), out


def test_a_non_operator_cannot_promote_weights_with_a_hand_written_cycle_record(
        records_repo: Path, tmp_path: Path, monkeypatch) -> None:
    """The attack the red team confirmed: after a real approval, a non-operator registers
    weights of their own, writes a cycle record that names the proposal's real approval
    with outcome promoted, and its promotion record, then sets ACTIVE and an adapter tag.
    Only an operator moves weights: ``check --all`` must refuse it."""
    root = records_repo
    proposal = proposal_branch(root, monkeypatch)
    git(root, *as_operator("merge", "--no-ff", "-q", "-m", "approve", proposal.branch))
    [approval] = [r for r in records(root, "approval")
                  if r["evidence"]["proposal"] == proposal.record["id"]]
    _, sha = _hand_written_promotion(root, tmp_path, proposal.record["id"], approval["id"],
                                     b"weights mallory trained elsewhere", "self")
    code, out = check(root)
    assert code == 1, out
    assert f"ACTIVE -> sha256:{sha[:12]}" in out, out
