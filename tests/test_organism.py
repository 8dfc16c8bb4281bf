"""The embedded organism: its task sets are frozen and disjoint, its build is reproducible
and fails closed, ``init --base organism`` selects it with its own hold-out, and (slow) the
four properties hold on the real model with the real sandbox, trainer and tripwire."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from convergent import organism_tasks
from convergent.config import default_config, load_config
from convergent.harness import Harness
from convergent.holdout import HoldoutChangedError, frozen_holdout, load_holdout
from convergent.organism_tasks import (
    FAMILIES,
    GAP_FAMILY,
    HOLDOUT_PER_FAMILY,
    data_files,
    organism_splits,
)
from convergent.repo import init_repo
from convergent.sandbox import SandboxLimits
from convergent.trainer.tripwire import task_case

DATA = Path(__file__).parents[1] / "convergent" / "data"
# Changing the organism's hold-out is a reviewed act: this pin moves with it.
HOLDOUT_SHA256 = "002d22f6faebebf2737452f8c8f1cf298ec623c29ba5dbb34282cea4a80ba1c1"


def test_shipped_files_are_the_seeded_generation_and_the_holdout_is_pinned() -> None:
    for name, text in data_files().items():
        assert (DATA / name).read_text("utf-8") == text, f"{name} differs from its generation"
    assert organism_tasks.holdout_sha256() == HOLDOUT_SHA256


def test_sets_are_disjoint_and_shaped() -> None:
    splits = organism_splits()
    sets = {"holdout": splits.holdout, "gap_eval": splits.gap_eval, "pool": splits.pool,
            "pretrain": splits.pretrain}
    for key in ("task_id", "prompt"):
        seen: dict[str, str] = {}
        for name, tasks in sets.items():
            for task in tasks:
                assert task[key] not in seen, f"{task[key]!r} in {seen.get(task[key])} and {name}"
                seen[task[key]] = name
    counts = {f: sum(t["family"] == f for t in splits.holdout) for f in FAMILIES}
    assert counts == dict.fromkeys(FAMILIES, HOLDOUT_PER_FAMILY)
    assert {t["family"] for t in splits.gap_eval + splits.pool} == {GAP_FAMILY}
    gap_share = sum(t["family"] == GAP_FAMILY for t in splits.pretrain) / len(splits.pretrain)
    assert gap_share < 0.1, "the gap must stay under-represented in pretraining"
    assert organism_splits(1).holdout != splits.holdout  # the seed matters


def test_solutions_pass_and_null_answers_fail_in_the_sandbox(tmp_path: Path) -> None:
    harness = Harness(tmp_path / "cache", SandboxLimits.from_config(default_config()))
    splits = organism_splits()
    # Every variant of every sub-family, from each set the loop scores.
    sample = {(t["family"], t["entry_point"].split("_")[0]): t
              for t in splits.holdout + splits.gap_eval}
    for task in sample.values():
        assert harness.verify(task_case(task, task["canonical_solution"])).passed, task
        assert not harness.verify(task_case(task, "    return None\n")).passed, task


def test_init_base_organism_freezes_its_own_holdout(tmp_path: Path) -> None:
    root = init_repo(tmp_path / "records", base="organism", install_hooks=False)
    config = load_config(root)
    assert config["base"]["model"] == "organism"
    assert config["tripwire"]["holdout"] == "organism"
    assert config["tripwire"]["holdout_sha256"] == HOLDOUT_SHA256
    assert len(frozen_holdout(root, config)) == len(organism_splits().holdout)
    # A real base keeps the 90-task default.
    other = load_config(init_repo(tmp_path / "real", install_hooks=False))
    assert other["tripwire"]["holdout"] == "default"
    assert len(load_holdout(None, other)) == 90


def test_a_changed_organism_holdout_stops_the_cycle(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    root = init_repo(tmp_path / "records", base="organism", install_hooks=False)
    config = load_config(root)
    tasks = organism_tasks.read_holdout()
    tasks[3] = {**tasks[3], "test": "def check(candidate):\n    assert True\n"}
    monkeypatch.setattr(organism_tasks, "read_holdout", lambda: tasks)
    from convergent.default_plugins import organism as plugin

    monkeypatch.setattr(plugin, "read_holdout", lambda: tasks)
    with pytest.raises(HoldoutChangedError, match="the hold-out changed"):
        frozen_holdout(root, config)


def test_a_pool_row_that_fails_its_tests_is_refused(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from convergent.trainer import organism_eval

    rows = organism_tasks.read_pool()[:3]
    rows[1] = {**rows[1], "completion": "    return 0\n"}
    monkeypatch.setattr(organism_tasks, "read_pool", lambda: rows)
    with pytest.raises(ValueError, match=rows[1]["task_id"]):
        organism_eval.verified_pool(tmp_path, organism_eval.organism_config())


def test_pretraining_is_bit_reproducible_and_seeded() -> None:
    from convergent.trainer.organism import RECIPE, _weights_sha256, pretrain

    small = copy.deepcopy(RECIPE)
    small["train"]["steps"] = 3

    def weights(recipe: dict[str, object]) -> str:
        return _weights_sha256(pretrain(recipe)[0])

    first = weights(small)
    assert weights(small) == first
    small["seed"] = 1
    assert weights(small) != first


def test_build_refuses_a_directory_that_is_not_the_organism(tmp_path: Path) -> None:
    from convergent.trainer.organism import OrganismError, build_organism

    (tmp_path / "notes.txt").write_text("mine", "utf-8")
    with pytest.raises(OrganismError, match="is not the organism"):
        build_organism(tmp_path)
    assert (tmp_path / "notes.txt").read_text("utf-8") == "mine"


def test_the_cache_name_is_the_recipe_hash(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    from convergent.trainer import organism

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert organism.default_dir() == tmp_path / "convergent" / (
        "organism-" + organism.recipe_sha256()[:16])
    changed = copy.deepcopy(organism.RECIPE)
    changed["train"]["steps"] += 1
    assert organism.recipe_sha256(changed) != organism.recipe_sha256()


@pytest.fixture(scope="session")
def organism_figures(tmp_path_factory: pytest.TempPathFactory) -> object:
    """The organism (built once into the user cache) and its four properties, measured."""
    import os

    from convergent.trainer.organism import ensure_organism
    from convergent.trainer.organism_eval import measure_all, organism_config

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    base = ensure_organism()
    stamp = json.loads((base / "organism.json").read_text("utf-8"))
    assert len(stamp["weights_sha256"]) == 64 and stamp["parameters"] < 1_000_000
    return measure_all(tmp_path_factory.mktemp("organism"), str(base),
                       config=organism_config({"tripwire": {"embeddings": False}}))


@pytest.mark.slow
def test_the_four_properties_hold_beyond_sampling_noise(organism_figures: object) -> None:
    from convergent.trainer.organism_eval import Figures, difference_se

    f = organism_figures
    assert isinstance(f, Figures)
    # (a) the base passes part of its hold-out, not all of it.
    assert 0.2 <= f.base_holdout.p <= 0.8, f.base_holdout
    # (b) sampling plus the tests beat greedy on the gap, by more than twice the noise.
    assert f.gap_best_of_n.p - f.gap_greedy.p > 2 * difference_se(f.gap_best_of_n,
                                                                   f.gap_greedy)
    # (c) the cycle on verified gap experiences lifts the gap, and the tripwire promotes it.
    assert f.cycle_gap.p - f.gap_greedy.p > 2 * difference_se(f.cycle_gap, f.gap_greedy)
    assert f.cycle_decision.promote, f.cycle_decision.reasons
    # (d) the collapse cycle sinks the hold-out and the tripwire halts for that reason.
    assert f.base_holdout.p - f.collapse_holdout.p > 2 * difference_se(f.base_holdout,
                                                                       f.collapse_holdout)
    assert not f.collapse_decision.promote
    assert any(r.startswith("pass rate fell") for r in f.collapse_decision.reasons)


@pytest.mark.slow
def test_a_cycle_on_base_organism_trains_the_cached_organism() -> None:
    from convergent.config import resolve_config
    from convergent.trainer.bases import resolve_base_model
    from convergent.trainer.organism import default_dir, ensure_organism, is_built

    path = ensure_organism()
    assert resolve_base_model(resolve_config({"base": {"model": "organism"}})) == str(path)
    assert path == default_dir() and is_built(path)
