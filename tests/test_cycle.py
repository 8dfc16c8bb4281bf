"""Real cycles on the tiny model: two commits and a tag per promotion, revert, regenerate,
the tripwire halting a collapse, a changed hold-out, a kill mid-training."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import git as gitpython
import pytest
from click.testing import CliRunner
from cycleflow import HOLDOUT, approve_new_proposal, cycle_repo, emit_experiences
from gapflow import (
    OPERATOR_EMAIL,
    OPERATOR_NAME,
    acting_as,
    as_operator,
    git,
    records,
    set_config,
    skip_git_hooks,
    without_hooks,
)

from convergent.adapters import adapter_tags, read_active, tag_metadata
from convergent.cli import cli
from convergent.holdout import HoldoutChangedError
from convergent.layout import ACTIVE_FILE, ADAPTERS_DIR
from convergent.on_merge import on_merge
from convergent.proposals import LeversFirstError, propose
from convergent.recorder import Recorder
from convergent.trainer.cycle import CycleError, run_due_cycles

pytest.importorskip("torch")
pytestmark = [pytest.mark.train, pytest.mark.slow]


def check_all(root: Path) -> None:
    result = CliRunner().invoke(cli, ["check", "--all", "--repo", str(root)])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def promoted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A records repo after three promoted cycles (v1, v2, v3)."""
    from convergent.repo import init_repo

    with pytest.MonkeyPatch.context() as mp:
        home = tmp_path_factory.mktemp("gitcfg") / ".gitconfig"
        home.write_text("[user]\n\tname = Test Agent\n\temail = agent@example.com\n"
                        "[init]\n\tdefaultBranch = main\n")
        mp.setenv("GIT_CONFIG_GLOBAL", str(home))
        skip_git_hooks(mp)  # gates are checked once at the end by `check --all`
        root = init_repo(tmp_path_factory.mktemp("cycles") / "records",
                         operators=["Ada Operator <ada@example.com>"])
        cycle_repo(root, mp)
        for n in range(3):
            emit_experiences(root, 10 * n, 4)
            approve_new_proposal(root, first=n == 0)
        yield root


def test_each_promotion_is_two_commits_and_an_annotated_tag(promoted: Path) -> None:
    repo = gitpython.Repo(promoted)
    tags = adapter_tags(repo)
    assert [t.name for t in tags] == ["adapter/v1", "adapter/v2", "adapter/v3"]
    cycles = records(promoted, "cycle")
    assert [c["evidence"]["outcome"] for c in cycles] == ["promoted"] * 3
    for tag, cycle in zip(tags, cycles, strict=True):
        meta = tag_metadata(tag)
        assert meta["adapter"] == cycle["evidence"]["adapter"]
        for key in ("base_model", "holdout_pass_rate", "diversity", "manifest_sha256",
                    "proposal", "base_sha256"):
            assert key in meta
        promotion = tag.commit
        assert list(promotion.stats.files) == [ACTIVE_FILE]  # the promotion changes only ACTIVE
        registry = promotion.parents[0]
        changed = set(registry.stats.files)
        assert any(p.startswith(ADAPTERS_DIR + "/" + meta["adapter"][7:]) for p in changed)
        assert cycle["evidence"]["base_unchanged"] is True
        assert (promoted / ADAPTERS_DIR / meta["adapter"][7:] / "metadata.json").exists()
    assert read_active(promoted) == tag_metadata(tags[-1])["adapter"]
    check_all(promoted)


def test_on_merge_again_starts_no_second_cycle(promoted: Path) -> None:
    before = len(records(promoted, "cycle"))
    assert run_due_cycles(promoted) == []
    assert len(records(promoted, "cycle")) == before


def test_status_and_report_show_the_history(promoted: Path) -> None:
    status = json.loads(CliRunner().invoke(cli, ["status", "--json", "--repo",
                                                 str(promoted)]).output)
    assert status["tripwire"]["cycles"] == 3
    assert status["tripwire"]["consecutive_clean"] == 3
    assert [h.split("=")[0] for h in status["adapter_history"]] == [
        "adapter/v1", "adapter/v2", "adapter/v3"]
    result = CliRunner().invoke(cli, ["report", "--repo", str(promoted), "--out",
                                      str(promoted / ".convergent" / "r")])
    png, html = (Path(p) for p in result.output.split())
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert html.read_text().count("<tr") == 4  # header + three cycles


def test_regenerate_gives_the_same_sha256(promoted: Path) -> None:
    result = CliRunner().invoke(cli, ["regenerate", "adapter/v1", "--repo", str(promoted)])
    assert result.exit_code == 0, result.output
    assert "identical" in result.output


def test_one_set_of_lever_tries_backs_one_cycle(promoted: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """After v3 was promoted, its lever tries back no second proposal: `propose` refuses;
    one made by hand and merged by the operator starts no cycle, and check goes red."""
    root = tmp_path / "records"
    shutil.copytree(promoted, root, symlinks=True)
    for var in ("GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_0", "GIT_CONFIG_VALUE_0"):
        monkeypatch.delenv(var, raising=False)  # our hooks run again from here on
    before = (read_active(root), adapter_tags(gitpython.Repo(root)), records(root, "cycle"))
    with pytest.raises(LeversFirstError, match="one cycle per measured gap state"):
        propose(root, "strings")
    [gap_record] = records(root, "gap")
    tries = records(root, "lever")[-3:]  # the tries the last (promoted) cycle relied on
    git(root, "checkout", "-q", "-b", "again")
    with Recorder(root, verify=False) as recorder:
        recorder.emit({"kind": "proposal", "claim": "distill strings once more",
                       "evidence": {"type": "proposal", "gap": "strings",
                                    "levers": [t["id"] for t in tries],
                                    "manifest": {"experiences": [], "external": "stdlib"},
                                    "cycle_config": {}},
                       "links": [gap_record["id"], *(t["id"] for t in tries)],
                       "confidence": 1.0, "source": {"emitter": "hand", "model": "tiny",
                                                     "origin": "self"}})
    git(root, *without_hooks("commit", "-qam", "a proposal by hand"))
    git(root, "checkout", "-q", "main")
    refused = git(root, *as_operator("merge", "--no-ff", "-m", "approve", "again"), check=False)
    assert refused.returncode != 0 and "levers-first: lever 'route'" in refused.stderr
    git(root, "merge", "--abort")
    git(root, *without_hooks(*as_operator("merge", "--no-ff", "-q", "-m", "approve", "again")))
    with pytest.raises(CycleError, match="levers-first: lever 'route' for gap 'strings' was "
                                         "tried before cycle"):
        on_merge(root)  # the approval is genuine: the cycle itself refuses
    assert len(records(root, "approval")) == len(records(promoted, "approval")) + 1
    assert (read_active(root), adapter_tags(gitpython.Repo(root)),
            records(root, "cycle")) == before
    result = CliRunner().invoke(cli, ["check", "--all", "--repo", str(root)])
    assert result.exit_code == 1 and "levers-first: lever 'route'" in result.output


def test_revert_twice_walks_back_to_v1_and_a_hand_revert_works(promoted: Path) -> None:
    tags = adapter_tags(gitpython.Repo(promoted))
    shas = [tag_metadata(t)["adapter"] for t in tags]
    for expected in (shas[1], shas[0]):
        with acting_as(OPERATOR_NAME, OPERATOR_EMAIL):  # a revert moves ACTIVE
            result = CliRunner().invoke(cli, ["revert", "--repo", str(promoted)])
        assert result.exit_code == 0, result.output
        assert read_active(promoted) == expected
        check_all(promoted)
    assert [r["evidence"]["tag"] for r in records(promoted, "revert")] == [
        "adapter/v3", "adapter/v2"]
    # By hand: a plain `git revert` of v1's promotion, through the same gates.
    done = git(promoted, *as_operator("revert", "--no-edit", tags[0].commit.hexsha),
               check=False)
    assert done.returncode == 0, done.stderr
    assert read_active(promoted) == "base"
    check_all(promoted)
    result = CliRunner().invoke(cli, ["revert", "--repo", str(promoted)])
    assert result.exit_code == 1 and "no promotion of it to revert" in result.output


def test_a_collapsing_adapter_is_halted_and_active_kept(records_repo: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """Trained to emit one constant answer, the candidate loses its diversity: halt."""
    skip_git_hooks(monkeypatch)
    cycle_repo(records_repo, monkeypatch, steps=40, permissive=False)
    set_config(records_repo, "cycle", "learning_rate", "0.02")
    set_config(records_repo, "cycle", "external_share", "0.05")
    constant = "def solve(*args):\n    return 0\n"
    for n in range(12):
        emit_experiences(records_repo, n, 1, response=constant,
                         task=f"Task {n}: write solve() for case {n * 7}, returning zero.",
                         evidence={"type": "execution", "language": "python",
                                   "tests": "assert solve() == 0\n"})
    approve_new_proposal(records_repo, first=True)
    [cycle] = records(records_repo, "cycle")
    [halt] = records(records_repo, "halt")
    assert cycle["evidence"]["outcome"] == "halted"
    reasons = " ".join(halt["evidence"]["reasons"])
    assert "diversity fell" in reasons
    assert halt["evidence"]["candidate"]["diversity"] < halt["evidence"]["reference"][
        "diversity"]
    assert read_active(records_repo) == "base"
    assert adapter_tags(gitpython.Repo(records_repo)) == []
    assert sorted(p.name for p in (records_repo / ADAPTERS_DIR).iterdir()) == [".gitkeep"]


def test_a_changed_holdout_stops_every_cycle(records_repo: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    skip_git_hooks(monkeypatch)
    cycle_repo(records_repo, monkeypatch)
    set_config(records_repo, "cycle", "autostart", "false")
    emit_experiences(records_repo, 0, 3)
    approve_new_proposal(records_repo, first=True)
    path = records_repo / HOLDOUT
    path.write_text(path.read_text().replace("assert", "assert True or", 1))
    with pytest.raises(HoldoutChangedError, match="re-freeze"):
        run_due_cycles(records_repo)
    assert records(records_repo, "cycle") == []
    assert read_active(records_repo) == "base"


def test_a_cycle_by_neither_an_operator_nor_a_runner_trains_nothing(
        records_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its commit would be refused (only an operator or a listed cycle runner moves
    weights), so a cycle run as anyone else is refused before any training, saying how to
    run it, and leaves nothing behind."""
    skip_git_hooks(monkeypatch)
    cycle_repo(records_repo, monkeypatch)
    set_config(records_repo, "cycle", "autostart", "false")
    emit_experiences(records_repo, 0, 3)
    approve_new_proposal(records_repo, first=True)
    head = git(records_repo, "rev-parse", "HEAD").stdout
    with pytest.raises(CycleError, match="Test Agent <agent@example.com> is neither a "
                       "configured operator nor a listed cycle runner"):
        run_due_cycles(records_repo)  # as the tests' own identity, listed nowhere
    assert git(records_repo, "rev-parse", "HEAD").stdout == head
    assert git(records_repo, "status", "--porcelain").stdout == ""
    assert records(records_repo, "cycle") == []
    assert read_active(records_repo) == "base"


def _tree(pid: int) -> list[int]:
    psutil = pytest.importorskip("psutil")
    try:
        return [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]
    except psutil.NoSuchProcess:
        return [pid]


def _survivors(pids: list[int], timeout_s: float = 30.0) -> list[str]:
    """The processes of ``pids`` still alive (zombies count as dead) after ``timeout_s``."""
    psutil = pytest.importorskip("psutil")
    deadline = time.monotonic() + timeout_s
    while True:
        alive = []
        for pid in pids:
            try:
                process = psutil.Process(pid)
                if process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(f"{pid} {' '.join(process.cmdline())[:120]}")
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


def test_a_cycle_killed_mid_training_leaves_nothing_and_a_rerun_succeeds(
        records_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    skip_git_hooks(monkeypatch)
    cycle_repo(records_repo, monkeypatch, steps=200)
    set_config(records_repo, "cycle", "autostart", "false")
    emit_experiences(records_repo, 0, 3)
    approve_new_proposal(records_repo, first=True)
    head = git(records_repo, "rev-parse", "HEAD").stdout
    log = (records_repo / ".convergent" / "cycle-run.log").open("wb")
    with acting_as(OPERATOR_NAME, OPERATOR_EMAIL):  # who may commit a cycle's results
        runner = subprocess.Popen([sys.executable, "-m", "convergent", "cycle", "run",
                                   "--repo", str(records_repo)], stdout=log, stderr=log)
    cycles = records_repo / ".convergent" / "cycles"
    deadline = time.monotonic() + 300
    while not list(cycles.glob("*/run.partial/*")) and time.monotonic() < deadline:
        assert runner.poll() is None, (records_repo / ".convergent" / "cycle-run.log"
                                       ).read_text()[-2000:]
        time.sleep(0.2)
    time.sleep(2)  # well inside training
    children = _tree(runner.pid)[1:]
    assert children, "the trainer runs in a child process"
    os.kill(runner.pid, signal.SIGKILL)  # the parent alone: its children must die with it
    runner.wait()
    assert _survivors(children) == []  # no trainer outlives a killed `convergent cycle run`
    assert git(records_repo, "rev-parse", "HEAD").stdout == head  # nothing committed
    assert read_active(records_repo) == "base"
    assert sorted(p.name for p in (records_repo / ADAPTERS_DIR).iterdir()) == [".gitkeep"]
    assert records(records_repo, "cycle") == []
    set_config(records_repo, "cycle", "max_steps", "4")
    with acting_as(OPERATOR_NAME, OPERATOR_EMAIL):
        [cycle] = run_due_cycles(records_repo)
    assert cycle["evidence"]["outcome"] == "promoted"
    assert read_active(records_repo) == cycle["evidence"]["adapter"]
