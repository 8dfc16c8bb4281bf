"""The tripwire's promote/halt rule on known numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from convergent.config import default_config
from convergent.trainer.tripwire import Score, decide, task_case


def score(pass_rate: float, diversity: float, model: str = "sha256:cand") -> Score:
    return Score(model=model, pass_rate=pass_rate, diversity=diversity, passed=0, total=10)


@pytest.mark.parametrize(("cand", "ref", "promote"), [
    ((0.5, 0.40), (0.5, 0.40), True),
    ((0.6, 0.42), (0.5, 0.40), True),
    ((0.4, 0.40), (0.5, 0.40), False),   # pass rate fell, zero tolerance
    ((0.5, 0.30), (0.5, 0.40), False),   # diversity fell beyond 0.05
    ((0.5, 0.37), (0.5, 0.40), True),    # inside the tolerance, first shrink
])
def test_tolerances(cand: tuple[float, float], ref: tuple[float, float], promote: bool) -> None:
    decision = decide(score(*cand), score(*ref, model="base"), [], default_config())
    assert decision.promote is promote
    assert bool(decision.reasons) is not promote


def test_two_consecutive_shrinks_halt_even_inside_the_tolerance() -> None:
    config = default_config()
    decision = decide(score(0.5, 0.38), score(0.5, 0.39, "sha256:v1"), [0.40], config)
    assert not decision.promote
    assert "shrank 2 times in a row" in decision.reasons[0]
    # One shrink after a rise is fine.
    assert decide(score(0.5, 0.38), score(0.5, 0.39, "sha256:v1"), [0.30], config).promote


def test_shrink_streak_can_be_configured_off() -> None:
    config = default_config()
    config["tripwire"]["shrink_streak"] = 0
    assert decide(score(0.5, 0.38), score(0.5, 0.39, "sha256:v1"), [0.40], config).promote


def test_task_case_follows_the_humaneval_convention() -> None:
    task = {"prompt": "def f(x):\n", "entry_point": "f", "test": "def check(c):\n    pass\n"}
    case = task_case(task, "    return x\n")
    assert case.response.startswith("def f(x):\n    return x\n")
    assert case.tests == task["test"] and case.entry_point == "f"  # then check(f) runs


@pytest.mark.train
def test_evaluate_scores_pass_at_1_and_pass_at_k_on_the_tiny_model(records_repo: Path) -> None:
    """The harness really generates and runs tests: a task whose prompt already holds a
    whole solution can pass, one whose test always fails never does; scores are cached."""
    pytest.importorskip("torch")
    from convergent.config import load_config
    from convergent.trainer.bases import resolve_base_model
    from convergent.trainer.tripwire import evaluate

    config = load_config(records_repo)
    config["tripwire"].update(embeddings=False, max_new_tokens=8, pass_at_k=2)
    solved = {"task_id": "t/0", "entry_point": "f",
              "prompt": "def f(x):\n    return x + 1\n\n\ndef _unused():\n",
              "test": "def check(f):\n    assert f(1) == 2\n"}
    unsolvable = {"task_id": "t/1", "entry_point": "g", "prompt": "def g(x):\n",
                  "test": "def check(g):\n    assert False\n"}
    base = resolve_base_model(config)
    score = evaluate(records_repo, config, base, None, "base", [solved, unsolvable])
    assert score.total == 2
    assert "t/1" in score.details["failed"]
    assert 0.0 <= score.details["pass@2"] <= 0.5
    assert evaluate(records_repo, config, base, None, "base", [solved, unsolvable]) == score
