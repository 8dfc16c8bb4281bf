"""The host API: Recorder.emit, the emit hook, batched commits, many processes, SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import git
from drafts import accept_notes, experience, note

from convergent.hookspecs import hookimpl
from convergent.integrity import verify_log
from convergent.log import iter_raw_lines
from convergent.plugins import load_plugins
from convergent.recorder import Recorder

TESTS_DIR = Path(__file__).parent


def _ids(root: Path) -> list[str]:
    return [json.loads(raw)["id"] for _, _, raw in iter_raw_lines(root)]


def test_emit_verifies_experiences_and_is_durable(records_repo: Path) -> None:
    with Recorder(records_repo) as recorder:
        good = recorder.emit(experience(1))
        bad = recorder.emit(experience(2, passing=False))
    assert good["verdict"]["verified"] is True
    assert bad["verdict"]["verified"] is False
    assert _ids(records_repo) == [good["id"], bad["id"]]


def test_emit_through_the_pluggy_hook_notifies_observers(records_repo: Path) -> None:
    seen: list[str] = []

    class Observer:
        @hookimpl
        def record_appended(self, record: dict, repo: str) -> None:
            seen.append(record["id"])

    pm = load_plugins()
    observer = Observer()
    pm.register(observer)
    try:
        record = pm.hook.convergent_emit(draft=note(7), repo=str(records_repo))
    finally:
        pm.unregister(observer)
    assert seen == [record["id"]]
    assert _ids(records_repo) == [record["id"]]


def test_commit_every_n_records_batches_commits(records_repo: Path) -> None:
    accept_notes(records_repo)
    repo = git.Repo(records_repo)
    before = len(list(repo.iter_commits()))
    with Recorder(records_repo, verify=False, commit_every=10) as recorder:
        for i in range(25):
            recorder.emit(note(i))
        assert len(list(repo.iter_commits())) == before + 2  # at 10 and 20, not per record
        assert recorder.commit() is not None  # the remaining 5
        assert recorder.commit() is None  # nothing left
    assert len(list(repo.iter_commits())) == before + 3
    assert "5 appended lines" in repo.head.commit.message


def test_commit_every_t_seconds(records_repo: Path) -> None:
    accept_notes(records_repo)
    repo = git.Repo(records_repo)
    before = len(list(repo.iter_commits()))
    with Recorder(records_repo, verify=False, commit_seconds=0.2) as recorder:
        recorder.emit(note(1))
        recorder.emit(note(2))
        deadline = time.monotonic() + 10
        while len(list(repo.iter_commits())) == before and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(list(repo.iter_commits())) == before + 1


WRITER = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from drafts import note
    from convergent.recorder import Recorder
    root, worker, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with Recorder(root, verify=False) as recorder:
        for i in range(count):
            record = recorder.emit(note(worker * 1_000_000 + i))
            if worker < 0:  # the SIGKILL test: acknowledge each durable record
                print(record["id"], flush=True)
""")


def _writer(root: Path, worker: int, count: int) -> subprocess.Popen[str]:
    script = WRITER.format(tests=str(TESTS_DIR))
    return subprocess.Popen([sys.executable, "-c", script, str(root), str(worker), str(count)],
                            stdout=subprocess.PIPE, text=True)


def test_eight_processes_append_5000_records_each(records_repo: Path) -> None:
    procs = [_writer(records_repo, w, 5000) for w in range(8)]
    for proc in procs:
        assert proc.wait(timeout=600) == 0
    ids = _ids(records_repo)
    assert len(ids) == 40_000
    assert len(set(ids)) == 40_000
    report = verify_log(records_repo)
    assert report.ok, report.problems[:5]
    assert report.lines == 40_000


def test_sigkill_mid_stream_loses_no_acknowledged_record(records_repo: Path) -> None:
    proc = _writer(records_repo, -1, 1_000_000)
    assert proc.stdout is not None
    acked: list[str] = []
    while len(acked) < 300:
        acked.append(proc.stdout.readline().strip())
    os.kill(proc.pid, signal.SIGKILL)
    acked.extend(line.strip() for line in proc.stdout.read().splitlines() if line.strip())
    proc.wait()
    # The next writer repairs a torn tail, if the kill left one, before anything else.
    with Recorder(records_repo, verify=False):
        pass
    on_disk = set(_ids(records_repo))
    assert set(acked) <= on_disk
    assert verify_log(records_repo).ok
