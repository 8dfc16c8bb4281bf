"""The SQLite index of the log: ``<root>/.convergent/index.db``, queryable memory.

The index is derived from the log and never authoritative: it can be deleted and
rebuilt at any time. :func:`update_index` is incremental. For each segment it
remembers how many bytes and lines it indexed, plus the sha256 of the first and
of the last 4 KiB of that indexed prefix. Segments only grow, so the next update
seeks past the indexed prefix and reads only the new complete lines. A segment
that shrank, vanished or whose remembered prefix no longer matches means the
history was rewritten (another branch checked out, a reset): the index is then
rebuilt from scratch.

A build from scratch (the first, a rebuild, or after a corrupt index) writes a new
file beside the old one and swaps it in; an incremental update is one transaction
in WAL mode. Writers hold ``flock`` of ``.convergent/index.lock`` exclusively, so
two processes updating at once neither corrupt the index nor insert a record twice
(``INSERT OR IGNORE`` on the id backs that up); :func:`query` holds it shared while
it reads, so a swap never pulls the file from under an open connection.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from convergent.errors import RecordError
from convergent.layout import local_dir
from convergent.log import segment_paths
from convergent.records import decode_line

INDEX_FILE = "index.db"
LOCK_FILE = "index.lock"
# How much of a segment's indexed prefix is fingerprinted at each end.
FINGERPRINT_BYTES = 4096
# Bounds memory while reading a segment; segments are capped at 32 MiB by default.
READ_CHUNK_BYTES = 8 * 1024 * 1024
# 256 MiB page cache: a bulk build keeps the id B-tree in memory instead of re-reading it.
BULK_CACHE_KIB = 256 * 1024
UPDATE_CACHE_KIB = 64 * 1024
FTS5_DEFAULT_AUTOMERGE = 4
FTS5_DEFAULT_CRISISMERGE = 16
UNREADABLE_NAMED = 100

RECORD_COLUMNS = (
    "id", "seq", "segment", "line", "kind", "ts", "claim", "task", "response",
    "confidence", "verified", "verifier", "emitter", "model", "origin", "links", "json",
)

# Secondary indexes by the name sqlite-utils gives them; a bulk build makes them last.
SECONDARY_INDEXES = {"idx_records_kind": "kind", "idx_records_verified": "verified"}

MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = []
migration = MIGRATIONS.append


@migration
def m001_initial(db: sqlite_utils.Database) -> None:
    db.table("records").create(
        {
            "id": str, "seq": int, "segment": str, "line": int, "kind": str, "ts": str,
            "claim": str, "task": str, "response": str, "confidence": float,
            "verified": int, "verifier": str, "emitter": str, "model": str, "origin": str,
            "links": str, "json": str,
        },
        pk="id",
        column_order=list(RECORD_COLUMNS),
    )
    for column in SECONDARY_INDEXES.values():
        db.table("records").create_index([column])
    # External content: the text lives once, in `records`; the FTS table holds only the
    # inverted index. Contentless built as fast and as small (measured on 230k records)
    # but could not serve snippet() or highlight(). Filled per chunk by INSERT ... SELECT,
    # not by triggers.
    db.table("records").enable_fts(["claim", "task", "response"], fts_version="FTS5")
    db.table("segments").create(
        {"name": str, "bytes": int, "lines": int, "head_sha256": str, "tail_sha256": str},
        pk="name",
    )


@dataclass(frozen=True)
class IndexStats:
    """What one :func:`update_index` call did."""

    rebuilt: bool  # built from scratch: no index yet, a rewritten history, or forced
    segments: int  # segments in the log
    bytes_read: int  # bytes read from the log by this call
    lines_read: int  # complete lines read by this call
    inserted: int  # records added to the index
    skipped: int  # lines read but not indexed: not a record, or an id already indexed
    total: int  # records in the index afterwards
    seconds: float
    # The first UNREADABLE_NAMED lines read that are not records, named
    # ``segment:line: message``; they are counted in ``skipped``.
    unreadable: tuple[str, ...] = ()


@dataclass
class _Progress:
    """One segment's row in the `segments` table."""

    name: str
    bytes: int = 0
    lines: int = 0
    head_sha256: str = ""
    tail_sha256: str = ""


def index_path(root: Path) -> Path:
    return local_dir(Path(root)) / INDEX_FILE


def update_index(root: Path) -> IndexStats:
    """Index what was appended to the log since the last update (everything, when the
    history was rewritten or there is no index yet); returns what it did."""
    return _update(Path(root), force_rebuild=False)


def rebuild_index(root: Path) -> IndexStats:
    """Build the index again from the whole log, replacing the old one."""
    return _update(Path(root), force_rebuild=True)


def query(
    root: Path,
    text: str | None = None,
    kind: str | None = None,
    verified: bool | None = None,
    limit: int = 20,
    any_word: bool = False,
) -> list[dict[str, Any]]:
    """Records matching every given filter, best full-text match first (newest first
    without ``text``). Updates the index first.

    ``text`` is plain words, all required (``any_word``: any one of them, ranked by BM25,
    as retrieval asks); FTS syntax in it is not interpreted.
    """
    root = Path(root)
    update_index(root)
    sql, params = _query_sql(text, kind, verified, limit, any_word)
    # Shared: a rebuild swaps the file only while no reader has it open.
    with _flock(root, fcntl.LOCK_SH):
        db = _connect(index_path(root))
        try:
            return [_row_dict(row) for row in db.execute_returning_dicts(sql, params)]
        finally:
            db.close()


def fts_phrase_query(text: str, any_word: bool = False) -> str:
    """Each whitespace-separated word as a quoted FTS5 string (implicit AND, or OR with
    ``any_word``), so that user text such as ``NOT``, ``*``, ``:`` or ``"`` can never act
    as query syntax."""
    joiner = " OR " if any_word else " "
    return joiner.join('"' + word.replace('"', '""') + '"' for word in text.split())


def migrate(db: sqlite_utils.Database) -> None:
    """Apply, in order, each migration not yet recorded in `_migrations`."""
    if "_migrations" not in db.table_names():
        db.table("_migrations").create({"name": str, "applied_at": str}, pk="name")
    applied = {row["name"] for row in db.table("_migrations").rows}
    for fn in MIGRATIONS:
        if fn.__name__ in applied:
            continue
        with db.atomic():
            fn(db)
            db.table("_migrations").insert(
                {"name": fn.__name__, "applied_at": datetime.now(UTC).isoformat()})


# -- opening ------------------------------------------------------------------------------


def _connect(path: Path) -> sqlite_utils.Database:
    db = sqlite_utils.Database(path, execute_plugins=False)
    db.execute("PRAGMA busy_timeout = 30000")
    return db


@contextmanager
def _flock(root: Path, operation: int) -> Iterator[None]:
    """Writers take the index lock exclusively, readers shared."""
    fd = os.open(local_dir(root) / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, operation)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _configure(db: sqlite_utils.Database, *, journal_mode: str, synchronous: str,
               cache_kib: int) -> None:
    db.execute(f"PRAGMA journal_mode = {journal_mode}")
    db.execute(f"PRAGMA synchronous = {synchronous}")
    db.execute(f"PRAGMA cache_size = -{cache_kib}")


def _open_existing(path: Path) -> sqlite_utils.Database | None:
    """The index, migrated, or None when there is none or it is unreadable (corrupt)."""
    if not path.exists():
        return None
    db = _connect(path)
    try:
        # WAL lets queries read while a writer updates; NORMAL is safe with WAL.
        _configure(db, journal_mode="WAL", synchronous="NORMAL", cache_kib=UPDATE_CACHE_KIB)
        migrate(db)
        return db
    except sqlite3.DatabaseError:
        db.close()
        return None


# -- updating -----------------------------------------------------------------------------


def _update(root: Path, *, force_rebuild: bool) -> IndexStats:
    started = time.perf_counter()
    with _flock(root, fcntl.LOCK_EX):
        paths = segment_paths(root)
        db = None if force_rebuild else _open_existing(index_path(root))
        if db is not None:
            try:
                known = {row["name"]: _Progress(**row) for row in db.table("segments").rows}
                if known and not _history_rewritten(paths, known):
                    # One transaction: a crash or a failure leaves the previous index intact.
                    with db.atomic():
                        counts = _index_segments(db, paths, known, bulk=False)
                    return counts.stats(db, paths, rebuilt=False, started=started)
            finally:
                db.close()
        return _build_fresh(root, paths, started)


def _build_fresh(root: Path, paths: list[Path], started: float) -> IndexStats:
    """Build a new index file beside the old one, then swap it in.

    Nobody else sees the new file while it is built, so it needs neither a WAL nor
    fsyncs per transaction (a crash only leaves a file to discard), and nothing has
    to delete a million old rows first.
    """
    final = index_path(root)
    fresh = final.with_name(final.name + ".build")
    fresh.unlink(missing_ok=True)
    db = _connect(fresh)
    try:
        _configure(db, journal_mode="MEMORY", synchronous="OFF", cache_kib=BULK_CACHE_KIB)
        migrate(db)
        with db.atomic():
            counts = _index_segments(db, paths, {}, bulk=True)
        stats = counts.stats(db, paths, rebuilt=True, started=started)
        db.execute("PRAGMA journal_mode = WAL")
    finally:
        db.close()
    # Durable before the rename, so a power loss cannot leave a half-written index.
    fd = os.open(fresh, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    _retire(final)
    os.replace(fresh, final)
    return replace(stats, seconds=time.perf_counter() - started)


def _retire(path: Path) -> None:
    """Fold the old index's WAL into it, then delete the WAL and shared-memory files, so
    that the file swapped in is never paired with a stale WAL, even after a crash."""
    if path.exists():
        try:
            db = _connect(path)
            try:
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                db.close()
        except sqlite3.DatabaseError:
            pass  # a corrupt old index: it is being replaced anyway
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _history_rewritten(paths: list[Path], known: dict[str, _Progress]) -> bool:
    """Whether an indexed prefix of some segment is gone or different."""
    on_disk = {p.name: p for p in paths}
    for name, progress in known.items():
        path = on_disk.get(name)
        if path is None or path.stat().st_size < progress.bytes:
            return True
        head, tail = _fingerprints(path, progress.bytes)
        if (head, tail) != (progress.head_sha256, progress.tail_sha256):
            return True
    return False


def _fingerprints(path: Path, size: int) -> tuple[str, str]:
    """sha256 of the first and of the last FINGERPRINT_BYTES of the first ``size`` bytes."""
    with path.open("rb") as fh:
        head = fh.read(min(size, FINGERPRINT_BYTES))
        fh.seek(max(0, size - FINGERPRINT_BYTES))
        tail = fh.read(min(size, FINGERPRINT_BYTES))
    return hashlib.sha256(head).hexdigest(), hashlib.sha256(tail).hexdigest()


@dataclass
class _Counts:
    bytes_read: int = 0
    lines_read: int = 0
    inserted: int = 0
    unreadable: list[str] = field(default_factory=list)

    def add(self, conn: sqlite3.Connection,
            parsed: tuple[list[tuple[Any, ...]], list[str]]) -> None:
        rows, unreadable = parsed
        self.inserted += _insert(conn, rows)
        self.unreadable.extend(unreadable[:UNREADABLE_NAMED - len(self.unreadable)])

    def stats(self, db: sqlite_utils.Database, paths: list[Path], *, rebuilt: bool,
              started: float) -> IndexStats:
        # Rows are never deleted (a rebuild makes a new file) and each insert takes the
        # next rowid, so the largest rowid is the row count, without count(*)'s scan.
        total = db.execute("SELECT coalesce(max(rowid), 0) FROM records").fetchone()[0]
        return IndexStats(
            rebuilt=rebuilt, segments=len(paths), bytes_read=self.bytes_read,
            lines_read=self.lines_read, inserted=self.inserted,
            skipped=self.lines_read - self.inserted, total=total,
            seconds=time.perf_counter() - started, unreadable=tuple(self.unreadable),
        )


_INSERT_SQL = (
    f"INSERT OR IGNORE INTO records ({', '.join(RECORD_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in RECORD_COLUMNS)})"
)


def _index_segments(db: sqlite_utils.Database, paths: list[Path],
                    known: dict[str, _Progress], *, bulk: bool) -> _Counts:
    """Insert every new complete line of every segment (inside the caller's transaction).

    A helper thread parses chunk k+1 while this one inserts chunk k: sqlite3 releases
    the GIL while SQLite works, so on two cores json.loads and the B-tree and FTS
    inserts overlap instead of adding up.
    """
    counts = _Counts()
    conn = db.conn
    seq = conn.execute("SELECT coalesce(sum(lines), 0) FROM segments").fetchone()[0]
    with _bulk_load(conn) if bulk else nullcontext(), ThreadPoolExecutor(1) as parser:
        parsed: Future[tuple[list[tuple[Any, ...]], list[str]]] | None = None
        for path in paths:
            progress = known.get(path.name) or _Progress(path.name)
            for chunk in _new_chunks(path, progress.bytes):
                upcoming = parser.submit(_parse, chunk, path.name, progress.lines + 1, seq + 1)
                if parsed is not None:
                    counts.add(conn, parsed.result())
                parsed = upcoming
                n_lines = chunk.count(b"\n")
                seq += n_lines
                progress.lines += n_lines
                progress.bytes += len(chunk)
                counts.lines_read += n_lines
                counts.bytes_read += len(chunk)
            _save_progress(conn, path, progress)
        if parsed is not None:
            counts.add(conn, parsed.result())
    return counts


@contextmanager
def _bulk_load(conn: sqlite3.Connection) -> Iterator[None]:
    """Defer what a bulk load would otherwise redo for every chunk: the secondary
    indexes are built once at the end, and FTS5 merges its segments once ('optimize')
    instead of merging level by level as they pile up."""
    for name in SECONDARY_INDEXES:
        conn.execute(f"DROP INDEX IF EXISTS [{name}]")
    _fts_config(conn, automerge=0, crisismerge=64)
    yield
    conn.execute("INSERT INTO records_fts (records_fts) VALUES ('optimize')")
    _fts_config(conn, automerge=FTS5_DEFAULT_AUTOMERGE, crisismerge=FTS5_DEFAULT_CRISISMERGE)
    for name, column in SECONDARY_INDEXES.items():
        conn.execute(f"CREATE INDEX [{name}] ON records ([{column}])")


def _fts_config(conn: sqlite3.Connection, **settings: int) -> None:
    for key, value in settings.items():
        conn.execute("INSERT INTO records_fts (records_fts, rank) VALUES (?, ?)", (key, value))


def _insert(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> int:
    """Insert rows into `records`, then exactly those that were new into the FTS index."""
    last_rowid = conn.execute("SELECT coalesce(max(rowid), 0) FROM records").fetchone()[0]
    inserted: int = conn.executemany(_INSERT_SQL, rows).rowcount
    # New rows get rowids above the old maximum; ignored duplicates get none.
    conn.execute(
        "INSERT INTO records_fts (rowid, claim, task, response) "
        "SELECT rowid, claim, task, response FROM records WHERE rowid > ?", (last_rowid,))
    return inserted


def _new_chunks(path: Path, start: int) -> Iterator[bytes]:
    """The complete lines after byte ``start``, in chunks that each end with a newline.

    An incomplete last line (an append in flight, or a torn write) is left for later.
    """
    with path.open("rb") as fh:
        fh.seek(start)
        carry = b""
        while block := fh.read(READ_CHUNK_BYTES):
            data = carry + block
            end = data.rfind(b"\n") + 1
            carry = data[end:]
            if end:
                yield data[:end]


def _save_progress(conn: sqlite3.Connection, path: Path, progress: _Progress) -> None:
    progress.head_sha256, progress.tail_sha256 = _fingerprints(path, progress.bytes)
    conn.execute(
        "INSERT OR REPLACE INTO segments (name, bytes, lines, head_sha256, tail_sha256) "
        "VALUES (?, ?, ?, ?, ?)",
        (progress.name, progress.bytes, progress.lines, progress.head_sha256,
         progress.tail_sha256),
    )


def _parse(chunk: bytes, segment: str, first_line: int, first_seq: int
           ) -> tuple[list[tuple[Any, ...]], list[str]]:
    """One `records` row per line that is a JSON object with a string id, and each line
    that is not named (``segment:line: message``).

    The hot loop of a build: one decode_line per line and no other function call per row.
    Lines that are not records are skipped here (the gates and `verify` refuse them); the
    index only has to stay usable. Columns take only values of their type, so no hand-made
    line can make SQLite refuse the chunk.
    """
    decode = decode_line
    dumps = json.dumps
    rows = []
    unreadable = []
    for offset, raw in enumerate(chunk.split(b"\n")[:-1]):
        try:
            rec = decode(raw, 1 << 62)
        except RecordError as exc:
            unreadable.append(f"{segment}:{first_line + offset}: {exc}")
            continue
        if type(rec.get("id")) is not str:
            unreadable.append(f"{segment}:{first_line + offset}: id: missing")
            continue
        source = rec.get("source")
        if type(source) is not dict:
            source = {}
        verdict = rec.get("verdict")
        if type(verdict) is not dict:
            verdict = {}
        links = rec.get("links")
        verified = verdict.get("verified")
        confidence = rec.get("confidence")
        row = (
            rec["id"], first_seq + offset, segment, first_line + offset, rec.get("kind"),
            rec.get("ts"), rec.get("claim"), rec.get("task"), rec.get("response"),
            confidence if type(confidence) in (int, float) else None,
            verified if type(verified) is bool else None,
            verdict.get("verifier"), source.get("emitter"), source.get("model"),
            source.get("origin"), dumps(links) if links else "[]",
            raw.decode("utf-8"),
        )
        rows.append(tuple(v if type(v) is not dict and type(v) is not list else None
                          for v in row))
    return rows, unreadable


# -- querying -----------------------------------------------------------------------------


def _query_sql(text: str | None, kind: str | None, verified: bool | None, limit: int,
               any_word: bool = False) -> tuple[str, dict[str, Any]]:
    columns = ", ".join(f"records.{c}" for c in RECORD_COLUMNS)
    where: list[str] = []
    params: dict[str, Any] = {"limit": limit}
    match = fts_phrase_query(text, any_word) if text else ""
    if match:
        sql = (f"SELECT {columns} FROM records_fts "
               "JOIN records ON records.rowid = records_fts.rowid")
        where.append("records_fts MATCH :match")
        params["match"] = match
        order = "records_fts.rank"
    else:
        sql = f"SELECT {columns} FROM records"
        order = "records.rowid DESC"
    if kind is not None:
        where.append("records.kind = :kind")
        params["kind"] = kind
    if verified is not None:
        where.append("records.verified = :verified")
        params["verified"] = int(verified)
    if where:
        sql += " WHERE " + " AND ".join(where)
    return f"{sql} ORDER BY {order} LIMIT :limit", params


def _row_dict(row: dict[str, Any]) -> dict[str, Any]:
    """A result row with SQL encodings undone: links as a list, verified as a bool."""
    row["links"] = json.loads(row["links"]) if row["links"] else []
    if row["verified"] is not None:
        row["verified"] = bool(row["verified"])
    return row
