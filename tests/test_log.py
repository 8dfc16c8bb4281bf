"""The append-only log: segments, sealing, durability, torn-line repair, thread safety."""

from __future__ import annotations

import threading
from pathlib import Path

from drafts import note

from convergent.log import Log, iter_raw_lines, segment_paths
from convergent.records import encode, finalize


def _line(n: int) -> bytes:
    return encode(finalize(note(n), None))


def test_append_returns_positions_and_lines_read_back(tmp_path: Path) -> None:
    with Log(tmp_path) as log:
        positions = log.append([_line(0), _line(1)])
        more = log.append([_line(2)])
    assert [p.segment for p in positions + more] == ["seg-000001.jsonl"] * 3
    assert positions[1].offset == len(_line(0)) or positions[1].offset > 0
    lines = [raw for _, _, raw in iter_raw_lines(tmp_path)]
    assert len(lines) == 3 and all(raw.startswith(b"{") for raw in lines)


def test_segments_seal_at_the_cap_and_keep_log_order(tmp_path: Path) -> None:
    lines = [_line(i) for i in range(20)]
    cap = len(lines[0]) * 5 + 10
    with Log(tmp_path, segment_max_bytes=cap) as log:
        for line in lines:
            log.append([line])
    segments = segment_paths(tmp_path)
    assert len(segments) >= 4
    assert all(p.stat().st_size <= cap for p in segments)
    assert [raw + b"\n" for _, _, raw in iter_raw_lines(tmp_path)] == lines


def test_a_second_writer_sees_the_first_writers_new_segment(tmp_path: Path) -> None:
    lines = [_line(i) for i in range(12)]
    cap = len(lines[0]) * 3 + 10
    a, b = Log(tmp_path, segment_max_bytes=cap), Log(tmp_path, segment_max_bytes=cap)
    for i, line in enumerate(lines):
        (a if i % 2 else b).append([line])
    a.close()
    b.close()
    assert [raw + b"\n" for _, _, raw in iter_raw_lines(tmp_path)] == lines


def test_torn_tail_is_repaired_without_losing_acknowledged_lines(tmp_path: Path) -> None:
    with Log(tmp_path) as log:
        log.append([_line(0), _line(1)])
    segment = segment_paths(tmp_path)[0]
    acked = segment.read_bytes()
    torn_line = _line(2)
    with segment.open("ab") as fh:  # a crash mid-write: half a line, never fsynced/acked
        fh.write(torn_line[:40])
    third = _line(3)
    with Log(tmp_path) as log:
        log.append([third])
    assert segment.read_bytes() == acked + third
    torn = list((tmp_path / ".convergent" / "torn").iterdir())
    assert len(torn) == 1 and torn[0].read_bytes() == torn_line[:40]


def test_repair_on_open_when_the_last_line_lacks_its_newline(tmp_path: Path) -> None:
    first = _line(0)
    with Log(tmp_path) as log:
        log.append([first])
    segment = segment_paths(tmp_path)[0]
    with segment.open("ab") as fh:
        fh.write(_line(1)[:-1])  # complete JSON, no newline: the write never finished
    with Log(tmp_path) as log:
        log.repair()
    assert segment.read_bytes() == first


def test_threads_group_commit_without_losing_or_tearing(tmp_path: Path) -> None:
    log = Log(tmp_path)
    lines = [_line(i) for i in range(400)]

    def worker(chunk: list[bytes]) -> None:
        for line in chunk:
            log.append([line])

    threads = [threading.Thread(target=worker, args=(lines[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    got = [raw + b"\n" for _, _, raw in iter_raw_lines(tmp_path)]
    assert sorted(got) == sorted(lines)


def test_append_refuses_partial_lines(tmp_path: Path) -> None:
    import pytest

    with Log(tmp_path) as log, pytest.raises(ValueError):
        log.append([b'{"a":1}'])
