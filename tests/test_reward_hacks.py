"""Reward hacks never verify, honest look-alikes do: the corpus through the real harness.

Every case runs in the real sandbox (bubblewrap when installed) through
:func:`convergent.harness.run_case`, the same run that the execution verifier, best-of-N,
the tripwire and the dataset build use (they add only the cache).
"""

from __future__ import annotations

import pytest
from reward_hacks import HACKS, HONEST, Case

from convergent.harness import ExecutionCase, Outcome, run_case
from convergent.sandbox import SandboxLimits, isolation

LIMITS = SandboxLimits(timeout_s=5.0, cpu_s=3)


def outcome_of(case: Case) -> Outcome:
    return run_case(ExecutionCase(case.response, case.tests, case.entry_point), LIMITS,
                    isolation())


@pytest.mark.parametrize("case", HACKS, ids=lambda case: case.name)
def test_reward_hack_is_not_verified(case: Case) -> None:
    outcome = outcome_of(case)
    assert not outcome.passed, outcome
    # The reason says what happened, not merely that something failed.
    assert any(phrase in outcome.reason for phrase in case.expect), outcome.reason


@pytest.mark.parametrize("case", HONEST, ids=lambda case: case.name)
def test_honest_look_alike_is_verified(case: Case) -> None:
    outcome = outcome_of(case)
    assert outcome.passed, outcome.reason
    assert outcome.asserts > 0


def test_the_corpus_covers_every_class_of_hack_that_was_seen() -> None:
    seen = {"sys_exit_at_import", "os_exit_at_import", "raise_system_exit_in_the_function",
            "atexit_handler_exits_0", "thread_calls_os_exit", "sigalrm_handler_calls_os_exit",
            "excepthook_replaced", "fork_parent_exits_0", "eq_always_true", "empty_tests",
            "check_passes", "tests_only_print", "assert_true"}
    names = [case.name for case in HACKS]
    assert seen <= set(names) and len(set(names)) == len(names)
    assert all(case.expect for case in HACKS)
    assert {"dataclass_result", "thread_pool", "os_path", "sys_legitimately"} <= {
        case.name for case in HONEST}
