"""The secrets prefilter's plan finds every needle search that finds anything.

The prefilter first asks which needle searches find anything at all in a batch (short
needles one by one, the rare ones as one trie search first), then runs only those. These
tests attack both shortcuts against the plain answer: each search, made by itself.
"""

from __future__ import annotations

import random
import re
import string

from convergent.gates import secrets
from convergent.gates.regex_needles import trie
from convergent.gates.secrets import _default_plan


def test_a_trie_search_finds_a_needle_wherever_one_is() -> None:
    rng = random.Random(5)
    alphabet = "abc_-.:*"
    for _ in range(300):
        needles = {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 5)))
                   for _ in range(rng.randint(1, 12))}
        search = re.compile(trie(needles))
        for _ in range(30):
            text = "".join(rng.choice(alphabet + "\n") for _ in range(rng.randint(0, 40)))
            assert bool(search.search(text)) == any(n in text for n in needles), (needles, text)


def test_the_plan_finds_every_search_that_finds_something() -> None:
    plan = _default_plan()
    assert plan is not None
    assert plan.rare and plan.common  # both shortcuts are in play
    rng = random.Random(9)
    all_needles = sorted({n for search, _ in plan.groups if search is not None
                          for n in secrets._NEEDLES_OF[search]})
    alphabet = string.ascii_lowercase + string.digits + "_-.:/\"' "
    for _ in range(400):
        parts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))]
        parts += rng.sample(all_needles, rng.randint(0, 3))
        rng.shuffle(parts)
        lowered = "\n".join(parts).lower()
        expected = [g for g, (search, _) in enumerate(plan.groups)
                    if search is not None and search.search(lowered)]
        assert sorted(plan.holding(lowered)) == expected
