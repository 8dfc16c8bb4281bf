"""One rule from a completion to the program that runs: plain continuations and chat answers."""

from __future__ import annotations

import pytest

from convergent.completions import fenced_answer, fenced_blocks, program

PROMPT = 'from typing import List\n\n\ndef total(xs: List[int]) -> int:\n    """Sum xs."""\n'


@pytest.mark.parametrize(("completion", "expected"), [
    # A base model continues the prompt.
    ("    return sum(xs)\n", f"{PROMPT}    return sum(xs)\n\n"),
    # An instruct model answers with the whole function: the prompt's imports come first.
    ("Sure!\n```python\ndef total(xs):\n    return sum(xs)\n```\nDone.",
     "from typing import List\ndef total(xs):\n    return sum(xs)\n\n"),
    # Several blocks: the one that defines the entry point wins.
    ("```python\nprint('hi')\n```\n```py\ndef total(xs):\n    return 0\n```",
     "from typing import List\ndef total(xs):\n    return 0\n\n"),
    # A block cut off by the token limit still counts.
    ("```python\ndef total(xs):\n    return sum(xs)\n",
     "from typing import List\ndef total(xs):\n    return sum(xs)\n\n"),
    # A block that defines nothing continues the prompt.
    ("```python\n    return sum(xs)\n```", f"{PROMPT}    return sum(xs)\n\n"),
])
def test_program(completion: str, expected: str) -> None:
    assert program(PROMPT, completion, "total") == expected


def test_empty_blocks_are_no_answer() -> None:
    assert fenced_blocks("```python\n```") == []
    assert program(PROMPT, "```python\n```", "total") == f"{PROMPT}```python\n```\n"


@pytest.mark.parametrize(("completion", "expected"), [
    ("    return sum(xs)\n", f"```python\n{PROMPT}    return sum(xs)\n```"),
    ("def total(xs):\n    return sum(xs)\n", "```python\ndef total(xs):\n    return sum(xs)\n```"),
    (FENCED := "```python\ndef total(xs):\n    return 1\n```", FENCED),
])
def test_fenced_answer_round_trips_through_program(completion: str, expected: str) -> None:
    answer = fenced_answer(PROMPT, completion)
    assert answer == expected
    assert "def total(" in program(PROMPT, answer, "total")


@pytest.mark.parametrize(("task", "response", "expected"), [
    (PROMPT, f"{PROMPT}    return sum(xs)\n", "    return sum(xs)\n"),
    ("Write total(xs): the sum of xs.", "def total(xs):\n    return sum(xs)\n",
     "def total(xs):\n    return sum(xs)\n"),
    ("", "def f():\n    pass\n", "def f():\n    pass\n"),
])
def test_an_experience_trains_as_a_continuation_of_its_task(task: str, response: str,
                                                            expected: str) -> None:
    from convergent.completions import continuation

    assert continuation(task, response) == expected
    assert program(task, continuation(task, response)).startswith(task)
