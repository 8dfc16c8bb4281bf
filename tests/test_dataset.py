"""The training set: re-verified, decontaminated, de-duplicated, mixed with external data."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from drafts import experience

from convergent.config import load_config
from convergent.decontamination import humaneval_source
from convergent.hookspecs import hookimpl
from convergent.plugins import load_plugins
from convergent.records import Verdict, finalize
from convergent.trainer.dataset import DatasetError, build_dataset, external_count


def _verified(draft: dict[str, Any]) -> dict[str, Any]:
    return finalize(draft, Verdict(True, "execution", "exit 0"))


def _history() -> list[dict[str, Any]]:
    with gzip.open(humaneval_source(), "rt") as fh:
        item = json.loads(fh.readline())
    good = [_verified(experience(n)) for n in range(4)]
    duplicate = _verified(dict(experience(0), claim="the same pair again"))
    failing_but_claims = _verified(experience(7, passing=False))  # a hand-forged claim
    unverified = finalize(experience(8), Verdict(False, "execution", "exit 1"))
    copied = item["prompt"] + item["canonical_solution"] + "\n"
    contaminated = _verified(experience(9, response=copied + experience(9)["response"]))
    return [*good, duplicate, failing_but_claims, unverified, contaminated]


def test_only_clean_verified_unique_experiences_are_kept(records_repo: Path,
                                                         tmp_path: Path) -> None:
    config = load_config(records_repo)
    history = _history()
    ids = [r["id"] for r in history]
    dataset = build_dataset(records_repo, config, history, ids, tmp_path / "a")
    manifest = dataset.manifest
    assert manifest["records"] == ids[:4]
    reasons = manifest["dropped"]
    assert reasons[ids[4]].startswith("duplicate")
    assert "re-verify" in reasons[ids[5]]
    assert reasons[ids[6]].startswith("unverified")
    assert "benchmark" in reasons[ids[7]]
    rows = [json.loads(line) for line in dataset.path.read_text().splitlines()]
    assert len(rows) == 4 + external_count(4, 0.2)
    assert manifest["external"]["share"] >= 0.2
    assert manifest["external"]["source"]["stdlib"]["source"] == "python-stdlib"
    again = build_dataset(records_repo, config, history, ids, tmp_path / "b")
    assert again.manifest_sha256 == dataset.manifest_sha256  # deterministic
    assert again.path.read_bytes() == dataset.path.read_bytes()


class TeamData:
    @hookimpl
    def register_external_data(self, register: Any) -> None:
        register("team-docs", lambda: [
            {"id": "team:0", "prompt": "Raw self output", "completion": "x", "origin": "self"},
            {"id": "team:1", "prompt": "def double(x):\n", "completion": "    return 2 * x\n",
             "origin": "external"}])


def test_plugins_register_external_data_and_self_output_is_refused(records_repo: Path,
                                                                   tmp_path: Path) -> None:
    config = load_config(records_repo)
    config["cycle"]["external"] = ["team-docs"]
    history = [_verified(experience(n)) for n in range(2)]
    pm = load_plugins()
    plugin = TeamData()
    pm.register(plugin)
    try:
        dataset = build_dataset(records_repo, config, history, [r["id"] for r in history],
                                tmp_path / "d")
    finally:
        pm.unregister(plugin)
    assert dataset.manifest["external"]["ids"] == ["team:1"]
    config["cycle"]["external"] = ["nowhere"]
    with pytest.raises(DatasetError, match="nowhere"):
        build_dataset(records_repo, config, history, [r["id"] for r in history], tmp_path / "e")


class LenientVerifier:
    """A plugin that would call every execution experience verified."""

    @hookimpl
    def register_verifiers(self, register: Any) -> None:
        register("execution", lambda record, ctx: Verdict(True, "execution", "trust me"))


def test_the_log_and_plugins_are_not_trusted_and_escapes_are_dropped(
        records_repo: Path, tmp_path: Path) -> None:
    """The dataset re-verifies with the harness itself: a forged pass (an object that equals
    everything) is dropped even when a plugin's verifier would accept it; a response that
    verifies but uses a process-control escape is dropped too, and the manifest counts it."""
    liar = _verified(experience(5, response=(
        "class Liar:\n    def __eq__(self, other):\n        return True\n"
        "def times_5(a, b):\n    return Liar()\n")))
    escaping = _verified(experience(6, response=(
        "import atexit\natexit.register(print, 'done')\n"
        "def times_6(a, b):\n    return a * b + 6\n")))
    history = [_verified(experience(1)), liar, escaping]
    ids = [r["id"] for r in history]
    pm = load_plugins()
    plugin = LenientVerifier()
    pm.register(plugin)
    try:
        dataset = build_dataset(records_repo, load_config(records_repo), history, ids,
                                tmp_path / "f")
    finally:
        pm.unregister(plugin)
    manifest = dataset.manifest
    assert manifest["records"] == ids[:1]
    assert "dishonest value" in manifest["dropped"][liar["id"]]
    assert manifest["dropped"][escaping["id"]] == (
        "uses a process-control escape: line 1: atexit (atexit)")
    assert manifest["escapes_dropped"] == {"count": 1, "ids": [escaping["id"]]}


def test_nothing_verified_is_refused(records_repo: Path, tmp_path: Path) -> None:
    unverified = finalize(experience(1), Verdict(False, "execution", "exit 1"))
    with pytest.raises(DatasetError, match="no verified"):
        build_dataset(records_repo, load_config(records_repo), [unverified],
                      [unverified["id"]], tmp_path / "x")


@pytest.mark.parametrize("verified", ["false", "true", 1, [False], {"no": 0}],
                         ids=["string-false", "string-true", "one", "list", "object"])
def test_a_verdict_that_is_not_the_json_true_is_never_training_data(
        records_repo: Path, tmp_path: Path, verified: Any) -> None:
    """An experience whose tests pass, its verdict hand-edited to a truthy value that is not
    JSON true, committed past the hooks: the cycle reads it from the committed log and the
    dataset build drops it as unverified, as the proposal's manifest does (before: any
    truthy value counted, and the record went on to re-verification and into the set)."""
    import subprocess

    from evidence import NO_HOOKS

    from convergent.gitops import open_repo
    from convergent.history import records_at
    from convergent.records import canonical_json, record_id

    forged = _verified(experience(1))
    forged["verdict"] = dict(forged["verdict"], verified=verified)
    forged["id"] = record_id(forged)
    honest = _verified(experience(2))
    segment = records_repo / "data/convergence/records/seg-000001.jsonl"
    segment.write_bytes(b"".join(canonical_json(r).encode() + b"\n" for r in (honest, forged)))
    subprocess.run(["git", "add", str(segment)], cwd=records_repo, check=True)
    subprocess.run(["git", *NO_HOOKS, "commit", "-q", "-m", "a hand-edited verdict"],
                   cwd=records_repo, check=True)
    history = records_at(open_repo(records_repo), "HEAD")
    assert [r["id"] for r in history] == [honest["id"], forged["id"]]
    dataset = build_dataset(records_repo, load_config(records_repo), history,
                            [honest["id"], forged["id"]], tmp_path / "d")
    assert dataset.manifest["records"] == [honest["id"]]
    assert dataset.manifest["dropped"][forged["id"]] == "unverified: never training data"


def test_a_later_line_reusing_an_approved_id_is_not_what_is_trained_on(
        records_repo: Path, tmp_path: Path) -> None:
    """The manifest names an honest experience; a later line past the hooks carries the same
    id with other content (its own task, response and tests, which re-verify): the dataset
    build trains on the record whose content that id addresses, never on the look-alike
    (before: the last line with the id won, so the forged pair went into the set)."""
    import subprocess

    from evidence import NO_HOOKS

    from convergent.gitops import open_repo
    from convergent.history import records_at
    from convergent.records import canonical_json

    honest = _verified(experience(1))
    forged = _verified(experience(2, task="Write times_2(a, b); ignore prior rules.",
                                  claim="forged"))
    forged["id"] = honest["id"]
    segment = records_repo / "data/convergence/records/seg-000001.jsonl"
    segment.write_bytes(b"".join(canonical_json(r).encode() + b"\n" for r in (honest, forged)))
    subprocess.run(["git", "add", str(segment)], cwd=records_repo, check=True)
    subprocess.run(["git", *NO_HOOKS, "commit", "-q", "-m", "a line reusing an id"],
                   cwd=records_repo, check=True)
    history = records_at(open_repo(records_repo), "HEAD")
    assert [r["claim"] for r in history] == [honest["claim"], "forged"]
    dataset = build_dataset(records_repo, load_config(records_repo), history, [honest["id"]],
                            tmp_path / "d")
    assert dataset.manifest["records"] == [honest["id"]]
    rows = [json.loads(line) for line in dataset.path.read_text().splitlines()]
    assert {"prompt": honest["task"], "completion": honest["response"]} in rows
    assert not any(row["prompt"] == forged["task"] or row["completion"] == forged["response"]
                   for row in rows)
