"""The execution harness: fail closed without isolation, a cache that cannot be poisoned,
a report that cannot be forged, deterministic verdicts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from drafts import experience

from convergent import harness, sandbox
from convergent.harness import ExecutionCase, Harness, Outcome, run_case
from convergent.layout import CONFIG_FILE, LOCAL_DIR
from convergent.sandbox import BWRAP, RLIMITS_ONLY, Isolation, SandboxLimits, SandboxResult

LIMITS = SandboxLimits(timeout_s=5.0, cpu_s=3)
GOOD = ExecutionCase("def add(a, b):\n    return a + b\n",
                     "def check(f):\n    assert f(1, 2) == 3\n", "add")
BWRAP_ISO = Isolation(BWRAP, "test: bwrap")
RLIMITS_ISO = Isolation(RLIMITS_ONLY, "test: bwrap not found on PATH")
needs_bwrap = pytest.mark.skipif(sandbox.isolation().kind != BWRAP,
                                 reason=f"needs bubblewrap: {sandbox.isolation().note}")


class CountingRunner:
    """The real harness run, counting how often a case really ran."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, case: ExecutionCase, limits: SandboxLimits, iso: Isolation) -> Outcome:
        self.calls += 1
        return run_case(case, limits, iso)


def with_isolation(monkeypatch: pytest.MonkeyPatch, iso: Isolation) -> None:
    monkeypatch.setattr(harness, "isolation", lambda: iso)


# --- the cache (moved here from the sandbox with the harness) ------------------------------


@needs_bwrap
def test_cache_runs_a_case_once(tmp_path: Path) -> None:
    runner = CountingRunner()
    cache = Harness(tmp_path / "cache", LIMITS, runner=runner)
    first = cache.verify(GOOD)
    second = cache.verify(GOOD)
    assert runner.calls == 1 and cache.runs == 1 and cache.hits == 1
    assert second == first and second.passed
    # Another process opening the same cache dir gets the stored result too.
    again = Harness(tmp_path / "cache", LIMITS, runner=runner)
    assert again.verify(GOOD) == first
    assert runner.calls == 1
    # Different limits are a different question.
    Harness(tmp_path / "cache", SandboxLimits(timeout_s=4.0), runner=runner).verify(GOOD)
    assert runner.calls == 2


def test_cache_does_not_keep_timeouts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with_isolation(monkeypatch, BWRAP_ISO)
    calls: list[ExecutionCase] = []

    def runner(case: ExecutionCase, limits: SandboxLimits, iso: Isolation) -> Outcome:
        calls.append(case)
        return Outcome(False, "timed out after 5 s (wall clock)", iso.kind, timed_out=True)

    cache = Harness(tmp_path, LIMITS, runner=runner)
    cache.verify(GOOD)
    cache.verify(GOOD)
    assert len(calls) == 2


def test_cache_is_safe_under_concurrent_writers(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    with_isolation(monkeypatch, BWRAP_ISO)

    def runner(case: ExecutionCase, limits: SandboxLimits, iso: Isolation) -> Outcome:
        return Outcome(True, f"tests passed: {case.response}", iso.kind, 1)

    def verify_all(_: Any) -> list[bool]:
        cache = Harness(tmp_path, LIMITS, runner=runner)
        return [cache.verify(ExecutionCase(f"p{i}", "")).passed for i in range(50)]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(verify_all, range(8)))
    assert all(all(r) for r in results)
    entries = list(tmp_path.glob("*/*.json"))
    assert len(entries) == 50
    assert not list(tmp_path.glob("*/.tmp-*"))


@needs_bwrap
def test_corrupt_cache_entry_is_a_miss(tmp_path: Path) -> None:
    runner = CountingRunner()
    cache = Harness(tmp_path, LIMITS, runner=runner)
    cache.verify(GOOD)
    for entry in tmp_path.glob("*/*.json"):
        entry.write_text("{not json")
    assert cache.verify(GOOD).passed
    assert runner.calls == 2


def test_cache_entries_are_bound_to_their_key(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A stored verdict is only ever read back for the very case, limits, isolation and
    harness version it was stored for: copied under another key, it is a miss."""
    with_isolation(monkeypatch, BWRAP_ISO)
    runner_calls: list[str] = []

    def runner(case: ExecutionCase, limits: SandboxLimits, iso: Isolation) -> Outcome:
        runner_calls.append(case.response)
        return Outcome(case.response == "good", "verdict", iso.kind, 1)

    cache = Harness(tmp_path, LIMITS, runner=runner)
    good, bad = ExecutionCase("good", ""), ExecutionCase("bad", "")
    assert cache.verify(good).passed
    good_key, bad_key = cache.key(good, BWRAP_ISO), cache.key(bad, BWRAP_ISO)
    planted = tmp_path / bad_key[:2] / f"{bad_key}.json"
    planted.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(tmp_path / good_key[:2] / f"{good_key}.json", planted)
    assert not cache.verify(bad).passed  # the copy does not name bad's key
    assert runner_calls == ["good", "bad"]
    # The key covers the harness version, the interpreter, the limits and the isolation.
    monkeypatch.setattr(harness, "HARNESS_VERSION", "0" * 16)
    assert cache.key(good, BWRAP_ISO) != good_key
    assert cache.key(good, RLIMITS_ISO) != cache.key(good, BWRAP_ISO)


# --- no isolation: fail closed ---------------------------------------------------------------


def test_without_isolation_nothing_runs_and_nothing_verifies(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with_isolation(monkeypatch, RLIMITS_ISO)
    runner = CountingRunner()
    outcome = Harness(tmp_path, LIMITS, runner=runner).verify(GOOD)
    assert not outcome.passed and runner.calls == 0
    assert outcome.reason.startswith("no isolation: test: bwrap not found on PATH")
    assert "allow_unisolated = true" in outcome.detail()


def test_allowed_unisolated_runs_say_so_and_are_never_cached(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with_isolation(monkeypatch, RLIMITS_ISO)
    runner = CountingRunner()
    cache = Harness(tmp_path, LIMITS, allow_unisolated=True, runner=runner)
    first, second = cache.verify(GOOD), cache.verify(GOOD)
    assert first.passed and second.passed and runner.calls == 2
    assert first.detail().endswith(
        "(sandbox: rlimits-only, not isolated: allowed by [sandbox] allow_unisolated)")
    assert not list(tmp_path.rglob("*.json"))


@pytest.mark.parametrize(("value", "allowed"), [("true", True), ("false", False),
                                                ('"true"', False), ("1", False)])
def test_only_a_real_true_opts_in(value: str, allowed: bool) -> None:
    from convergent.config import parse_config, resolve_config

    config = resolve_config(parse_config(f"[sandbox]\nallow_unisolated = {value}\n"))
    assert harness.allow_unisolated(config) is allowed


def _without_bwrap_env(tmp_path: Path) -> dict[str, str]:
    """A PATH that has git (and the interpreter), but no bubblewrap."""
    bin_dir = tmp_path / "bin-without-bwrap"
    bin_dir.mkdir()
    for tool in ("git",):
        found = shutil.which(tool)
        assert found, f"{tool} is needed"
        (bin_dir / tool).symlink_to(found)
    env = {k: v for k, v in os.environ.items() if k not in ("PATH",)}
    env["PATH"] = str(bin_dir)
    return env


def test_emit_really_without_bubblewrap_is_unverified_unless_opted_in(
        records_repo: Path, tmp_path: Path) -> None:
    """A real `convergent emit` in a process whose PATH has no bwrap: passing code is
    recorded unverified ("no isolation"); with [sandbox] allow_unisolated = true it runs
    under rlimits only, verifies, and its verdict says so; nothing is cached."""
    env = _without_bwrap_env(tmp_path)
    drafts = tmp_path / "drafts.jsonl"

    def emit(draft: dict[str, Any]) -> dict[str, Any]:
        drafts.write_text(json.dumps(draft) + "\n", "utf-8")
        proc = subprocess.run([str(Path(sys.executable).with_name("convergent")), "emit",
                               str(drafts), "--repo", str(records_repo)], env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        rid = proc.stdout.split()[0]
        lines = (records_repo / "data" / "convergence" / "records").glob("*.jsonl")
        for line in "".join(p.read_text("utf-8") for p in lines).splitlines():
            if json.loads(line)["id"] == rid:
                return dict(json.loads(line))
        raise AssertionError(f"{rid} not in the log")

    refused = emit(experience(1))
    assert refused["verdict"]["verified"] is False
    assert refused["verdict"]["detail"].startswith("no isolation: bwrap not found on PATH")
    assert "allow_unisolated = true" in refused["verdict"]["detail"]

    config = records_repo / CONFIG_FILE
    config.write_text(config.read_text("utf-8").replace(
        "allow_unisolated = false", "allow_unisolated = true"), "utf-8")
    allowed = emit(experience(2))
    assert allowed["verdict"]["verified"] is True, allowed["verdict"]
    assert "not isolated: allowed by [sandbox] allow_unisolated" in allowed["verdict"]["detail"]
    assert not list((records_repo / LOCAL_DIR).rglob("verify-cache/*/*.json"))


# --- cache poisoning --------------------------------------------------------------------------


def _poisoner(target_dir: Path, victim_key: str, repo: Path) -> ExecutionCase:
    """A wrong add() that first tries to plant a passing verdict for another (wrong) case
    in the verification cache, and to rewrite a file of the records repo."""
    entry = json.dumps({"key": victim_key, "outcome": {
        "passed": True, "reason": "tests passed", "isolation": "bwrap", "asserts": 1,
        "timed_out": False}})
    response = (
        "import os\n"
        f"path = {str(target_dir / victim_key[:2] / (victim_key + '.json'))!r}\n"
        "try:\n    os.makedirs(os.path.dirname(path), exist_ok=True)\n"
        f"    open(path, 'w').write({entry!r})\n"
        "except OSError:\n    pass\n"
        "try:\n"
        f"    open({str(repo / CONFIG_FILE)!r}, 'a').write('\\n# poisoned\\n')\n"
        "except OSError:\n    pass\n"
        "def add(a, b):\n    return a - b\n")
    return ExecutionCase(response, GOOD.tests, "add")


def _poisoning_attempt(records_repo: Path, iso: Isolation, allow: bool,
                       monkeypatch: pytest.MonkeyPatch) -> tuple[Outcome, Outcome]:
    from convergent.config import load_config

    with_isolation(monkeypatch, iso)
    config = load_config(records_repo)
    cache = Harness.for_repo(records_repo, config)
    cache.allow_unisolated = allow
    victim = ExecutionCase("def add(a, b):\n    return 0\n", GOOD.tests, "add")
    victim_key = cache.key(victim, Isolation(BWRAP, ""))
    before = (records_repo / CONFIG_FILE).read_text("utf-8")
    attack = cache.verify(_poisoner(cache.directory or records_repo, victim_key, records_repo))
    assert (records_repo / CONFIG_FILE).read_text("utf-8") == before
    # Later, on an isolated machine, the victim is judged on its own merits.
    with_isolation(monkeypatch, sandbox.isolation())
    return attack, Harness.for_repo(records_repo, config).verify(victim)


@needs_bwrap
def test_a_response_cannot_poison_the_cache_from_the_sandbox(
        records_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    attack, victim = _poisoning_attempt(records_repo, sandbox.isolation(), False, monkeypatch)
    assert not attack.passed
    assert attack.reason.startswith("refused: the program wrote outside its work dir")
    assert not victim.passed and "AssertionError" in victim.reason


@needs_bwrap
def test_an_unisolated_response_is_refused_before_it_writes_outside(
        records_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Opted in to rlimits-only runs, the program shares our file system: the harness
    refuses its first write outside its work dir, and nothing of that run is cached."""
    iso = Isolation(RLIMITS_ONLY, "test: unisolated")
    attack, victim = _poisoning_attempt(records_repo, iso, True, monkeypatch)
    assert not attack.passed
    assert attack.reason.startswith("refused: the program wrote outside its work dir")
    assert not victim.passed and "AssertionError" in victim.reason


# --- the report ----------------------------------------------------------------------------


def _result(returncode: int = 0) -> SandboxResult:
    return SandboxResult(returncode == 0, returncode, False, "", "", 0.1, BWRAP,
                         "" if returncode == 0 else f"exit status {returncode}")


def _report(key: bytes, body: bytes) -> bytes:
    import hashlib

    return body + b"\n" + hashlib.blake2b(body, key=key, digest_size=32).hexdigest().encode() \
        + b"\n"


@pytest.mark.parametrize("tamper", ["none", "wrong key", "extra line", "two reports",
                                    "truncated"])
def test_only_an_intact_report_under_the_run_key_counts(tamper: str) -> None:
    key, other = os.urandom(32), os.urandom(32)
    good = _report(key, b"1\t3\ttests passed")
    report = {"none": good, "wrong key": _report(other, b"1\t3\ttests passed"),
              "extra line": good + b"1\t3\tforged\n", "two reports": good + good,
              "truncated": good[:-5]}[tamper]
    outcome = harness._judge(_result(), report, key)
    assert outcome.passed is (tamper == "none"), outcome
    if tamper != "none":
        assert "did not write" in outcome.reason


def test_no_report_means_the_program_exited_early() -> None:
    outcome = harness._judge(_result(0), b"", os.urandom(32))
    assert not outcome.passed
    assert outcome.reason == ("exited before the tests finished (exit status 0, no "
                              "completion report)")


@needs_bwrap
def test_verdicts_are_deterministic() -> None:
    """The reason goes into the record id: two runs of a failing case (whose message holds
    an object's address) give the same text."""
    case = ExecutionCase("class P:\n    pass\ndef add(a, b):\n    raise ValueError(repr(P()))\n",
                         GOOD.tests, "add")
    first, second = run_case(case, LIMITS, sandbox.isolation()), run_case(
        case, LIMITS, sandbox.isolation())
    assert first == second and not first.passed
    assert "P object at 0x?" in first.reason


@pytest.mark.parametrize(("case", "reason"), [
    (ExecutionCase("def add(a, b) return a\n", GOOD.tests, "add"),
     "the response does not compile: SyntaxError"),
    (ExecutionCase(GOOD.response, "def check(f)\n", "add"),
     "the tests do not compile: SyntaxError"),
    (ExecutionCase(GOOD.response, GOOD.tests, "add(1); import os"),
     "is not a Python identifier"),
])
def test_a_case_that_cannot_run_says_why_without_running(case: ExecutionCase,
                                                         reason: str) -> None:
    outcome = run_case(case, LIMITS, RLIMITS_ISO)  # no sandbox run happens
    assert not outcome.passed and reason in outcome.reason
