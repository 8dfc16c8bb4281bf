"""The real `pre-commit` tool runs our `.pre-commit-hooks.yaml` in a fresh records repo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from drafts import accept_notes, note

from convergent.recorder import Recorder
from convergent.records import canonical_json, finalize

THIS_REPO = Path(__file__).resolve().parents[1]
SEGMENT = "data/convergence/records/seg-000001.jsonl"


def _pre_commit() -> list[str]:
    exe = Path(sys.executable).with_name("pre-commit")
    if exe.exists():
        return [str(exe)]
    if shutil.which("pre-commit"):
        return ["pre-commit"]
    pytest.skip("pre-commit is not installed (it is in the dev extra)")


@pytest.fixture(scope="module")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


def try_repo(root: Path, home: Path, hook: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PRE_COMMIT_HOME=str(home))
    return subprocess.run([*_pre_commit(), "try-repo", str(THIS_REPO), hook], cwd=root,
                          env=env, capture_output=True, text=True, timeout=900)


def test_pre_commit_blocks_a_bad_commit_and_passes_a_good_one(
        tmp_path: Path, pre_commit_home: Path) -> None:
    from convergent.repo import init_repo

    root = init_repo(tmp_path / "records", install_hooks=False)
    accept_notes(root)
    with Recorder(root, verify=False) as recorder:
        recorder.emit(note(1))
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    good = try_repo(root, pre_commit_home, "convergent-all")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "Passed" in good.stdout
    subprocess.run(["git", "commit", "-qm", "good records"], cwd=root, check=True)

    # A hand-written line claiming a verified pass for code that fails its tests,
    # and an edit of a committed line: both must be refused.
    from drafts import experience

    from convergent.records import Verdict

    forged = finalize(experience(3, passing=False), Verdict(True, "execution", "exit 0"))
    segment = root / SEGMENT
    lines = segment.read_text().splitlines(keepends=True)
    tampered = lines[0].replace("gap 1 measured", "gap 1 edited")
    segment.write_text(tampered + canonical_json(forged) + "\n")
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    bad = try_repo(root, pre_commit_home, "convergent-all")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "Failed" in bad.stdout
    assert f"{SEGMENT}:1: append-only" in bad.stdout
    assert f"{SEGMENT}:2: source" in bad.stdout
