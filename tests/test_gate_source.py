"""Gate ``source``: a record that claims ``verified: true`` must re-verify."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from drafts import SOURCE, experience

from convergent.config import default_config
from convergent.gates.base import GateContext, NewLine
from convergent.gates.source import check_source
from convergent.records import Verdict, encode, finalize
from convergent.sources import store_source

SEGMENT = "data/convergence/records/seg-000001.jsonl"


def claiming(draft: dict[str, Any], verified: bool) -> dict[str, Any]:
    """A finished record whose verdict says ``verified``, true or not."""
    return finalize(draft, Verdict(verified, draft["evidence"]["type"], "as claimed"))


def context(root: Path, *records: dict[str, Any]) -> GateContext:
    config = default_config()
    config["sandbox"].update(timeout_s=3.0, cpu_s=2)
    lines = [NewLine(SEGMENT, i, encode(r), r) for i, r in enumerate(records, start=1)]
    return GateContext(root=root, config=config, new_lines=lines)


def test_failing_code_claiming_verified_is_refused(tmp_path: Path) -> None:
    good, liar = claiming(experience(1), True), claiming(experience(2, passing=False), True)
    problems = list(check_source(context(tmp_path, good, liar)))
    assert len(problems) == 1
    problem = problems[0]
    assert (problem.path, problem.line, problem.gate) == (SEGMENT, 2, "source")
    assert "execution verifier" in problem.message and "AssertionError" in problem.message
    assert str(problem).startswith(f"{SEGMENT}:2: source: claims verified: true")


def test_truthful_records_pass(tmp_path: Path) -> None:
    records = [claiming(experience(1), True), claiming(experience(2, passing=False), False)]
    assert list(check_source(context(tmp_path, *records))) == []


def test_hand_edited_quote_is_refused(tmp_path: Path) -> None:
    ref = store_source(tmp_path, "Water boils at 100 degrees Celsius at sea level.",
                       registered_by="docs-ingest")
    draft = {"kind": "experience", "claim": "boiling", "task": "q", "response": "100 C",
             "evidence": {"type": "grounding",
                          "citations": [{"source": ref, "quote": "boils at 90 degrees"}]},
             "confidence": 0.9, "source": dict(SOURCE)}
    problems = list(check_source(context(tmp_path, claiming(draft, True))))
    assert [p.gate for p in problems] == ["source"]
    assert "grounding verifier" in problems[0].message


def test_unparsable_lines_are_left_to_the_schema_gate(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    ctx.new_lines.append(NewLine(SEGMENT, 1, b"{not json\n", None))
    assert list(check_source(ctx)) == []
