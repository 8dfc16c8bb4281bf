"""Levers first: gaps and lever tries as records; proposals refused until every lever was
tried in order and left the gap open; the proposal branch and its PR description."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from drafts import experience
from gapflow import (
    EVAL,
    allow_reported,
    gap,
    git,
    levers,
    records,
    skip_git_hooks,
    write_eval,
)

from convergent.cli import cli
from convergent.gaps import GapError, record_gap, record_lever
from convergent.levers import plan_proposal, proposal_problems
from convergent.proposals import LeversFirstError, propose
from convergent.recorder import Recorder


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    skip_git_hooks(monkeypatch)  # propose refuses before committing: no gate is involved


def refusal(root: Path) -> list[str]:
    with pytest.raises(LeversFirstError) as info:
        propose(root, "strings")
    lines = str(info.value).splitlines()
    assert lines[0] == "cannot propose distillation for gap 'strings'; levers first:"
    assert len(lines) == len(info.value.missing) + 1  # each piece on its own line
    for line, reason in zip(lines[1:], info.value.missing, strict=True):
        assert line.startswith(f"  - {reason}")
    return lines[1:]


def test_lever_tries_need_a_known_lever_and_a_recorded_gap(records_repo: Path, fast: None) -> None:
    with pytest.raises(GapError, match="no gap named 'strings' is recorded: run `convergent "
                                       "gap measure strings --eval PATH --target T` first"):
        record_lever(records_repo, "strings", "route", 0.5, {})
    with pytest.raises(GapError, match="evaluation set 'nope.jsonl' does not exist"):
        record_gap(records_repo, "strings", "pass@1", 0.8, "nope.jsonl", 0.3)
    with pytest.raises(GapError, match="measured 0.9 already meets the target 0.8"):
        record_gap(records_repo, "strings", "pass@1", 0.8, write_eval(records_repo), 0.9)
    gap(records_repo)
    with pytest.raises(GapError, match="unknown lever 'finetune': use one of route, "
                                       "verify_best_of_n, rag"):
        record_lever(records_repo, "strings", "finetune", 0.5, {})
    lever = record_lever(records_repo, "strings", "route", 0.5, {"router": "small-first"})
    assert lever["links"] == [records(records_repo, "gap")[0]["id"]]
    assert lever["evidence"] == {"type": "lever", "lever": "route", "gap": "strings",
                                 "measured": 0.5, "detail": {"router": "small-first"}}
    assert "nothing to commit" in git(records_repo, "status").stdout


def test_a_proposal_without_lever_evidence_names_each_missing_lever(records_repo: Path
                                                                      ) -> None:
    gap(records_repo)
    lines = refusal(records_repo)
    assert len(lines) == 3
    for line, lever in zip(lines, ("route", "verify_best_of_n", "rag"), strict=True):
        assert f"lever '{lever}' was never tried for gap 'strings'" in line
    assert "next: `convergent lever measure --gap strings --lever route`" in lines[0]
    assert ("next: `convergent lever measure --gap strings --lever verify_best_of_n --n 8`"
            in lines[1])
    assert "next: `convergent lever measure --gap strings --lever rag`" in lines[2]


def test_lever_tries_older_than_the_gap_do_not_count(records_repo: Path, fast: None) -> None:
    gap(records_repo)
    levers(records_repo)
    gap(records_repo, measured=0.35)  # measured again: the earlier tries predate it
    lines = refusal(records_repo)
    assert len(lines) == 3
    assert "lever 'route' for gap 'strings' was tried before the gap was recorded" in lines[0]
    assert all("(out of order): try it again" in line for line in lines)


def test_levers_out_of_order_are_refused(records_repo: Path, fast: None) -> None:
    gap(records_repo)
    levers(records_repo, order=("verify_best_of_n", "route", "rag"))
    lines = refusal(records_repo)
    assert len(lines) == 1
    assert ("lever 'verify_best_of_n' for gap 'strings' was tried before lever 'route' "
            "(out of order)") in lines[0]
    assert "then rag after it" in lines[0]


def test_a_lever_that_closed_the_gap_is_refused(records_repo: Path, fast: None) -> None:
    gap(records_repo)
    levers(records_repo, measured=(0.85, 0.5, 0.6))
    lines = refusal(records_repo)
    assert len(lines) == 1
    assert "lever 'route' closed gap 'strings' (measured 0.85, target 0.8)" in lines[0]


def test_the_cli_refuses_with_exit_1_and_every_piece(records_repo: Path) -> None:
    write_eval(records_repo)
    runner = CliRunner()
    typed = ["gap", "add", "strings", "--metric", "pass@1", "--target", "0.8", "--eval", EVAL,
             "--measured", "0.3", "--repo", str(records_repo)]
    refused = runner.invoke(cli, typed)
    assert refused.exit_code == 1
    assert "a typed number (reported, not measured) is refused" in refused.output
    allow_reported(records_repo)
    added = runner.invoke(cli, typed)
    assert added.exit_code == 0, added.output
    result = runner.invoke(cli, ["propose", "--gap", "strings", "--repo", str(records_repo)])
    assert result.exit_code == 1
    assert result.output.count("was never tried for gap 'strings'") == 3
    bad = runner.invoke(cli, ["lever", "record", "--gap", "strings", "--lever", "route",
                              "--measured", "0.4", "--detail", "[1]",
                              "--repo", str(records_repo)])
    assert bad.exit_code == 2


def test_a_proposal_is_a_branch_made_without_touching_the_working_tree(records_repo: Path
                                                                       ) -> None:
    with Recorder(records_repo) as recorder:
        good = recorder.emit(experience(1))
        recorder.emit(experience(2, passing=False))
        recorder.commit()
    the_gap = gap(records_repo)
    tries = levers(records_repo)
    (records_repo / "notes.txt").write_text("the user's uncommitted work\n")
    head = git(records_repo, "rev-parse", "HEAD").stdout
    proposal = propose(records_repo, "strings")

    # The user's branch, HEAD and working tree are as they were; no worktree is left.
    assert git(records_repo, "rev-parse", "HEAD").stdout == head
    assert git(records_repo, "branch", "--show-current").stdout.strip() == "main"
    assert (records_repo / "notes.txt").exists()
    assert len(git(records_repo, "worktree", "list").stdout.splitlines()) == 1
    assert not records(records_repo, "proposal")

    record = proposal.record
    assert proposal.branch == "convergent/proposal/" + record["id"][7:19]
    assert git(records_repo, "rev-parse", f"{proposal.branch}~1").stdout == head
    assert record["links"] == [the_gap["id"], *(t["id"] for t in tries)]
    ev = record["evidence"]
    assert ev["levers"] == [t["id"] for t in tries]
    assert ev["manifest"]["experiences"] == [good["id"]]
    assert ev["manifest"]["external"] == "stdlib"
    assert len(ev["manifest"]["holdout_sha256"]) == 64
    assert ev["cycle_config"]["lora_r"] == 8
    # The branch passes every gate (levers-first checks the proposal's links).
    check = CliRunner().invoke(cli, ["check", "--rev-range", f"main..{proposal.branch}",
                                     "--repo", str(records_repo)])
    assert check.exit_code == 0, check.output

    text = proposal.description
    assert f"Proposal `{record['id']}` on branch `{proposal.branch}`" in text
    assert "| 0.3 (reported, not measured) | 0.8 |" in text
    assert "| 1 | route | 0.4 (reported, not measured) | 0.8 | still open |" in text
    assert "| 3 | rag | 0.6 (reported, not measured) | 0.8 | still open |" in text
    assert "- verified, to train on: 1" in text
    assert "- unverified, never trained on: 1" in text
    assert "excluded by the decontamination gate" in text and "hold-out): 0" in text


def test_init_writes_the_github_workflow(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "r"), "--github-workflow"])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "r" / ".github/workflows/convergent.yml").read_text()
    assert "pull_request:" in text and "branches: [main]" in text
    assert "convergent check --rev-range" in text
    assert "convergent on-merge --push origin" in text
    assert "runs-on: [self-hosted, gpu]" in text
    assert "nothing to commit" in git(tmp_path / "r", "status").stdout


# --- one cycle per measured gap state -------------------------------------------------------


def _record(kind: str, n: int, **evidence: object) -> dict[str, object]:
    return {"kind": kind, "id": f"sha256:{kind}{n:02d}", "ts": f"2026-01-01T00:00:{n:02d}Z",
            "evidence": {"type": kind, **evidence}}


def _tries(start: int) -> list[dict[str, object]]:
    return [_record("lever", start + i, lever=lever, gap="strings", measured=0.5)
            for i, lever in enumerate(("route", "verify_best_of_n", "rag"))]


def _proposal(n: int, tries: list[dict[str, object]]) -> dict[str, object]:
    return dict(_record("proposal", n, gap="strings"),
                links=["sha256:gap00", *(t["id"] for t in tries)])


GAP_RECORD = _record("gap", 0, name="strings", target=0.8, measured=0.3)


@pytest.mark.parametrize(("outcome", "reverted", "reusable"), [
    ("promoted", False, False),  # the weights changed: the gap must be measured again
    ("halted", False, True),     # nothing changed: the same tries still hold
    ("promoted", True, True),    # rolled back: the gap is as it was measured
])
def test_tries_back_one_cycle_unless_it_halted_or_was_reverted(
        outcome: str, reverted: bool, reusable: bool) -> None:
    tries = _tries(1)
    first = _proposal(10, tries)
    cycle = _record("cycle", 11, proposal=first["id"], outcome=outcome, adapter="sha256:aa")
    history = [GAP_RECORD, *tries, first, cycle]
    if reverted:
        history.append(_record("revert", 12, **{"from": "sha256:aa", "to": "base"}))
    second = _proposal(20, tries)
    problems = proposal_problems([*history, second], second, reported_ok=True)
    assert (problems == []) is reusable, problems
    assert plan_proposal(history, "strings", reported_ok=True).ok is reusable
    if not reusable:
        assert problems == [
            f"lever {lever!r} for gap 'strings' was tried before cycle cycle11 of proposal "
            "proposal10, which promoted sha256:aa (one cycle per measured gap state: measure "
            "the levers again): try it again" for lever in ("route", "verify_best_of_n", "rag")]
        fresh = _tries(13)
        again = _proposal(20, fresh)
        assert proposal_problems([*history, *fresh, again], again, reported_ok=True) == []


def test_a_proposal_waiting_for_its_cycle_holds_the_tries() -> None:
    tries = _tries(1)
    first = _proposal(10, tries)
    second = _proposal(20, tries)
    assert proposal_problems([GAP_RECORD, *tries, first, second], second,
                             reported_ok=True)[0].endswith(
        "tried before proposal proposal10 for this gap, which has no cycle yet (one cycle "
        "per measured gap state: measure the levers again): try it again")
    # Tries after the first proposal allow a second one, until the first one's cycle
    # changes the weights: then the second is stale, and the cycle refuses it.
    fresh = _tries(11)
    second = _proposal(20, fresh)
    history = [GAP_RECORD, *tries, first, *fresh, second]
    assert proposal_problems(history, second, reported_ok=True) == []
    cycle = _record("cycle", 30, proposal=first["id"], outcome="promoted", adapter="sha256:aa")
    assert "was tried before cycle cycle30 of proposal proposal10" in proposal_problems(
        [*history, cycle], second, reported_ok=True)[0]


def test_propose_again_after_an_unfinished_proposal_is_refused(records_repo: Path,
                                                               fast: None) -> None:
    gap(records_repo)
    levers(records_repo)
    first = propose(records_repo, "strings")
    git(records_repo, "merge", "--no-ff", "-q", "-m", "merge the proposal", first.branch)
    lines = refusal(records_repo)
    assert len(lines) == 3
    assert (f"lever 'route' for gap 'strings' was tried before proposal "
            f"{first.record['id'][7:19]} for this gap, which has no cycle yet") in lines[0]
    assert "next: `convergent lever measure --gap strings --lever route`" in lines[0]
    levers(records_repo)
    assert propose(records_repo, "strings").record["links"] != first.record["links"]
