"""Attacks that rewrite the history convergent reads without touching a commit: replace refs
(``refs/replace/*``) and grafts (``.git/info/grafts``). Every git call of ours ignores both
(:func:`convergent.gitops.open_repo`), ``check`` names them, and the reference-transaction
hook refuses to create a replace ref."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from evidence import NO_HOOKS, OPERATOR, as_person, git
from gapflow import proposal_branch

from convergent.cli import cli
from convergent.gitops import open_repo
from convergent.layout import segment_name
from convergent.log import records_dir
from convergent.on_merge import on_merge

ATTACKER = "Mallory Agent <mallory@example.com>"


def check_all(root: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["check", "--all", "--repo", str(root)])
    return result.exit_code, result.output


def bad_commit_then_good(root: Path) -> tuple[str, str]:
    """A commit that appends a line no gate accepts (made past the hooks), then an innocent
    commit on top; returns both shas."""
    with (records_dir(root) / segment_name(1)).open("ab") as fh:
        fh.write(b'{"kind": "approval", "claim": "not a record"}\n')
    git(root, "add", "data/convergence/records")
    git(root, *as_person(ATTACKER), *NO_HOOKS, "commit", "-q", "-m", "bad")
    bad = git(root, "rev-parse", "HEAD")
    (root / "notes.txt").write_text("hello\n")
    git(root, "add", "notes.txt")
    git(root, *as_person(ATTACKER), *NO_HOOKS, "commit", "-q", "-m", "innocent")
    return bad, git(root, "rev-parse", "HEAD")


def test_a_graft_cannot_hide_a_bad_commit_from_check_all(records_repo: Path) -> None:
    root = records_repo
    bad, good = bad_commit_then_good(root)
    code, out = check_all(root)
    assert code == 1 and ": schema: " in out, out
    # The graft makes `git rev-list` skip the bad commit: good's parent becomes bad's parent.
    (root / ".git" / "info").mkdir(exist_ok=True)
    (root / ".git" / "info" / "grafts").write_text(
        f"{good} {git(root, 'rev-parse', f'{bad}^')}\n")
    assert bad not in git(root, "rev-list", "HEAD")  # git itself is fooled
    code, out = check_all(root)
    assert code == 1, out
    assert ": schema: " in out, out  # the bad commit is still checked
    assert ".git/info/grafts" in out and "graft" in out, out
    assert bad in open_repo(root).git.rev_list("HEAD").split()  # ours is not


def test_a_replace_ref_cannot_hide_a_bad_commit_from_check_all(records_repo: Path) -> None:
    root = records_repo
    bad, good = bad_commit_then_good(root)
    git(root, *NO_HOOKS, "replace", "--graft", good, git(root, "rev-parse", f"{bad}^"))
    assert bad not in git(root, "rev-list", "HEAD")
    code, out = check_all(root)
    assert code == 1 and ": schema: " in out, out
    assert f"refs/replace/{good}" in out, out
    from convergent.gitops import history_rewrites

    assert history_rewrites(open_repo(root)) == [(
        f"refs/replace/{good}", "a replace ref rewrites history for every git command that "
        "honors it; convergent ignores it, remove it with `git replace -d`")]


@pytest.fixture
def merged_by_attacker(records_repo: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """A proposal branch merged into main by a non-operator (past the hooks)."""
    root = records_repo
    proposal = proposal_branch(root, monkeypatch)
    git(root, *as_person(ATTACKER), *NO_HOOKS, "merge", "--no-ff", "-q", "-m", "merge it",
        proposal.branch)
    return root, git(root, "rev-parse", "HEAD")


def forged_author(root: Path, sha: str, who: str) -> str:
    """A copy of commit ``sha`` whose author is ``who`` (tree and parents unchanged)."""
    raw = subprocess.run(["git", "cat-file", "commit", sha], cwd=root, check=True,
                         capture_output=True).stdout.decode()
    head, _, rest = raw.partition("\nauthor ")
    _, _, after = rest.partition(">")
    forged = f"{head}\nauthor {who}{after}"
    return subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--stdin"], cwd=root,
                          input=forged.encode(), check=True, capture_output=True
                          ).stdout.decode().strip()


def test_a_replace_ref_cannot_turn_a_non_operators_merge_into_an_approval(
        merged_by_attacker: tuple[Path, str]) -> None:
    root, merge = merged_by_attacker
    assert on_merge(root) == []  # the attacker's own merge approves nothing
    # Swap in a copy of the merge authored by the operator: every git command now shows it.
    git(root, *NO_HOOKS, "replace", merge, forged_author(root, merge, OPERATOR))
    assert OPERATOR.split(" <")[0] in git(root, "log", "-1", "--format=%an", merge)
    assert on_merge(root) == []  # ours reads the real object
    code, out = check_all(root)
    assert code == 1 and f"refs/replace/{merge}" in out, out


def test_the_reference_transaction_hook_refuses_to_create_a_replace_ref(
        merged_by_attacker: tuple[Path, str]) -> None:
    root, merge = merged_by_attacker
    done = subprocess.run(["git", "replace", merge, forged_author(root, merge, OPERATOR)],
                          cwd=root, text=True, capture_output=True)
    assert done.returncode != 0, done.stdout + done.stderr
    assert "replace ref" in done.stderr, done.stderr
    assert not git(root, "for-each-ref", "refs/replace/")
