"""The append-only log: JSONL segments under ``data/convergence/records/``.

Appends are serialized across processes with ``flock`` on a lock file in the
git-ignored ``.convergent/`` directory and across threads with a group commit:
whoever holds the write turn writes every pending line with one ``write`` and
one ``fsync``, so ``append`` returns only once its lines are durable. The
``fsync`` runs after the lock is released, so processes overlap their waits.

A crash can leave a torn last line (a write that never reached its fsync, so
it was never acknowledged). The next writer detects it under the lock, moves
the torn bytes to ``.convergent/torn/`` and truncates the segment back to its
last complete line.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from convergent.errors import RepoError
from convergent.layout import RECORDS_DIR, SEGMENT_PREFIX, SEGMENT_SUFFIX, local_dir, segment_name

DEFAULT_SEGMENT_MAX_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Position:
    """Where an appended line landed: segment file name and byte offset."""

    segment: str
    offset: int


def records_dir(root: Path) -> Path:
    return root / RECORDS_DIR


def segment_paths(root: Path) -> list[Path]:
    """The log's segments in log order (name order); RepoError when one is not a regular
    file (a symbolic link would lead every reader and appender to a file nobody checked)."""
    folder = records_dir(root)
    if not folder.is_dir():
        return []
    paths = sorted(p for p in folder.iterdir()
                   if p.name.startswith(SEGMENT_PREFIX) and p.name.endswith(SEGMENT_SUFFIX))
    for path in paths:
        if path.is_symlink() or not path.is_file():
            raise RepoError(f"{path}: the segment is a symbolic link or not a regular file; "
                            "segments are regular files: remove it (`git rm`) and restore the "
                            "log from a commit the gates accepted")
    return paths


def iter_raw_lines(root: Path) -> Iterator[tuple[Path, int, bytes]]:
    """Every line of the log as ``(segment path, 1-based line number, bytes without newline)``."""
    for path in segment_paths(root):
        with path.open("rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                yield path, lineno, raw.rstrip(b"\n")


class _Pending:
    __slots__ = ("data", "done", "positions", "error")

    def __init__(self, data: Sequence[bytes]) -> None:
        self.data = data
        self.done = False
        self.positions: list[Position] = []
        self.error: BaseException | None = None


class Log:
    """A writer for one records repo's log. Thread-safe; many processes may hold one each."""

    def __init__(self, root: Path, *, segment_max_bytes: int = DEFAULT_SEGMENT_MAX_BYTES) -> None:
        self.root = Path(root)
        self.segment_max_bytes = segment_max_bytes
        self._folder = records_dir(self.root)
        self._folder.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(local_dir(self.root) / "log.lock", os.O_RDWR | os.O_CREAT, 0o644)
        self._cond = threading.Condition()
        self._queue: list[_Pending] = []
        self._writing = False
        self._seg_fd: int | None = None
        self._seg_name = ""
        self._seg_path = ""
        self._seg_ino = self._seg_dev = -1

    # -- public -------------------------------------------------------------------------

    def append(self, lines: Sequence[bytes]) -> list[Position]:
        """Append complete lines (each ending in ``\\n``); durable when this returns."""
        for line in lines:
            if not line.endswith(b"\n") or b"\n" in line[:-1]:
                raise ValueError("each appended item must be exactly one line ending in \\n")
        if not lines:
            return []
        mine = _Pending(lines)
        with self._cond:
            self._queue.append(mine)
            while self._writing and not mine.done:
                self._cond.wait()
            if mine.done:
                return self._result(mine)
            self._writing = True
            batch, self._queue = self._queue, []
        try:
            self._write_batch(batch)
        except BaseException as exc:  # every waiter of this batch learns of the failure
            for item in batch:
                item.error = exc
        finally:
            with self._cond:
                for item in batch:
                    item.done = True
                self._writing = False
                self._cond.notify_all()
        return self._result(mine)

    def repair(self) -> None:
        """Detect and repair a torn last line now (appends also do it, under the lock)."""
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            if segment_paths(self.root):
                fd, size = self._open_newest()
                self._repair_torn_tail(fd, size)
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._seg_fd is not None:
            os.close(self._seg_fd)
            self._seg_fd = None
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> Log:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------

    @staticmethod
    def _result(item: _Pending) -> list[Position]:
        if item.error is not None:
            raise item.error
        return item.positions

    def _write_batch(self, batch: list[_Pending]) -> None:
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            fd, size = self._current_segment(sum(len(x) for item in batch for x in item.data))
            offset = size
            for item in batch:
                for line in item.data:
                    item.positions.append(Position(self._seg_name, offset))
                    offset += len(line)
            blob = b"".join(x for item in batch for x in item.data)
            written = 0
            while written < len(blob):
                written += os.write(fd, blob[written:])
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        # fsync outside the lock: the order of lines is fixed by the writes above, and
        # concurrent fsyncs from many processes share one journal commit.
        os.fsync(fd)

    def _current_segment(self, incoming: int) -> tuple[int, int]:
        """The newest segment's fd and size, repaired, sealed and rolled over as needed.

        Only called under the flock. A segment is only ever created when the newest one
        reached the cap, so a cached segment whose size is under the cap is still the newest.
        """
        fd = self._seg_fd
        size = self._valid_size() if fd is not None else None
        if fd is None or size is None:
            fd, size = self._open_newest()
        size = self._repair_torn_tail(fd, size)
        if size > 0 and size + incoming > self.segment_max_bytes:
            fd, size = self._open_segment(self._seg_number() + 1)
        return fd, size

    def _valid_size(self) -> int | None:
        """The cached segment's size, or None when it is no longer the newest (its path
        names another file now, or it reached the cap)."""
        try:
            st = os.stat(self._seg_path)
        except FileNotFoundError:
            return None
        if st.st_ino != self._seg_ino or st.st_dev != self._seg_dev:
            return None
        # The path names the file the fd has open: its size is that file's.
        return st.st_size if st.st_size < self.segment_max_bytes else None

    def _seg_number(self) -> int:
        return int(self._seg_name[len(SEGMENT_PREFIX):-len(SEGMENT_SUFFIX)])

    def _open_newest(self) -> tuple[int, int]:
        existing = segment_paths(self.root)
        number = 1
        if existing:
            newest = existing[-1].name
            number = int(newest[len(SEGMENT_PREFIX):-len(SEGMENT_SUFFIX)])
        return self._open_segment(number)

    def _open_segment(self, number: int) -> tuple[int, int]:
        if self._seg_fd is not None:
            os.close(self._seg_fd)
        self._seg_name = segment_name(number)
        path = self._seg_path = str(self._folder / self._seg_name)
        created = not os.path.exists(path)
        # Read-write so the torn-tail check can pread the last byte without another open.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        if created:  # make the new directory entry durable too
            dir_fd = os.open(self._folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        self._seg_fd = fd
        st = os.fstat(fd)
        self._seg_ino, self._seg_dev = st.st_ino, st.st_dev
        return fd, st.st_size

    def _repair_torn_tail(self, fd: int, size: int) -> int:
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return size
        path = self._seg_path
        with open(path, "rb") as fh:
            # Find the end of the last complete line; everything after it was never acked.
            keep = _last_newline_end(fh, size)
            fh.seek(keep)
            torn = fh.read(size - keep)
        torn_dir = local_dir(self.root) / "torn"
        torn_dir.mkdir(exist_ok=True)
        (torn_dir / f"{self._seg_name}.{keep}").write_bytes(torn)
        os.truncate(path, keep)
        os.fsync(fd)
        return keep


def _last_newline_end(fh: BinaryIO, size: int, chunk: int = 65536) -> int:
    """Offset just past the last newline before ``size`` (0 when there is none)."""
    pos = size
    while pos > 0:
        start = max(0, pos - chunk)
        fh.seek(start)
        block = fh.read(pos - start)
        idx = block.rfind(b"\n")
        if idx >= 0:
            return start + idx + 1
        pos = start
    return 0
