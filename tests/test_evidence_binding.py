"""Evidence bound to content: operator evidence must vouch for *this* record, grounding
must cite snapshots committed before the record by someone other than its emitter.

Each test is an attack on a real records repo (real git, real hooks, real ssh-keygen)
with, beside it, the honest flow that must still verify.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from drafts import SOURCE
from evidence import OPERATOR, as_person, git, register
from gapflow import set_config

from convergent.cli import cli
from convergent.errors import RepoError
from convergent.layout import RECORDS_DIR, SOURCES_DIR
from convergent.recorder import Recorder
from convergent.records import Verdict, canonical_json, finalize
from convergent.sources import snapshot_ref, store_source
from convergent.vouch import vouch_digest, vouch_message

AGENT = "Test Agent <agent@example.com>"  # the git identity of conftest: the emitter's
DOCS_BOT = "Docs Bot <docs@example.com>"
DOC = "Rollback is one git revert of the promotion commit. The log is never rewritten."


def invoke(*args: str, input: bytes | None = None) -> Any:
    result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def as_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands below run as the operator (git's environment, as CI would set it)."""
    name, _, email = OPERATOR.partition(" <")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", name)
        monkeypatch.setenv(f"GIT_{role}_EMAIL", email.rstrip(">"))


def emit(root: Path, draft: dict[str, Any]) -> dict[str, Any]:
    with Recorder(root) as recorder:
        return recorder.emit(draft)


def check_all(root: Path) -> Any:
    return invoke("check", "--all", "--repo", str(root))


def keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f",
                    str(path)], check=True)
    return path.with_suffix(".pub").read_text().strip()


def trust_key(root: Path, key: Path) -> None:
    """The operator's SSH key in allowed_signers, for git commits and for vouches."""
    (root / "allowed_signers").write_text(
        f'ada@example.com namespaces="git,convergent-vouch" {keygen(key)}\n')
    git(root, "add", "allowed_signers")
    git(root, "commit", "-q", "-m", "operators' signing keys")
    set_config(root, "operators", "allowed_signers", '"allowed_signers"')


# --- operator evidence ---------------------------------------------------------------------


def approval(n: int = 0, **evidence: str) -> dict[str, Any]:
    return {"kind": "experience", "claim": f"operator fact {n}", "task": f"question {n}",
            "response": f"answer {n}", "confidence": 1.0,
            "evidence": {"type": "operator", "approved_by": OPERATOR, **evidence},
            "source": {**SOURCE, "origin": "operator"}}


def commit_as(root: Path, who: str, message: str, *extra: str) -> str:
    git(root, *as_person(who), *extra, "commit", "-q", "--allow-empty", "-m", message)
    return git(root, "rev-parse", "HEAD")


def trailer_for(*drafts: dict[str, Any]) -> str:
    return vouch_message([vouch_digest(d) for d in drafts], [d["claim"] for d in drafts])


@pytest.mark.usefixtures("as_operator")
def test_convergent_vouch_makes_the_commit_and_emits_verified_records(
        records_repo: Path, tmp_path: Path) -> None:
    drafts = tmp_path / "drafts.jsonl"
    drafts.write_text("\n".join(canonical_json(approval(n)) for n in range(2)) + "\n")
    result = invoke("vouch", str(drafts), "--repo", str(records_repo))
    assert result.exit_code == 0, result.output
    assert [line.split()[1] for line in result.stdout.splitlines()] == ["verified"] * 2
    head = git(records_repo, "log", "-1", "--format=%an <%ae>%n%B")
    assert head.startswith(OPERATOR)
    for n in range(2):
        assert f"Vouches: {vouch_digest(approval(n))}" in head
    assert invoke("commit", "--repo", str(records_repo)).exit_code == 0
    assert check_all(records_repo).exit_code == 0


def test_an_operator_commit_that_does_not_vouch_is_refused(records_repo: Path) -> None:
    sha = commit_as(records_repo, OPERATOR, "tidy the config")
    record = emit(records_repo, approval(commit=sha))
    assert not record["verdict"]["verified"]
    assert "does not vouch for this record" in record["verdict"]["detail"]
    assert vouch_digest(approval()) in record["verdict"]["detail"]


def test_a_vouch_for_another_record_is_refused(records_repo: Path) -> None:
    sha = commit_as(records_repo, OPERATOR, trailer_for(approval(1)))
    assert emit(records_repo, approval(1, commit=sha))["verdict"]["verified"]
    other = emit(records_repo, approval(2, commit=sha))
    assert "does not vouch for this record" in other["verdict"]["detail"]
    # The vouched record with one word changed is another record.
    edited = dict(approval(1, commit=sha), response="a different answer")
    assert not emit(records_repo, edited)["verdict"]["verified"]


def test_a_forged_trailer_in_a_non_operator_commit_is_refused(records_repo: Path) -> None:
    sha = commit_as(records_repo, AGENT, trailer_for(approval(3)))
    record = emit(records_repo, approval(3, commit=sha))
    assert not record["verdict"]["verified"]
    assert f"is by {AGENT}, not a configured operator" in record["verdict"]["detail"]


def test_a_vouch_outside_the_records_history_is_refused(records_repo: Path) -> None:
    git(records_repo, "checkout", "-q", "-b", "elsewhere")
    sha = commit_as(records_repo, OPERATOR, trailer_for(approval(4)))
    git(records_repo, "checkout", "-q", "main")
    record = emit(records_repo, approval(4, commit=sha))
    assert "not in the history this record is committed on" in record["verdict"]["detail"]


def test_a_line_added_by_the_operator_vouches_but_a_merge_of_it_does_not(
        records_repo: Path) -> None:
    digest = vouch_digest(approval(5))
    git(records_repo, "checkout", "-q", "-b", "agent-work")
    (records_repo / "vouches.txt").write_text(f"{digest}\n")
    git(records_repo, "add", "vouches.txt")
    commit_as(records_repo, AGENT, "my own vouch")
    git(records_repo, "checkout", "-q", "main")
    git(records_repo, *as_person(OPERATOR), "merge", "-q", "--no-ff", "-m", "merge",
        "agent-work")
    merge = git(records_repo, "rev-parse", "HEAD")
    refused = emit(records_repo, approval(5, commit=merge))
    assert "does not vouch for this record" in refused["verdict"]["detail"]

    (records_repo / "reviewed.txt").write_text(f"reviewed and vouched: {digest}\n")
    git(records_repo, "add", "reviewed.txt")
    own = commit_as(records_repo, OPERATOR, "vouch by a reviewed file")
    assert emit(records_repo, approval(5, commit=own))["verdict"]["verified"]


def test_an_unsigned_vouch_is_refused_when_signatures_are_required(
        records_repo: Path, tmp_path: Path) -> None:
    key, stranger = tmp_path / "ada_key", tmp_path / "stranger_key"
    trust_key(records_repo, key)
    keygen(stranger)
    set_config(records_repo, "operators", "require_signed", "true")

    unsigned = commit_as(records_repo, OPERATOR, trailer_for(approval(6)))
    detail = emit(records_repo, approval(6, commit=unsigned))["verdict"]["detail"]
    assert "signature does not verify" in detail and "require_signed" in detail

    def signed(signer: Path, n: int) -> str:
        return commit_as(records_repo, OPERATOR, trailer_for(approval(n)), "-c",
                         "gpg.format=ssh", "-c", f"user.signingkey={signer}", "-c",
                         "commit.gpgsign=true")

    by_stranger = signed(stranger, 7)
    assert not emit(records_repo, approval(7, commit=by_stranger))["verdict"]["verified"]
    assert emit(records_repo, approval(8, commit=signed(key, 8)))["verdict"]["verified"]


@pytest.mark.usefixtures("as_operator")
def test_vouch_by_ssh_signature(records_repo: Path, tmp_path: Path) -> None:
    key, stranger = tmp_path / "ada_key", tmp_path / "stranger_key"
    drafts = tmp_path / "drafts.jsonl"
    drafts.write_text(canonical_json(approval(9)) + "\n")
    keygen(stranger)
    # Without allowed_signers there is nothing to check a signature against.
    keygen(tmp_path / "early_key")
    early = invoke("vouch", str(drafts), "--ssh-key", str(tmp_path / "early_key"),
                   "--repo", str(records_repo))
    assert early.exit_code == 1 and "no [operators] allowed_signers" in early.stderr

    trust_key(records_repo, key)
    result = invoke("vouch", str(drafts), "--ssh-key", str(key), "--repo", str(records_repo))
    assert result.exit_code == 0 and result.stdout.split()[1] == "verified"
    signed = json.loads((records_repo / RECORDS_DIR / "seg-000001.jsonl").read_text()
                        .splitlines()[-1])
    assert "commit" not in signed["evidence"]
    assert signed["evidence"]["signature"].startswith("-----BEGIN SSH SIGNATURE-----")

    # The same signature on another record, and a stranger's signature, do not verify.
    moved = dict(approval(10, signature=signed["evidence"]["signature"]))
    assert "does not verify" in emit(records_repo, moved)["verdict"]["detail"]
    stranger_drafts = invoke("vouch", str(drafts), "--ssh-key", str(stranger),
                             "--repo", str(records_repo))
    assert stranger_drafts.exit_code == 1 and "does not verify" in stranger_drafts.stderr


def test_vouch_refuses_anyone_but_an_operator(records_repo: Path, tmp_path: Path) -> None:
    drafts = tmp_path / "drafts.jsonl"
    drafts.write_text(canonical_json(approval(11)) + "\n")
    result = invoke("vouch", str(drafts), "--repo", str(records_repo))
    assert result.exit_code == 1 and f"{AGENT} is not a configured operator" in result.stderr
    assert git(records_repo, "log", "-1", "--format=%s") != "convergent: vouch for 1 record"


def forged(root: Path, draft: dict[str, Any], *extra: Path) -> None:
    """Append ``draft`` claiming verified: true by hand and commit it past the hooks."""
    record = finalize(draft, Verdict(True, draft["evidence"]["type"], "trust me"))
    with (root / RECORDS_DIR / "seg-000001.jsonl").open("a") as fh:
        fh.write(canonical_json(record) + "\n")
    git(root, "add", RECORDS_DIR, *(str(p) for p in extra))
    git(root, "commit", "-q", "--no-verify", "-m", "forged")


def test_check_refuses_a_committed_record_whose_operator_did_not_vouch(records_repo: Path
                                                                      ) -> None:
    sha = commit_as(records_repo, OPERATOR, trailer_for(approval(12)))
    forged(records_repo, approval(13, commit=sha))
    result = check_all(records_repo)
    assert result.exit_code == 1
    assert "source: claims verified: true but the operator verifier says no" in result.stderr
    assert "does not vouch for this record" in result.stderr


# --- grounding -----------------------------------------------------------------------------


def cited(quote: str, ref: str, emitter: str = SOURCE["emitter"]) -> dict[str, Any]:
    return {"kind": "experience", "claim": "rollback", "task": "How is rollback done?",
            "response": "By one git revert.", "confidence": 0.9,
            "evidence": {"type": "grounding", "citations": [{"source": ref, "quote": quote}]},
            "source": {**SOURCE, "emitter": emitter}}


def grounding_detail(root: Path, draft: dict[str, Any]) -> str:
    record = emit(root, draft)
    assert not record["verdict"]["verified"], record["verdict"]
    return str(record["verdict"]["detail"])


@pytest.mark.usefixtures("as_operator")
def test_a_source_an_operator_registered_grounds_and_passes_check(records_repo: Path,
                                                                  tmp_path: Path) -> None:
    doc = tmp_path / "rollback.md"
    doc.write_text(DOC)
    added = invoke("source", "add", str(doc), "--registered-by", "docs-ingest",
                   "--repo", str(records_repo))
    assert added.exit_code == 0 and added.stdout.split()[0] == snapshot_ref(DOC)
    record = emit(records_repo, cited("one git revert", snapshot_ref(DOC)))
    assert record["verdict"]["verified"], record["verdict"]
    assert invoke("commit", "--repo", str(records_repo)).exit_code == 0
    assert check_all(records_repo).exit_code == 0


def test_a_source_another_identity_registered_grounds(records_repo: Path) -> None:
    ref = register(records_repo, DOC, by=DOCS_BOT, registered_by="docs-ingest")
    assert emit(records_repo, cited("never rewritten", ref))["verdict"]["verified"]


def test_a_snapshot_the_emitter_stored_itself_is_refused(records_repo: Path) -> None:
    # Registered under the emitter's own name (by another git identity) ...
    own = register(records_repo, DOC, by=DOCS_BOT, registered_by=SOURCE["emitter"])
    assert "this record's own emitter" in grounding_detail(records_repo, cited("git revert",
                                                                                own))
    # ... or under a made-up name, but committed by the identity committing the record.
    lie = register(records_repo, DOC + " Forged.", by=AGENT, registered_by="wikipedia")
    detail = grounding_detail(records_repo, cited("Forged.", lie))
    assert "a record cannot ground itself" in detail and AGENT in detail


def test_a_snapshot_added_in_the_same_commit_is_refused(records_repo: Path) -> None:
    ref = store_source(records_repo, DOC, registered_by="docs-ingest")
    forged(records_repo, cited("one git revert", ref), records_repo / SOURCES_DIR)
    result = check_all(records_repo)
    assert result.exit_code == 1
    assert "grounding verifier says no" in result.stderr
    assert "commit data/convergence/sources/" in result.stderr and "before the record" in (
        result.stderr)


def test_an_uncommitted_snapshot_is_refused(records_repo: Path) -> None:
    ref = store_source(records_repo, DOC, registered_by="docs-ingest")
    detail = grounding_detail(records_repo, cited("one git revert", ref))
    assert "is missing from" in detail and "before the record" in detail


def commit_link(root: Path, name: str, target: str | Path) -> None:
    (root / SOURCES_DIR / name).symlink_to(target)
    git(root, "add", SOURCES_DIR)
    git(root, *as_person(OPERATOR), "commit", "-q", "--no-verify", "-m", "a link")


@pytest.mark.parametrize("target", ["/etc/passwd", "outside"])
def test_a_symlink_snapshot_is_refused(records_repo: Path, tmp_path: Path, target: str
                                       ) -> None:
    path = Path(target) if target.startswith("/") else tmp_path / target
    if not path.exists():
        path.write_text("secret outside the repo: the launch code is 0000\n")
    ref = snapshot_ref(path.read_bytes())
    commit_link(records_repo, ref.removeprefix("sha256:"), path)
    quote = path.read_text().split()[0]
    assert "is a symlink in Git, not a regular file" in grounding_detail(
        records_repo, cited(quote, ref))
    with pytest.raises(RepoError, match="in the way and not a regular file"):
        store_source(records_repo, path.read_bytes(), registered_by="docs-ingest")


def test_a_directory_snapshot_is_refused(records_repo: Path) -> None:
    ref = snapshot_ref(DOC)
    folder = records_repo / SOURCES_DIR / ref.removeprefix("sha256:")
    folder.mkdir()
    (folder / "inside").write_text(DOC)
    git(records_repo, "add", SOURCES_DIR)
    git(records_repo, *as_person(OPERATOR), "commit", "-q", "--no-verify", "-m", "a dir")
    assert "is a directory in Git" in grounding_detail(records_repo, cited("git revert", ref))


def test_a_symlinked_sources_dir_is_refused(records_repo: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ref = snapshot_ref(DOC)
    (elsewhere / ref.removeprefix("sha256:")).write_text(DOC)
    sources = records_repo / SOURCES_DIR
    git(records_repo, "rm", "-rq", SOURCES_DIR)
    shutil.rmtree(sources, ignore_errors=True)
    os.symlink(elsewhere, sources)
    git(records_repo, "add", SOURCES_DIR)
    git(records_repo, *as_person(OPERATOR), "commit", "-q", "--no-verify", "-m", "a link")
    assert "is missing from" in grounding_detail(records_repo, cited("git revert", ref))
    with pytest.raises(RepoError, match="not a plain directory"):
        store_source(records_repo, "new text", registered_by="docs-ingest")


def test_an_unsigned_operator_registration_is_refused_when_signatures_are_required(
        records_repo: Path, tmp_path: Path) -> None:
    trust_key(records_repo, tmp_path / "ada_key")
    set_config(records_repo, "operators", "require_signed", "true")
    ref = register(records_repo, DOC, by=OPERATOR)
    detail = grounding_detail(records_repo, cited("git revert", ref))
    assert "an operator, but signature does not verify" in detail
