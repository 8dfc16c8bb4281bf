"""The built-in member ``base``: the configured checkpoint (the tiny model here), generated
in a child process, deterministic at temperature 0 and seeded above it; torch never loads
in the process that asks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

ASK = """
import json, sys
from pathlib import Path
from convergent.config import load_config
from convergent.members import choose_member, complete

name, generate = choose_member(load_config(Path(sys.argv[1])), None)
prompts = ["def add(a, b):\\n", "def shout(s):\\n"]
print(json.dumps({"name": name,
                  "greedy": complete(name, generate, prompts, 2, 0.0, 0),
                  "sampled": [complete(name, generate, prompts, 2, 1.0, 7) for _ in range(2)],
                  "torch": "torch" in sys.modules}))
"""


@pytest.mark.train
def test_the_base_member_is_the_configured_model_seeded_and_deterministic(
        records_repo: Path) -> None:
    assert 'model = "tiny"' in (records_repo / ".convergent.toml").read_text()
    done = subprocess.run([sys.executable, "-c", ASK, str(records_repo)], capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["name"] == "base" and out["torch"] is False
    greedy = out["greedy"]
    assert len(greedy) == 2 and all(len(c) == 2 and c[0] == c[1] for c in greedy)
    assert all(isinstance(c[0], str) and c[0] for c in greedy)
    first, again = out["sampled"]
    assert first == again  # the same seed, the same samples
    assert any(pair[0] != pair[1] for pair in first)  # sampled, not copies of one answer
