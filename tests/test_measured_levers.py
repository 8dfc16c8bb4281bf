"""Gaps and levers measured through registered members, per-task evidence, and the
``levers-first`` gate that re-verifies it: real plugins (pure-Python members whose answers
are real code), real sandbox runs, real git commits and `convergent check`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from evidence import NO_HOOKS
from gapflow import EVAL, TASKS, git, records, skip_git_hooks, write_eval

from convergent.cli import cli
from convergent.config import load_config
from convergent.gaps import GapError, measure_gap, record_gap
from convergent.gates import check_staged
from convergent.hookspecs import hookimpl
from convergent.layout import outcomes_file
from convergent.lever_measures import LeverError, run_best_of_n, run_rag, run_route
from convergent.levers import REPORTED_REFUSED
from convergent.members import MemberError, choose_member, registered_members
from convergent.plugins import load_plugins
from convergent.recorder import Recorder
from convergent.records import record_id, utc_now

RIGHT = {"shout": "def shout(s):\n    return s.upper() + '!'\n",
         "initials": "def initials(name):\n"
                     "    return ''.join(w[0].upper() for w in name.split())\n",
         "rot13": "import codecs\n\ndef rot13(s):\n    return codecs.encode(s, 'rot13')\n"}
WRONG = {"shout": "def shout(s):\n    return s.upper()\n",
         "initials": "def initials(name):\n    return name[:1]\n",
         "rot13": "def rot13(s):\n    return s\n"}


def entry_point(prompt: str) -> str:
    return prompt.rsplit("def ", 1)[1].split("(", 1)[0]


def scripted(right: set[str]) -> Callable[..., list[list[str]]]:
    """A deterministic member: right for the functions in ``right``, wrong elsewhere."""

    def generate(prompts: list[str], n: int, temperature: float, seed: int
                 ) -> list[list[str]]:
        return [[(RIGHT if entry_point(p) in right else WRONG)[entry_point(p)]] * n
                for p in prompts]

    return generate


def reads_context(prompts: list[str], n: int, temperature: float, seed: int
                  ) -> list[list[str]]:
    """A member that only knows what retrieval shows it: a solution of the same function
    in its prompt's context, else a wrong answer."""
    out = []
    for prompt in prompts:
        name = entry_point(prompt)
        context = prompt.rsplit("def ", 1)[0]
        start = context.find(f"def {name}(")
        answer = context[start:].split("\n\n", 1)[0] + "\n" if start >= 0 else WRONG[name]
        out.append([answer] * n)
    return out


def second_right(prompts: list[str], n: int, temperature: float, seed: int
                 ) -> list[list[str]]:
    """Sampling member: the first candidate is wrong, the second right (shout only)."""
    return [[WRONG[entry_point(p)], (RIGHT if entry_point(p) == "shout" else WRONG)[
        entry_point(p)]][:n] + [WRONG[entry_point(p)]] * max(0, n - 2) for p in prompts]


class MembersPlugin:
    """A host's plugin: its own members, one of them named like the built-in base."""

    @hookimpl
    def register_members(self, register: Callable[..., None], config: Any) -> None:
        register("good", scripted({"shout", "initials", "rot13"}))
        register("bad", scripted(set()))
        register("base", scripted({"shout"}))  # replaces the built-in base (no torch here)
        register("rag-reader", reads_context)
        register("sampler", second_right)


@pytest.fixture
def members() -> Iterator[None]:
    pm = load_plugins()
    plugin = MembersPlugin()
    pm.register(plugin, name="test-members")
    yield
    pm.unregister(plugin)


def measured_gap(root: Path) -> dict[str, Any]:
    write_eval(root)
    return measure_gap(root, "strings", 0.8, EVAL, member="bad")


def check(root: Path) -> Any:
    return CliRunner().invoke(cli, ["check", "--all", "--repo", str(root)])


# --- members ---------------------------------------------------------------------------


def test_a_plugins_member_replaces_the_built_in_of_the_same_name(members: None,
                                                                 records_repo: Path) -> None:
    config = load_config(records_repo)
    found = registered_members(config)
    assert {"base", "good", "bad"} <= set(found)
    assert found["base"](["def shout(s):\n"], 1, 0.0, 0) == [[RIGHT["shout"]]]
    with pytest.raises(MemberError, match="no member named 'big'; registered: bad, base"):
        choose_member(config, "big")


def test_the_built_in_base_is_there_without_any_plugin(records_repo: Path) -> None:
    assert choose_member(load_config(records_repo), None)[0] == "base"


def test_a_member_must_answer_n_strings_per_prompt(members: None, records_repo: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        @hookimpl
        def register_members(self, register: Callable[..., None]) -> None:
            register("short", lambda prompts, n, t, s: [["x"]] * len(prompts))

    skip_git_hooks(monkeypatch)
    measured_gap(records_repo)
    pm = load_plugins()
    broken = Broken()
    pm.register(broken, name="test-broken-member")
    try:
        with pytest.raises(MemberError, match="member 'short', prompt 0: expected a list of "
                                              "3 strings"):
            run_best_of_n(records_repo, "strings", n=3, member="short")
    finally:
        pm.unregister(broken)


# --- gaps measured, not typed ------------------------------------------------------------


def test_gap_measure_records_pass_at_1_its_error_and_per_task_outcomes(
        members: None, records_repo: Path) -> None:
    write_eval(records_repo)
    result = CliRunner().invoke(cli, ["gap", "measure", "strings", "--eval", EVAL, "--target",
                                      "0.8", "--member", "base", "--repo", str(records_repo)])
    assert result.exit_code == 0, result.output
    [gap] = records(records_repo, "gap")
    ev = gap["evidence"]
    assert ev["measured"] == 1 / 3 and ev["stderr"] == pytest.approx((2 / 27) ** 0.5, abs=1e-6)
    [entry] = ev["measurements"]
    assert (entry["member"], entry["n"], entry["temperature"], entry["tasks"],
            entry["solved"]) == ("base", 1, 0.0, 3, 1)
    assert [(o["task_id"], o["passed"]) for o in entry["outcomes"]] == [
        ("strings/0", True), ("strings/1", False), ("strings/2", False)]
    path = records_repo / outcomes_file(entry["completions_sha256"])
    lines = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    assert [line["completions"] for line in lines] == [[RIGHT["shout"]], [WRONG["initials"]],
                                                       [WRONG["rot13"]]]
    import hashlib

    assert [o["sha256"] for o in entry["outcomes"]] == [
        hashlib.sha256(line["completions"][0].encode()).hexdigest() for line in lines]
    assert "base: pass@1 1/3 = 0.3333 ± 0.2722" in result.output
    # Committed with the record, through every gate (the hook re-verified it).
    assert "nothing to commit" in git(records_repo, "status").stdout
    assert git(records_repo, "ls-files", str(path.relative_to(records_repo))).stdout.strip()
    assert check(records_repo).exit_code == 0


def test_a_member_that_meets_the_target_leaves_no_gap(members: None, records_repo: Path
                                                     ) -> None:
    write_eval(records_repo)
    with pytest.raises(GapError, match="measured 1.0 already meets the target 0.8"):
        measure_gap(records_repo, "strings", 0.8, EVAL, member="good")


# --- typed numbers -----------------------------------------------------------------------


def test_levers_first_refuses_typed_numbers_by_default(records_repo: Path) -> None:
    write_eval(records_repo)
    with pytest.raises(GapError, match=r"typed number \(reported, not measured\) is refused"):
        record_gap(records_repo, "strings", "pass@1", 0.8, EVAL, 0.3)
    # Written past the library, the gate refuses the typed record at commit time.
    draft = {"kind": "gap", "claim": "gap strings: pass@1 0.3", "confidence": 1.0,
             "source": {"emitter": "someone", "model": "m", "origin": "self"},
             "evidence": {"type": "gap", "name": "strings", "metric": "pass@1",
                          "target": 0.8, "eval": EVAL, "measured": 0.3}}
    with Recorder(records_repo) as recorder:
        recorder.emit(draft)
    git(records_repo, "add", "-A")
    problems = check_staged(records_repo, ["levers-first"])
    assert [p.message for p in problems] == [REPORTED_REFUSED]
    refused = git(records_repo, "commit", "-q", "-m", "typed gap", check=False)
    assert refused.returncode != 0 and "levers-first" in refused.stderr + refused.stdout
    # The repo may choose to accept reported numbers: then the same record passes.
    config = records_repo / ".convergent.toml"
    config.write_text(config.read_text("utf-8").replace("allow_reported = false",
                                                        "allow_reported = true"), "utf-8")
    git(records_repo, "add", ".convergent.toml")
    assert check_staged(records_repo, ["levers-first"]) == []
    git(records_repo, "commit", "-q", "-m", "typed gap, reported numbers accepted")


# --- levers ------------------------------------------------------------------------------


def test_route_picks_the_best_registered_member(members: None, records_repo: Path) -> None:
    gap = measured_gap(records_repo)
    record = run_route(records_repo, "strings", ["bad", "base", "good"])
    ev = record["evidence"]
    assert ev["lever"] == "route" and record["links"] == [gap["id"]]
    assert ev["detail"]["routed_to"] == "good"
    assert ev["detail"]["members"] == {"bad": 0.0, "base": 1 / 3, "good": 1.0}
    assert ev["measured"] == 1.0 and ev["stderr"] == 0.0
    assert [m["member"] for m in ev["measurements"]] == ["bad", "base", "good"]
    assert all(len(m["outcomes"]) == 3 for m in ev["measurements"])
    assert check(records_repo).exit_code == 0


def test_route_defaults_to_every_registered_member(members: None, records_repo: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    skip_git_hooks(monkeypatch)
    measured_gap(records_repo)
    record = run_route(records_repo, "strings")
    assert set(record["evidence"]["detail"]["members"]) == set(
        registered_members(load_config(records_repo)))
    with pytest.raises(LeverError, match="routing needs at least two members"):
        run_route(records_repo, "strings", ["good"])


def test_best_of_n_selects_by_running_the_tests(members: None, records_repo: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    skip_git_hooks(monkeypatch)
    measured_gap(records_repo)
    record = run_best_of_n(records_repo, "strings", n=3, member="sampler")
    [entry] = record["evidence"]["measurements"]
    shout = entry["outcomes"][0]
    assert [c["passed"] for c in shout["candidates"]] == [False, True, False]
    assert shout["passed"] is True and shout["sha256"] == shout["candidates"][1]["sha256"]
    assert record["evidence"]["measured"] == 1 / 3
    assert check(records_repo).exit_code == 0


def test_rag_records_what_it_retrieved(members: None, records_repo: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    skip_git_hooks(monkeypatch)
    from convergent.demo_agent import experience

    with Recorder(records_repo) as recorder:
        solved = recorder.emit(experience("Write shout(s): upper-case s, add one '!'.",
                                          RIGHT["shout"], TASKS[0]["test"], "shout",
                                          "shout solves its task"))
        wrong = recorder.emit(experience("Write initials(name): first letters.",
                                         WRONG["initials"], TASKS[1]["test"], "initials",
                                         "initials solves its task"))
    assert solved["verdict"]["verified"] and not wrong["verdict"]["verified"]
    git(records_repo, "add", "-A")
    git(records_repo, *NO_HOOKS, "commit", "-q", "-m", "experiences")
    measured_gap(records_repo)
    record = run_rag(records_repo, "strings", member="rag-reader", k=2)
    ev = record["evidence"]
    [entry] = ev["measurements"]
    shout, initials, rot13 = entry["outcomes"]
    # Only verified experiences are retrieved; the shout one gave the member its answer.
    assert shout["retrieved"] == [solved["id"]] and shout["passed"] is True
    assert wrong["id"] not in initials["retrieved"] + rot13["retrieved"]
    assert not initials["passed"] and not rot13["passed"]
    assert ev["detail"]["retrieved"] == [solved["id"]] and ev["detail"]["k"] == 2
    assert ev["measured"] == 1 / 3
    assert check(records_repo).exit_code == 0


# --- the gate re-verifies --------------------------------------------------------------------


def forge(root: Path, record: dict[str, Any], edit: Callable[[dict[str, Any]], None]) -> None:
    """Append a copy of ``record`` edited by hand (a new id, as a forger would write it) and
    commit it past the hooks, for CI's `convergent check` to catch."""
    forged = json.loads(json.dumps(record))
    edit(forged)
    forged["ts"] = utc_now()
    forged["id"] = record_id(forged)
    with Recorder(root) as recorder:
        recorder.append_records([forged])
    git(root, "add", "-A")
    git(root, *NO_HOOKS, "commit", "-q", "-m", "a lever try, edited by hand")


def turn_a_fail_into_a_pass(record: dict[str, Any]) -> None:
    ev = record["evidence"]
    entry = ev["measurements"][0]
    failed = next(o for o in entry["outcomes"] if not o["passed"])
    failed["passed"] = True
    entry["solved"] += 1
    entry["pass_rate"] = entry["solved"] / entry["tasks"]
    from convergent.outcomes import pass_at_1_stderr

    entry["stderr"] = pass_at_1_stderr(entry["solved"], entry["tasks"])
    ev["measured"], ev["stderr"] = entry["pass_rate"], entry["stderr"]


def test_a_hand_edited_outcome_is_refused_by_check(members: None, records_repo: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    skip_git_hooks(monkeypatch)
    measured_gap(records_repo)
    lever = run_best_of_n(records_repo, "strings", n=1, member="base")
    assert check(records_repo).exit_code == 0
    forge(records_repo, lever, turn_a_fail_into_a_pass)
    result = check(records_repo)
    assert result.exit_code == 1
    assert "levers-first" in result.output
    assert ("completion 0 passed as recorded, but fails when run again in the sandbox"
            in result.output)


def test_outcomes_must_give_the_recorded_numbers(members: None, records_repo: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    skip_git_hooks(monkeypatch)
    measured_gap(records_repo)
    lever = run_best_of_n(records_repo, "strings", n=1, member="base")

    def inflate(record: dict[str, Any]) -> None:
        record["evidence"]["measurements"][0]["outcomes"][1]["passed"] = True

    forge(records_repo, lever, inflate)
    result = check(records_repo)
    assert result.exit_code == 1
    assert "solved is 1, but the outcomes give 2" in result.output


def test_a_missing_or_changed_completions_file_is_refused(members: None, records_repo: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    skip_git_hooks(monkeypatch)
    measured_gap(records_repo)
    lever = run_best_of_n(records_repo, "strings", n=1, member="bad")
    rel = outcomes_file(lever["evidence"]["measurements"][0]["completions_sha256"])
    path = records_repo / rel
    original = path.read_bytes()
    # A committed completions file never changes nor goes away.
    path.write_bytes(original.replace(b"return s\\n", b"return s[::-1]\\n"))
    git(records_repo, "add", "-A")
    assert [p.message for p in check_staged(records_repo, ["levers-first"])] == [
        "a committed completions file never changes nor goes away"]
    path.write_bytes(original)
    git(records_repo, "add", rel)
    git(records_repo, "rm", "-q", "--cached", rel)
    assert [p.message for p in check_staged(records_repo, ["levers-first"])] == [
        "a committed completions file never changes nor goes away"]
    git(records_repo, "add", rel)
    # A new record naming a file the change does not add, or one that does not hash to
    # its name.
    other = "0" * 64

    def name_other(record: dict[str, Any]) -> None:
        record["evidence"]["measurements"][0]["completions_sha256"] = other

    forge(records_repo, lever, name_other)
    result = check(records_repo)
    assert result.exit_code == 1
    assert f"its completions file {outcomes_file(other)} is missing" in result.output
    git(records_repo, *NO_HOOKS, "reset", "-q", "--hard", "HEAD~1")
    (records_repo / outcomes_file(other)).write_bytes(original)
    forge(records_repo, lever, name_other)
    assert (f"its completions file {outcomes_file(other)} does not hash to its name"
            in check(records_repo).output)


def test_a_measured_lever_needs_its_gaps_evaluation_set(members: None, records_repo: Path,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    skip_git_hooks(monkeypatch)
    measured_gap(records_repo)
    (records_repo / EVAL).write_text((records_repo / EVAL).read_text("utf-8") + "\n", "utf-8")
    with pytest.raises(GapError, match="changed since gap 'strings' was measured"):
        run_best_of_n(records_repo, "strings", n=1, member="bad")


def test_a_plan_relying_on_typed_numbers_needs_allow_reported() -> None:
    from convergent.levers import LEVER_ORDER, plan_levers

    gap = {"id": "gap0", "kind": "gap", "ts": "t0",
           "evidence": {"name": "s", "target": 0.8, "measured": 0.3}}
    tries = [{"id": f"lever{i}", "kind": "lever", "ts": f"t{i + 1}",
              "evidence": {"lever": lever, "gap": "s", "measured": 0.5}}
             for i, lever in enumerate(LEVER_ORDER)]
    assert plan_levers([gap, *tries], "s", reported_ok=True).ok
    missing = plan_levers([gap, *tries], "s", reported_ok=False).missing
    assert len(missing) == 4 and all(m.endswith(REPORTED_REFUSED) for m in missing)
    assert missing[0].startswith("gap 's' (gap0): ")


def test_lever_measure_cli_routes_samples_and_retrieves(members: None, records_repo: Path,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    skip_git_hooks(monkeypatch)
    measured_gap(records_repo)
    runner = CliRunner()
    repo = ["--repo", str(records_repo)]
    routed = runner.invoke(cli, ["lever", "measure", "--gap", "strings", "--lever", "route",
                                 "--member", "bad", "--member", "base", *repo])
    assert routed.exit_code == 0, routed.output
    assert "bad: pass@1 0/3 = 0.0000 ± 0.0000" in routed.output
    assert "route: measured 0.3333 ± 0.2722" in routed.output
    sampled = runner.invoke(cli, ["lever", "measure", "--gap", "strings", "--lever",
                                  "verify_best_of_n", "--member", "sampler", "--n", "2", *repo])
    assert sampled.exit_code == 0, sampled.output
    assert "sampler: pass@1 1/3 = 0.3333 ± 0.2722 (n=2" in sampled.output
    two = runner.invoke(cli, ["lever", "measure", "--gap", "strings", "--lever", "rag",
                              "--member", "bad", "--member", "good", *repo])
    assert two.exit_code == 2 and "--lever rag measures one --member" in two.output
    rag = runner.invoke(cli, ["lever", "measure", "--gap", "strings", "--lever", "rag",
                              "--member", "rag-reader", *repo])
    assert rag.exit_code == 0, rag.output
    assert [r["evidence"]["lever"] for r in records(records_repo, "lever")] == [
        "route", "verify_best_of_n", "rag"]
    assert check(records_repo).exit_code == 0
