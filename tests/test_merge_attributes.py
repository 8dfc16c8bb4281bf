"""A committed ``.gitattributes`` can pick the merge driver of the log's segments: one that
keeps a side (``merge=ours`` with a driver that many clones define) silently drops the
other branch's lines at a merge. The append-only gate checks every parent of a merge, so
the lines are never lost unnoticed."""

from __future__ import annotations

import subprocess
from pathlib import Path

from click.testing import CliRunner
from drafts import note
from evidence import NO_HOOKS, git

from convergent.cli import cli
from convergent.layout import segment_name
from convergent.log import records_dir
from convergent.records import encode, finalize


def append(root: Path, n: int) -> bytes:
    line = encode(finalize(note(n), None))
    with (records_dir(root) / segment_name(1)).open("ab") as fh:
        fh.write(line)
    git(root, "add", "data/convergence/records")
    git(root, *NO_HOOKS, "commit", "-q", "-m", f"note {n}")
    return line


def test_a_merge_driver_that_keeps_one_side_cannot_drop_the_others_lines(
        records_repo: Path) -> None:
    root = records_repo
    git(root, "config", "merge.ours.driver", "true")  # a common local setting
    with (root / ".gitattributes").open("a") as fh:
        fh.write("data/convergence/records/*.jsonl merge=ours\n")
    git(root, "add", ".gitattributes")
    git(root, *NO_HOOKS, "commit", "-q", "-m", "attributes")
    git(root, "checkout", "-q", "-b", "side")
    theirs = append(root, 1)
    git(root, "checkout", "-q", "main")
    append(root, 2)
    # The pre-merge-commit hook runs the gates on the merge.
    merged = subprocess.run(["git", "merge", "--no-ff", "-m", "merge side", "side"], cwd=root,
                            text=True, capture_output=True)
    assert merged.returncode != 0, merged.stdout + merged.stderr
    assert ": append-only: " in merged.stdout + merged.stderr, merged.stdout + merged.stderr
    git(root, "merge", "--abort")
    git(root, *NO_HOOKS, "merge", "--no-ff", "-q", "-m", "merge side", "side")
    segment = (records_dir(root) / segment_name(1)).read_bytes()
    assert theirs not in segment  # the driver dropped the side's line
    result = CliRunner().invoke(cli, ["check", "--all", "--repo", str(root)])
    assert result.exit_code == 1 and ": append-only: " in result.output, result.output
