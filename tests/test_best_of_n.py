"""The built-in execution-verify + best-of-N lever, with a deterministic fake sampler whose
candidates are real code run against real tests in the sandbox. The sampler comes through
the older ``register_samplers`` hook, which makes it a member of that name."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from gapflow import TASKS, gap, git, records, skip_git_hooks

from convergent.cli import cli
from convergent.config import load_config
from convergent.gaps import GapError
from convergent.hookspecs import hookimpl
from convergent.lever_measures import LeverError, run_best_of_n
from convergent.members import MemberError, choose_member
from convergent.plugins import load_plugins

# Per task, the candidates the fake model proposes: some pass the task's tests, some fail
# (wrong answer, syntax error, exception). rot13 is never solved.
CANDIDATES = {
    "shout": ["def shout(s):\n    return s.upper()\n",
              "def shout(s):\n    return s.upper() + '!'\n",
              "def shout(s):\n    return f'{s.upper()}!'\n"],
    "initials": ["def initials(name):\n    return ''.join(w[0].upper() for w in name.split())\n",
                 "def initials(name)\n    return name\n",
                 "def initials(name):\n    raise NotImplementedError\n"],
    "rot13": ["def rot13(s):\n    return ''.join(chr((ord(c) - 97 + 13) % 26 + 97) for c in s)\n",
              "def rot13(s):\n    return s\n",
              "import no_such_module\n"],
}


def fake_sample(prompt: str, n: int) -> list[str]:
    name = prompt.split("(", 1)[0].removeprefix("def ")
    return [CANDIDATES[name][i % len(CANDIDATES[name])] for i in range(n)]


class FakeSamplerPlugin:
    def __init__(self, name: str, sample: Callable[[str, int], list[str]]) -> None:
        self.name, self.sample = name, sample

    @hookimpl
    def register_samplers(self, register: Callable[..., None]) -> None:
        register(self.name, self.sample)


@pytest.fixture
def sampler() -> Iterator[None]:
    pm = load_plugins()
    plugin = FakeSamplerPlugin("fake", fake_sample)
    pm.register(plugin, name="test-fake-sampler")
    yield
    pm.unregister(plugin)


def test_best_of_n_records_the_exact_pass_rate(records_repo: Path, sampler: None) -> None:
    the_gap = gap(records_repo)
    record = run_best_of_n(records_repo, "strings", n=3, member="fake")
    ev = record["evidence"]
    assert ev["lever"] == "verify_best_of_n" and ev["gap"] == "strings"
    assert ev["measured"] == 2 / 3
    assert record["links"] == [the_gap["id"]]
    detail = ev["detail"]
    assert (detail["n"], detail["tasks"], detail["solved"]) == (3, 3, 2)
    assert detail["member"] == "fake" and detail["eval"] == "evals/strings.jsonl"
    assert [(t["task_id"], t["candidates"], t["passed"], t["selected"])
            for t in detail["per_task"]] == [("strings/0", 3, 2, 1), ("strings/1", 3, 1, 0),
                                            ("strings/2", 3, 0, None)]
    assert records(records_repo, "lever") == [record]
    assert "nothing to commit" in git(records_repo, "status").stdout  # committed, gates passed


def test_n_bounds_the_tries_and_the_cli_prints_the_numbers(records_repo: Path, sampler: None,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    skip_git_hooks(monkeypatch)
    gap(records_repo)
    result = CliRunner().invoke(cli, ["lever", "best-of-n", "--gap", "strings", "--n", "1",
                                      "--sampler", "fake", "--repo", str(records_repo)])
    assert result.exit_code == 0, result.output
    # With one candidate only the first ones count: shout fails, initials passes.
    assert "pass rate 1/3 = 0.3333 (n=1)" in result.output
    assert records(records_repo, "lever")[0]["evidence"]["detail"]["per_task"][0] == {
        "task_id": TASKS[0]["task_id"], "candidates": 1, "passed": 0, "selected": None}


def test_the_member_is_chosen_by_name_or_is_the_base(records_repo: Path, sampler: None
                                                      ) -> None:
    config = load_config(records_repo)
    assert choose_member(config, None)[0] == "base"
    assert choose_member(config, "fake")[0] == "fake"
    with pytest.raises(MemberError, match="no member named 'big'; registered: base, fake"):
        choose_member(config, "big")
    pm = load_plugins()
    other = FakeSamplerPlugin("other", fake_sample)
    pm.register(other, name="test-other-sampler")
    try:
        assert choose_member(config, "other")[0] == "other"
    finally:
        pm.unregister(other)


def test_without_a_gap_or_a_member_the_lever_says_what_to_do(records_repo: Path) -> None:
    with pytest.raises(GapError, match="no gap named 'strings'"):
        run_best_of_n(records_repo, "strings")
    gap(records_repo)
    with pytest.raises(MemberError, match="no member named 'fake'; registered: base "
                                          r"\(a host registers its models through the "
                                          r"register_members hook\)"):
        run_best_of_n(records_repo, "strings", member="fake")
    with pytest.raises(LeverError, match="n must be at least 1, got 0"):
        run_best_of_n(records_repo, "strings", n=0)
