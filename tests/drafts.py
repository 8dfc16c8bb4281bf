"""Draft records for tests: real code with real tests."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

SOURCE = {"emitter": "tests/agent", "model": "tiny", "origin": "self"}


def experience(n: int = 0, *, passing: bool = True, **extra: Any) -> dict[str, Any]:
    """An execution experience: ``times_n`` that passes (or fails) its tests.

    Not ``add(a, b)``: ``a + b`` is HumanEval/53's solution, which the decontamination
    gate's functional stage refuses. ``a * b + n`` solves no benchmark or hold-out item,
    and its text resembles none (most ``n`` stop at the prefilter).
    """
    body = f"    return a * b + {n}\n" if passing else f"    return a * b - {n + 1}\n"
    draft: dict[str, Any] = {
        "kind": "experience",
        "claim": f"times_{n} returns a times b, plus {n}",
        "task": f"Write times_{n}(a, b) returning a * b + {n}.",
        "response": f"def times_{n}(a, b):\n{body}",
        "evidence": {"type": "execution", "language": "python",
                     "tests": f"def check(f):\n    assert f(1, 2) == {2 + n}\n"
                              f"    assert f(-1, 1) == {n - 1}\n",
                     "entry_point": f"times_{n}"},
        "confidence": 0.9,
        "source": dict(SOURCE),
    }
    draft.update(extra)
    return draft


def note(n: int = 0) -> dict[str, Any]:
    """A record that needs no verification (a gap measurement), for log-only tests."""
    return {"kind": "gap", "claim": f"gap {n} measured",
            "evidence": {"type": "gap", "name": f"gap-{n}", "metric": "pass@1",
                         "target": 0.8, "measured": 0.5, "eval": "internal/eval"},
            "confidence": 1.0, "source": {"emitter": "tests", "model": "none",
                                          "origin": "operator"}}


def accept_notes(root: Path) -> None:
    """A note is a gap record with a typed value: commit ``[levers] allow_reported = true``
    so that the gates accept notes in a log-only test (measured gaps are tested in
    test_measured_levers)."""
    path = root / ".convergent.toml"
    path.write_text(path.read_text("utf-8").replace("allow_reported = false",
                                                    "allow_reported = true"), "utf-8")
    subprocess.run(["git", "commit", "-q", "-m", "config: accept reported numbers (notes)",
                    "--", ".convergent.toml"], cwd=root, check=True, capture_output=True)
