"""The scripted host agent of ``convergent demo``: real code, real tests, a pluggy plugin.

It stands in for an agent framework: it emits experiences through the
``convergent_emit`` hook and registers two members through ``register_members`` ("agent"
its own model, "router" a second model a router could send work to). Both answer from a
script, and both use a verified solution of the same function when retrieval put one in
their prompt (RAG). Every completion is real Python that the sandbox runs against real
tests.
"""

from __future__ import annotations

from typing import Any

from convergent.hookspecs import hookimpl

SOURCE = {"emitter": "demo/scripted-agent", "model": "scripted-v1", "origin": "self"}

# The gap's evaluation set: string utilities the agent is weak at.
EVAL_TASKS: list[dict[str, str]] = [
    {"task_id": "strings/shout", "entry_point": "shout",
     "prompt": 'def shout(s):\n    """Upper-case s and end it with one "!"."""\n',
     "test": "def check(f):\n    assert f('hi') == 'HI!'\n    assert f('') == '!'\n"},
    {"task_id": "strings/initials", "entry_point": "initials",
     "prompt": 'def initials(name):\n    """First letter of each word of name, upper-cased."""\n',
     "test": "def check(f):\n    assert f('ada love lace') == 'ALL'\n    assert f('x') == 'X'\n"},
    {"task_id": "strings/count_vowels", "entry_point": "count_vowels",
     "prompt": 'def count_vowels(s):\n    """How many of the letters of s are vowels (aeiou)."""\n',
     "test": "def check(f):\n    assert f('Banana') == 3\n    assert f('xyz') == 0\n"
             "    assert f('AbE') == 2\n"},
    {"task_id": "strings/dedupe", "entry_point": "dedupe",
     "prompt": 'def dedupe(items):\n    """items without repeats, first ones kept in order."""\n',
     "test": "def check(f):\n    assert f([3, 1, 3, 2, 1]) == [3, 1, 2]\n    assert f([]) == []\n"},
    {"task_id": "strings/snake", "entry_point": "snake",
     "prompt": 'def snake(name):\n    """CamelCase name in snake_case."""\n',
     "test": "def check(f):\n    assert f('HelloWorld') == 'hello_world'\n"
             "    assert f('A') == 'a'\n"},
]

RIGHT = {
    "shout": "def shout(s):\n    return s.upper() + '!'\n",
    "initials": "def initials(name):\n    return ''.join(w[0].upper() for w in name.split())\n",
    "count_vowels": "def count_vowels(s):\n    return sum(1 for c in s.lower() if c in 'aeiou')\n",
    "dedupe": "def dedupe(items):\n    seen = set()\n    out = []\n    for x in items:\n"
              "        if x not in seen:\n            seen.add(x)\n            out.append(x)\n"
              "    return out\n",
    "snake": "def snake(name):\n    out = ''\n    for i, c in enumerate(name):\n"
             "        if c.isupper() and i:\n            out += '_'\n        out += c.lower()\n"
             "    return out\n",
}
WRONG = {
    "shout": "def shout(s):\n    return s.upper()\n",
    "initials": "def initials(name):\n    return name[:1].upper()\n",
    "count_vowels": "def count_vowels(s):\n    return sum(1 for c in s if c in 'aeiou')\n",
    "dedupe": "def dedupe(items):\n    return sorted(set(items))\n",
    "snake": "def snake(name):\n    return name.lower()\n",
}
# Which attempt of each model is right (None: never): a weak agent, a slightly better router.
AGENT_RIGHT_AT = {"shout": 0, "initials": 2, "count_vowels": 3, "dedupe": None, "snake": None}
ROUTER_RIGHT_AT = {"shout": 0, "initials": 0, "count_vowels": 2, "dedupe": None,
                   "snake": None}


def _entry_point(prompt: str) -> str:
    """The function the task asks for: the last one the prompt opens (after any context)."""
    return prompt.rsplit("def ", 1)[1].split("(", 1)[0]


def _retrieved(prompt: str, name: str) -> str | None:
    """A solution of ``name`` given as context before the task (by retrieval), if any."""
    context = prompt.rsplit("def ", 1)[0]
    start = context.find(f"def {name}(")
    if start < 0:
        return None
    return context[start:].split("\n\n", 1)[0] + "\n"


def _candidates(prompt: str, n: int, right_at: dict[str, int | None]) -> list[str]:
    name = _entry_point(prompt)
    shown = _retrieved(prompt, name)
    if shown is not None:
        return [shown] * n
    if name not in RIGHT:  # a task this scripted host has no answer for
        return ["    return None\n"] * n
    return [RIGHT[name] if right_at.get(name) == i else WRONG[name] for i in range(n)]


def _member(right_at: dict[str, int | None]) -> Any:
    def generate(prompts: list[str], n: int, temperature: float, seed: int
                 ) -> list[list[str]]:
        return [_candidates(prompt, n, right_at) for prompt in prompts]

    return generate


class ScriptedAgent:
    """The demo's host: members for the levers, drafts for the log."""

    @hookimpl
    def register_members(self, register: Any) -> None:
        register("agent", _member(AGENT_RIGHT_AT))
        register("router", _member(ROUTER_RIGHT_AT))


def experience(task: str, response: str, tests: str, entry_point: str,
               claim: str) -> dict[str, Any]:
    return {"kind": "experience", "claim": claim, "task": task, "response": response,
            "evidence": {"type": "execution", "language": "python", "tests": tests,
                         "entry_point": entry_point},
            "confidence": 0.8, "source": dict(SOURCE)}


# What the agent did today: solved tasks (verified by their tests), one failure.
SOLVED: list[tuple[str, str, str, str]] = [
    ("shout", "Write shout(s): s upper-cased with one trailing '!'.", RIGHT["shout"],
     "def check(f):\n    assert f('go') == 'GO!'\n"),
    ("initials", "Write initials(name): the first letter of each word, upper-cased.",
     RIGHT["initials"], "def check(f):\n    assert f('grace brewster hopper') == 'GBH'\n"),
    ("count_vowels", "Write count_vowels(s) counting the vowels of s, any case.",
     RIGHT["count_vowels"], "def check(f):\n    assert f('AEIOU') == 5\n"),
    ("reverse_words", "Write reverse_words(s): the words of s in reverse order.",
     "def reverse_words(s):\n    return ' '.join(reversed(s.split()))\n",
     "def check(f):\n    assert f('a b c') == 'c b a'\n"),
    # Not is_palindrome: that is HumanEval/48, which the decontamination gate refuses.
    ("is_anagram", "Write is_anagram(a, b): the letters of a, rearranged, spell b.",
     "def is_anagram(a, b):\n    return sorted(a) == sorted(b)\n",
     "def check(f):\n    assert f('listen', 'silent')\n    assert not f('abc', 'abd')\n"),
    ("title_case", "Write title_case(s): every word capitalized.",
     "def title_case(s):\n    return ' '.join(w[:1].upper() + w[1:] for w in s.split())\n",
     "def check(f):\n    assert f('the art of code') == 'The Art Of Code'\n"),
    ("strip_digits", "Write strip_digits(s): s without its digits.",
     "def strip_digits(s):\n    return ''.join(c for c in s if not c.isdigit())\n",
     "def check(f):\n    assert f('r2d2') == 'rd'\n"),
    ("char_histogram", "Write char_histogram(s): a dict of each character's count.",
     "def char_histogram(s):\n    out = {}\n    for c in s:\n        out[c] = out.get(c, 0) + 1\n"
     "    return out\n",
     "def check(f):\n    assert f('aab') == {'a': 2, 'b': 1}\n"),
]
FAILED = ("collapse_spaces", "Write collapse_spaces(s): runs of spaces become one space.",
          "def collapse_spaces(s):\n    return s.replace('  ', ' ')\n",
          "def check(f):\n    assert f('a    b') == 'a b'\n")
SECRET = ("fetch_report", "Write fetch_report() returning the report URL with credentials.",
          "def fetch_report():\n    key = 'AKIAIOSFODNN7EXAMPLE'\n"
          "    return 'https://reports.example.com/?k=' + key\n",
          "def check(f):\n    assert f().startswith('https://')\n")
