"""Tamper tests: the append-only gate at commit time (our git hook) and in CI (check --all)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import UNSIGNED_WARNING
from drafts import accept_notes, note
from gapflow import without_hooks

from convergent.cli import cli
from convergent.recorder import Recorder
from convergent.records import canonical_json, finalize

SEGMENT = "data/convergence/records/seg-000001.jsonl"


def git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=check)


def check_all(root: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["check", "--all", "--repo", str(root)])
    return result.exit_code, result.stderr


@pytest.fixture
def committed(records_repo: Path) -> Path:
    accept_notes(records_repo)
    with Recorder(records_repo, verify=False) as recorder:
        for i in range(3):
            recorder.emit(note(i))
        assert recorder.commit() is not None
    return records_repo


def _lines(root: Path) -> list[str]:
    return (root / SEGMENT).read_text().splitlines(keepends=True)


def _change(lines: list[str]) -> list[str]:
    return [lines[0].replace("gap 0 measured", "gap 0 edited"), *lines[1:]]


def _delete(lines: list[str]) -> list[str]:
    return lines[:1] + lines[2:]


def _reorder(lines: list[str]) -> list[str]:
    return [lines[1], lines[0], *lines[2:]]


def _fresh_id(lines: list[str]) -> list[str]:
    import json

    record = json.loads(lines[1])
    record["claim"] = "rewritten with a valid id"
    rewritten = finalize({k: v for k, v in record.items() if k != "id"}, None, ts=record["ts"])
    return [lines[0], canonical_json(rewritten) + "\n", *lines[2:]]


TAMPERS: list[Callable[[list[str]], list[str]]] = [_change, _delete, _reorder, _fresh_id]


@pytest.mark.parametrize("tamper", TAMPERS, ids=lambda f: f.__name__.strip("_"))
def test_git_hook_refuses_and_check_all_catches(committed: Path,
                                                tamper: Callable[[list[str]], list[str]]
                                                ) -> None:
    (committed / SEGMENT).write_text("".join(tamper(_lines(committed))))
    blocked = git(committed, "commit", "-am", "tamper", check=False)
    assert blocked.returncode != 0
    assert "append-only" in blocked.stderr
    assert check_all(committed)[0] == 0  # nothing bad landed
    skipped = git(committed, "commit", "--no-verify", "-qam", "tamper past the hook",
                  check=False)
    assert skipped.returncode != 0 and "append-only" in skipped.stderr  # reference-transaction
    git(committed, *without_hooks("commit", "-qam", "tamper in a clone without our hooks"))
    code, err = check_all(committed)
    assert code == 1
    assert f"{SEGMENT}:" in err and "append-only" in err


def test_appending_passes_everywhere(committed: Path) -> None:
    with Recorder(committed, verify=False) as recorder:
        recorder.emit(note(10))
        assert recorder.commit() is not None
    assert check_all(committed) == (0, UNSIGNED_WARNING)


def _branch_append(root: Path, branch: str, n: int) -> None:
    git(root, "checkout", "-q", "-b", branch, "main")
    with Recorder(root, verify=False) as recorder:
        recorder.emit(note(n))
        recorder.emit(note(n + 1))
        recorder.commit()
    git(root, "checkout", "-q", "main")


def test_concurrent_branches_union_merge_and_pass(committed: Path) -> None:
    _branch_append(committed, "a", 100)
    _branch_append(committed, "b", 200)
    git(committed, "merge", "-q", "--no-edit", "a")
    merged = git(committed, "merge", "--no-ff", "--no-edit", "b", check=False)
    assert merged.returncode == 0, merged.stderr
    assert len(_lines(committed)) == 7
    assert check_all(committed) == (0, UNSIGNED_WARNING)


def test_a_merge_that_drops_a_line_is_refused(committed: Path) -> None:
    _branch_append(committed, "a", 100)
    _branch_append(committed, "b", 200)
    git(committed, "merge", "-q", "--no-ff", "--no-edit", "a")
    git(committed, "merge", "--no-ff", "--no-commit", "b")
    lines = _lines(committed)
    (committed / SEGMENT).write_text("".join(lines[:-1]))  # silently drop b's last line
    git(committed, "add", SEGMENT)
    blocked = git(committed, "commit", "--no-edit", check=False)
    assert blocked.returncode != 0 and "append-only" in blocked.stderr
    skipped = git(committed, "commit", "--no-verify", "--no-edit", "-q", check=False)
    assert skipped.returncode != 0 and "append-only" in skipped.stderr  # reference-transaction
    git(committed, *without_hooks("commit", "--no-edit", "-q"))
    code, err = check_all(committed)
    assert code == 1 and "by the merge" in err


def test_rev_range_checks_only_the_range(committed: Path) -> None:
    base = git(committed, "rev-parse", "HEAD").stdout.strip()
    with Recorder(committed, verify=False) as recorder:
        recorder.emit(note(50))
        recorder.commit()
    result = CliRunner().invoke(cli, ["check", "--rev-range", f"{base}..HEAD", "--repo",
                                      str(committed)])
    assert result.exit_code == 0, result.stderr


def test_deleting_the_distillation_option_is_refused(committed: Path) -> None:
    config = committed / ".convergent.toml"
    text = config.read_text()
    start = text.index("[distillation]")
    config.write_text(text[:start])
    blocked = git(committed, "commit", "-am", "drop distillation", check=False)
    assert blocked.returncode != 0 and "never-removed" in blocked.stderr
