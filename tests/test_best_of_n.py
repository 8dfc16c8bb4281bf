"""The built-in execution-verify + best-of-N lever, with a deterministic fake sampler whose
candidates are real code run against real tests in the sandbox."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from gapflow import TASKS, gap, git, records, skip_git_hooks

from convergent.best_of_n import BestOfNError, choose_sampler, run_best_of_n
from convergent.cli import cli
from convergent.gaps import GapError
from convergent.hookspecs import hookimpl
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
    record = run_best_of_n(records_repo, "strings", n=3)
    ev = record["evidence"]
    assert ev["lever"] == "verify_best_of_n" and ev["gap"] == "strings"
    assert ev["measured"] == 2 / 3
    assert record["links"] == [the_gap["id"]]
    detail = ev["detail"]
    assert (detail["n"], detail["tasks"], detail["solved"]) == (3, 3, 2)
    assert detail["sampler"] == "fake" and detail["eval"] == "evals/strings.jsonl"
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
                                      "--repo", str(records_repo)])
    assert result.exit_code == 0, result.output
    # With one candidate only the first ones count: shout fails, initials passes.
    assert "pass rate 1/3 = 0.3333 (n=1)" in result.output
    assert records(records_repo, "lever")[0]["evidence"]["detail"]["per_task"][0] == {
        "task_id": TASKS[0]["task_id"], "candidates": 1, "passed": 0, "selected": None}


def test_the_sampler_is_chosen_by_name_or_as_the_only_one(sampler: None) -> None:
    assert choose_sampler(None)[0] == "fake"
    with pytest.raises(BestOfNError, match="no sampler named 'big'; registered: fake"):
        choose_sampler("big")
    pm = load_plugins()
    other = FakeSamplerPlugin("other", fake_sample)
    pm.register(other, name="test-other-sampler")
    try:
        with pytest.raises(BestOfNError, match=r"several samplers .*fake, other.*--sampler"):
            choose_sampler(None)
        assert choose_sampler("other")[0] == "other"
    finally:
        pm.unregister(other)


def test_without_a_sampler_or_a_gap_the_lever_says_what_to_do(records_repo: Path) -> None:
    with pytest.raises(GapError, match="no gap named 'strings'"):
        run_best_of_n(records_repo, "strings")
    with pytest.raises(BestOfNError, match="no sampler is registered: a host registers one "
                                           "through the register_samplers hook"):
        choose_sampler(None)
