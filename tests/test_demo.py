"""`convergent demo` end to end, in a temp dir, and the records repo it leaves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import git
import pytest
from click.testing import CliRunner

from convergent.cli import cli
from convergent.status import read_records
from convergent.trainer.registry import adapter_tags, read_active, tag_metadata

pytest.importorskip("torch")
pytestmark = [pytest.mark.train, pytest.mark.slow]


def test_demo_runs_the_whole_loop(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    done = subprocess.run([sys.executable, "-m", "convergent", "demo", str(target), "--quick"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    for step in range(1, 9):
        assert f"== {step}." in out
    assert "refused  pasted a public benchmark item: decontamination gate" in out
    assert "refused  wrote fetch_report with a credential in it: secrets gate" in out
    assert "a hand edit of a committed line: refused" in out
    assert "convergent check --all: green" in out

    root = target / "records"
    repo = git.Repo(root)
    [tag] = adapter_tags(repo)
    assert tag.name == "adapter/v1"
    assert list(tag.commit.stats.files) == ["data/convergence/ACTIVE"]
    assert read_active(root) == "base"  # promoted, then rolled back by `convergent revert`
    kinds = [r["kind"] for r in read_records(root)]
    for kind in ("experience", "gap", "lever", "proposal", "approval", "cycle", "promotion",
                 "revert"):
        assert kind in kinds, kind
    assert kinds.count("lever") == 3
    experiences = [r for r in read_records(root) if r["kind"] == "experience"]
    assert any(not r["verdict"]["verified"] for r in experiences)
    assert not any("AKIA" in r["response"] for r in experiences)
    [cycle] = [r for r in read_records(root) if r["kind"] == "cycle"]
    assert cycle["evidence"]["adapter"] == tag_metadata(tag)["adapter"]
    assert cycle["evidence"]["backend"] in ("unsloth", "peft")
    png = root / ".convergent" / "report" / "tripwire.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = CliRunner().invoke(cli, ["check", "--all", "--repo", str(root)])
    assert result.exit_code == 0, result.output
    assert not repo.is_dirty(untracked_files=True)


def test_demo_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine\n")
    result = CliRunner().invoke(cli, ["demo", str(tmp_path)])
    assert result.exit_code == 1
    assert "not empty" in result.output
    assert (tmp_path / "keep.txt").read_text() == "mine\n"
