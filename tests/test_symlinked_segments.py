"""A segment committed as a symlink: Git stores its target's path as the blob, so the gates
would check that path text while every working-tree reader (emit, status, the index)
follows the link to a file nobody checked. Segments are regular files; anything else is
refused by the append-only gate, and the working-tree readers refuse to follow one."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from drafts import note
from evidence import NO_HOOKS, git

from convergent.errors import ConvergentError
from convergent.layout import segment_name
from convergent.log import records_dir, segment_paths
from convergent.records import encode, finalize


def slashy_line() -> str:
    """A valid record line that is also a usable relative path (each part < 255 bytes)."""
    draft = note(1)
    draft["claim"] = "/".join(["gap measured"] * 12)
    draft["evidence"] = {**draft["evidence"], "eval": "a/b"}
    draft["source"] = {"emitter": "tests/a", "model": "none/b", "origin": "operator"}
    line = encode(finalize(draft, None)).decode().rstrip("\n")
    assert max(len(part) for part in line.split("/")) < 255
    return line


@pytest.fixture
def linked(records_repo: Path) -> tuple[Path, Path]:
    """seg-000002.jsonl -> a file (under a path spelled like a record) holding lines no gate
    saw; both staged."""
    folder = records_dir(records_repo)
    line = slashy_line() + "\n"  # a file name may end with a newline: the blob is a segment
    target = folder / line
    target.parent.mkdir(parents=True)
    target.write_bytes(b'{"kind": "anything at all", "password": "hunter2"}\n')
    link = folder / segment_name(2)
    os.symlink(line, link)
    git(records_repo, "add", "-f", "data/convergence/records")
    return records_repo, link


def test_a_symlinked_segment_is_refused_at_commit(linked: tuple[Path, Path]) -> None:
    root, _ = linked
    done = subprocess.run(["git", "commit", "-q", "-m", "a linked segment"], cwd=root,
                          text=True, capture_output=True)
    assert done.returncode != 0, done.stdout + done.stderr
    assert (f"data/convergence/records/{segment_name(2)}:1: append-only: the segment is a "
            "symbolic link") in done.stderr, done.stderr


def test_a_committed_symlinked_segment_is_never_followed(linked: tuple[Path, Path]) -> None:
    from click.testing import CliRunner

    from convergent.cli import cli

    root, link = linked
    git(root, *NO_HOOKS, "commit", "-q", "-m", "a linked segment")
    result = CliRunner().invoke(cli, ["check", "--all", "--repo", str(root)])
    assert result.exit_code == 1 and "append-only: the segment is a symbolic link" in (
        result.output), result.output
    with pytest.raises(ConvergentError, match="is a symbolic link"):
        segment_paths(root)
    status = CliRunner().invoke(cli, ["status", "--repo", str(root)])
    assert status.exit_code == 1 and "is a symbolic link" in status.output, status.output
    assert "hunter2" not in status.output
