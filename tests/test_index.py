"""The SQLite index: build, query, incremental updates, rebuilds, migrations, concurrency."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from drafts import experience, note

from convergent import index
from convergent.index import IndexStats, index_path, query, rebuild_index, update_index
from convergent.layout import RECORDS_DIR, segment_name
from convergent.log import Log, segment_paths
from convergent.records import Verdict, encode, finalize


def make_lines(start: int, count: int, *, verified: bool = True) -> list[bytes]:
    """Encoded experiences ``start..start+count``; each claim holds the word ``quokka``."""
    return [
        encode(finalize(experience(n, claim=f"quokka solves task {n}"),
                        Verdict(verified, "execution", "")))
        for n in range(start, start + count)
    ]


def append(root: Path, lines: list[bytes], **log_options: Any) -> None:
    with Log(root, **log_options) as log:
        log.append(lines)


def db_rows(root: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(index_path(root))
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    return path


def test_build_and_query_by_text_kind_and_verified(root: Path) -> None:
    append(root, make_lines(0, 3) + make_lines(3, 2, verified=False))
    append(root, [encode(finalize(note(n), None)) for n in range(4)])

    stats = update_index(root)

    assert (stats.rebuilt, stats.lines_read, stats.inserted, stats.total) == (True, 9, 9, 9)
    assert len(query(root, text="quokka")) == 5
    assert [r["claim"] for r in query(root, text="quokka task 4")] == ["quokka solves task 4"]
    assert {r["kind"] for r in query(root, kind="gap")} == {"gap"}
    assert len(query(root, kind="gap")) == 4
    unverified = query(root, verified=False)
    assert sorted(r["claim"] for r in unverified) == ["quokka solves task 3",
                                                     "quokka solves task 4"]
    assert len(query(root, text="quokka", kind="experience", verified=True, limit=2)) == 2


def test_query_rows_carry_the_record(root: Path) -> None:
    line = make_lines(7, 1)[0]
    append(root, [line])

    [row] = query(root, text="quokka")

    assert row["verified"] is True and row["verifier"] == "execution"
    assert (row["segment"], row["line"], row["seq"]) == (segment_name(1), 1, 1)
    assert (row["emitter"], row["origin"], row["links"]) == ("tests/agent", "self", [])
    assert row["json"].encode() + b"\n" == line
    assert row["task"].startswith("Write times_7")


def test_newest_first_without_text(root: Path) -> None:
    append(root, make_lines(0, 5))

    claims = [r["claim"] for r in query(root, limit=2)]

    assert claims == ["quokka solves task 4", "quokka solves task 3"]


@pytest.mark.parametrize(("text", "hits"), [
    ('quokka" OR "solves', 0),  # OR is a word to find, not an operator
    ("NOT quokka", 0),
    ("quok*", 0),  # no prefix search
    ("claim:quokka", 0),
    ("NEAR(quokka task)", 0),
    ('"', 0),
    ("(quokka", 2),  # punctuation is not a token: this is the word quokka
    ("^quokka", 2),
])
def test_user_text_is_never_fts_syntax(root: Path, text: str, hits: int) -> None:
    append(root, make_lines(0, 2))

    assert len(query(root, text=text)) == hits


def test_blank_text_means_no_text_filter(root: Path) -> None:
    append(root, make_lines(0, 2))

    assert len(query(root, text="   ")) == 2


def test_incremental_update_reads_only_new_lines(root: Path) -> None:
    append(root, make_lines(0, 10))
    update_index(root)
    new = make_lines(10, 4)
    append(root, new)

    stats = update_index(root)

    assert not stats.rebuilt
    assert (stats.lines_read, stats.bytes_read) == (4, sum(len(x) for x in new))
    assert (stats.inserted, stats.skipped, stats.total) == (4, 0, 14)
    noop = update_index(root)
    assert (noop.lines_read, noop.bytes_read, noop.inserted, noop.total) == (0, 0, 0, 14)


def test_incremental_update_across_new_segments(root: Path) -> None:
    lines = make_lines(0, 30)
    for batch in range(0, 30, 5):  # the log seals a segment between batches
        append(root, lines[batch:batch + 5], segment_max_bytes=4096)
        if batch == 5:
            update_index(root)

    stats = update_index(root)

    assert stats.segments == len(segment_paths(root)) > 2
    assert (stats.rebuilt, stats.lines_read, stats.total) == (False, 20, 30)
    positions = db_rows(root, "SELECT segment, line FROM records ORDER BY seq")
    expected = [(p.name, n) for p in segment_paths(root)
                for n in range(1, len(p.read_bytes().splitlines()) + 1)]
    assert positions == expected


def test_an_incomplete_last_line_waits_for_its_newline(root: Path) -> None:
    append(root, make_lines(0, 2))
    update_index(root)
    line = make_lines(2, 1)[0]
    segment = segment_paths(root)[-1]
    with segment.open("ab") as fh:
        fh.write(line[:50])

    assert update_index(root).lines_read == 0
    with segment.open("ab") as fh:
        fh.write(line[50:])
    stats = update_index(root)

    assert (stats.rebuilt, stats.lines_read, stats.inserted, stats.total) == (False, 1, 1, 3)


def test_lines_that_are_not_records_are_skipped(root: Path) -> None:
    line = make_lines(0, 1)[0]
    folder = root / RECORDS_DIR
    folder.mkdir(parents=True)
    (folder / segment_name(1)).write_bytes(b"not json\n[1, 2]\n" + line + line)

    stats = update_index(root)

    # Two lines are not records; the repeated line is indexed once.
    assert (stats.lines_read, stats.inserted, stats.skipped, stats.total) == (4, 1, 3, 1)


def test_a_rewritten_segment_rebuilds_the_index(root: Path) -> None:
    append(root, make_lines(0, 5))
    update_index(root)
    segment = segment_paths(root)[0]
    # Another branch checked out: same size or larger, different content.
    other = b"".join(make_lines(100, 6))
    segment.write_bytes(other)

    stats = update_index(root)

    assert (stats.rebuilt, stats.total) == (True, 6)
    assert {r["claim"] for r in query(root, text="quokka", limit=50)} == {
        f"quokka solves task {n}" for n in range(100, 106)}


def test_a_change_past_the_first_4_kib_is_seen(root: Path) -> None:
    lines = make_lines(0, 30)
    append(root, lines)
    update_index(root)
    segment = segment_paths(root)[0]
    assert segment.stat().st_size > 2 * index.FINGERPRINT_BYTES
    changed = lines[:-1] + make_lines(50, 1) + make_lines(60, 1)
    segment.write_bytes(b"".join(changed))

    stats = update_index(root)

    assert (stats.rebuilt, stats.total) == (True, 31)


def test_a_removed_segment_rebuilds_the_index(root: Path) -> None:
    for batch in range(0, 30, 5):
        append(root, make_lines(batch, 5), segment_max_bytes=4096)
    update_index(root)
    segment_paths(root)[-1].unlink()

    stats = update_index(root)

    assert stats.rebuilt
    assert stats.total == sum(len(p.read_bytes().splitlines()) for p in segment_paths(root))


def test_a_shrunk_segment_rebuilds_the_index(root: Path) -> None:
    append(root, make_lines(0, 5))
    update_index(root)
    segment = segment_paths(root)[0]
    segment.write_bytes(b"".join(segment.read_bytes().splitlines(keepends=True)[:3]))

    stats = update_index(root)

    assert (stats.rebuilt, stats.total) == (True, 3)


def test_rebuild_index_replaces_the_index(root: Path) -> None:
    append(root, make_lines(0, 5))
    update_index(root)

    stats = rebuild_index(root)

    assert (stats.rebuilt, stats.lines_read, stats.total) == (True, 5, 5)
    assert not index_path(root).with_name("index.db.build").exists()
    assert len(query(root, text="quokka")) == 5
    assert update_index(root).rebuilt is False


def test_a_corrupt_index_is_rebuilt(root: Path) -> None:
    append(root, make_lines(0, 3))
    update_index(root)
    index_path(root).write_bytes(b"this is not a database" * 500)

    stats = update_index(root)

    assert (stats.rebuilt, stats.total) == (True, 3)


def test_an_empty_log_gives_an_empty_index(root: Path) -> None:
    assert update_index(root).total == 0
    assert query(root, text="quokka") == []


def test_migrations_are_applied_once(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    applied: list[str] = []

    def m002_add_note(db: sqlite_utils.Database) -> None:
        applied.append("m002")
        db.table("records").add_column("note", str)

    monkeypatch.setattr(index, "MIGRATIONS", [*index.MIGRATIONS, m002_add_note])
    append(root, make_lines(0, 2))
    update_index(root)
    append(root, make_lines(2, 2))
    update_index(root)
    query(root, text="quokka")

    assert applied == ["m002"]
    names = [name for (name,) in db_rows(root, "SELECT name FROM _migrations ORDER BY name")]
    assert names == ["m001_initial", "m002_add_note"]
    assert "note" in sqlite_utils.Database(index_path(root)).table("records").columns_dict


def _update_in_child(root: str, barrier: Any, results: Any) -> None:
    barrier.wait()
    results.put(update_index(Path(root)))


def _append_in_child(root: str, barrier: Any, results: Any) -> None:
    barrier.wait()
    for n in range(600, 800, 20):
        append(Path(root), make_lines(n, 20))


def run_at_once(root: Path, *, updaters: int, appender: bool) -> list[IndexStats]:
    """Start the processes together (a barrier); the stats of each update_index call."""
    ctx = multiprocessing.get_context("fork")
    targets = [_update_in_child] * updaters + [_append_in_child] * appender
    barrier = ctx.Barrier(len(targets))
    results = ctx.Queue()
    procs = [ctx.Process(target=t, args=(str(root), barrier, results)) for t in targets]
    for proc in procs:
        proc.start()
    stats = [results.get(timeout=120) for _ in range(updaters)]
    for proc in procs:
        proc.join(timeout=120)
        assert proc.exitcode == 0
    return stats


def test_two_processes_updating_while_a_third_appends(root: Path) -> None:
    append(root, make_lines(0, 300))
    update_index(root)
    append(root, make_lines(300, 300))

    stats = run_at_once(root, updaters=2, appender=True)
    final = update_index(root)

    # Every record is inserted by exactly one of the updates: none twice, none lost.
    assert sum(s.inserted for s in stats) + final.inserted == 500
    assert final.total == 800
    assert db_rows(root, "SELECT count(DISTINCT id), count(*) FROM records") == [(800, 800)]
    assert db_rows(root, "PRAGMA integrity_check") == [("ok",)]
    assert db_rows(root, "SELECT count(*) FROM records_fts WHERE records_fts MATCH 'quokka'"
                   ) == [(800,)]


def test_two_processes_building_from_scratch_at_once(root: Path) -> None:
    append(root, make_lines(0, 300))

    stats = run_at_once(root, updaters=2, appender=False)

    assert sorted((s.rebuilt, s.inserted, s.total) for s in stats) == [(False, 0, 300),
                                                                       (True, 300, 300)]
    assert db_rows(root, "PRAGMA integrity_check") == [("ok",)]
