"""`convergent demo` end to end, in a temp dir, and the records repo it leaves: run with
the caller's git identity set to someone else, it still completes the loop, approved by
the operator's signed merge."""

from __future__ import annotations

import re
from pathlib import Path

import git
import pytest
from click.testing import CliRunner
from conftest import SOMEONE_ELSE, DemoRun

from convergent.adapters import adapter_tags, read_active, tag_metadata
from convergent.cli import cli
from convergent.demo import GAP, DemoError, loop_outcome
from convergent.history import read_records

pytest.importorskip("torch")


@pytest.mark.train
@pytest.mark.slow
def test_demo_prints_the_organisms_measured_numbers_with_standard_errors(demo_run: DemoRun
                                                                         ) -> None:
    """Each figure the demo prints is measured in the run, beside its standard error: the
    gap and the levers (best-of-N sampled above greedy), the gap again with the adapter, and a
    collapse drill the tripwire halts for the pass-rate reason."""
    out = demo_run.done.stdout
    rate = r"(\d+)/(\d+) = (\d\.\d\d) ± (\d\.\d\d)"
    gap = re.search(rf"  gap {GAP}: base {rate} -> with adapter/v1 {rate}", out)
    assert gap, out[-4000:]
    before, after = int(gap[1]) / int(gap[2]), int(gap[5]) / int(gap[6])
    assert after > before  # the cycle on the gap's experiences raised its pass@1
    best = re.search(r"best-of-8 from base, sampled at temperature 0\.5: (\d\.\d\d) ± "
                     r"(\d\.\d\d) \(greedy: (\d\.\d\d) ± (\d\.\d\d)\)", out)
    assert best and float(best[1]) > float(best[3]), out[-4000:]
    assert re.search(rf"hold-out \(160 tasks\): base {rate} -> adapter/v1 {rate}", out)
    drill = re.search(rf"answered `return 0`; hold-out {rate} -> {rate}\n  tripwire: halt "
                      r"\(pass rate fell", out)
    assert drill and int(drill[5]) < int(drill[1]), out[-4000:]


@pytest.mark.train
@pytest.mark.slow
def test_demo_runs_the_whole_loop(demo_run: DemoRun) -> None:
    done = demo_run.done
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    for step in range(1, 11):
        assert f"== {step}." in out
    assert "refused  pasted a public benchmark item: decontamination gate" in out
    assert "refused  wrote fetch_report with a credential in it: secrets gate" in out
    assert "a hand edit of a committed line: refused" in out
    assert "convergent check --all: green" in out

    root = demo_run.root
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
    assert "approvals are unsigned" not in result.output
    assert not repo.is_dirty(untracked_files=True)

    # The caller's identity (in GIT_AUTHOR_*/GIT_COMMITTER_*) made none of the commits.
    people = repo.git.log("--all", "--format=%an <%ae>%n%cn <%ce>").splitlines()
    assert set(people) == {"Ada Operator <ada@example.com>", "Demo Agent <agent@example.com>"}
    assert f"{SOMEONE_ELSE[0]} <{SOMEONE_ELSE[1]}>" not in people
    # The approval: the operator's merge, signed with the demo's key and verified.
    [approval] = [r for r in read_records(root) if r["kind"] == "approval"]
    assert approval["evidence"]["approved_by"] == "Ada Operator <ada@example.com>"
    merge = approval["evidence"]["commit"]
    signers = root / "allowed_signers"
    verdict = repo.git.execute(["git", "-c", f"gpg.ssh.allowedSignersFile={signers}", "log",
                                "-1", "--format=%G? %GS %an", merge])
    assert verdict == "G ada@example.com Ada Operator"
    assert 'require_signed = true' in (root / ".convergent.toml").read_text()
    assert "approved by Ada Operator <ada@example.com>: merge" in out
    assert "signature verified against allowed_signers" in out


def test_the_demo_reports_an_incomplete_loop_as_a_failure(records_repo: Path) -> None:
    """A merge that approved nothing is said so and fails the demo (exit 1), never narrated
    as a halted cycle."""
    said: list[str] = []
    with pytest.raises(DemoError, match="the loop did not complete: the operator's merge did "
                                        "not approve the proposal"):
        loop_outcome(records_repo, "sha256:" + "0" * 64, said.append)
    assert said == []


def test_demo_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine\n")
    result = CliRunner().invoke(cli, ["demo", str(tmp_path)])
    assert result.exit_code == 1
    assert "not empty" in result.output
    assert (tmp_path / "keep.txt").read_text() == "mine\n"
