"""The Python API for hosts: ``Recorder(repo).emit(draft) -> record``.

A Recorder validates a draft, runs the verifier for experiences, fills in the
record's ``v``/``ts``/``verdict``/``id``, screens it with the content gates
(decontamination, secrets) and appends it durably to the log. It
is thread-safe (the log group-commits) and process-safe (the log's flock).
Optionally it commits the appended records every N records or T seconds.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convergent.config import Config, load_config
from convergent.errors import InputError, RecordError
from convergent.gitops import commit_log
from convergent.log import Log
from convergent.plugins import load_plugins
from convergent.records import (
    Verdict,
    decode_line,
    encode,
    finalize_line,
    validate_draft,
    validate_record,
)
from convergent.screening import Screener
from convergent.verifiers import VerifyContext, verify


@dataclass(frozen=True)
class EmitOutcome:
    """What ``emit_lines`` did with one input line."""

    line: int
    record: dict[str, Any] | None
    error: InputError | None


class Recorder:
    """Appends verified experiences and other records to one records repo."""

    def __init__(self, repo: Path | str, *, verify: bool = True, screen: bool = True,
                 commit_every: int | None = None, commit_seconds: float | None = None) -> None:
        self.root = Path(repo).resolve()
        self.config: Config = load_config(self.root)
        log_cfg = self.config["log"]
        self.record_max_bytes = int(log_cfg["record_max_bytes"])
        self.log = Log(self.root, segment_max_bytes=int(log_cfg["segment_max_bytes"]))
        self.log.repair()  # a crash may have left a torn, never-acknowledged last line
        self.verify = verify
        self.screen = screen
        commit_cfg = self.config["commit"]
        self.commit_every = int(commit_every if commit_every is not None
                                else commit_cfg["every_records"])
        self.commit_seconds = float(commit_seconds if commit_seconds is not None
                                    else commit_cfg["every_seconds"])
        self._since_commit = 0
        self._count_lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._screener: Screener | None = None

    # -- emitting ---------------------------------------------------------------------

    def prepare(self, draft: Mapping[str, Any]) -> tuple[dict[str, Any], bytes]:
        """Validate, verify, finalize and screen a draft; returns the record and its line."""
        record, line = self._finalize(draft)
        [error] = self._screen([record])
        if error is not None:
            raise error
        return record, line

    def _finalize(self, draft: Mapping[str, Any]) -> tuple[dict[str, Any], bytes]:
        """Validate, verify and finalize a draft (screening comes after, per batch)."""
        # Anything else (a list, a string ...) is refused by validate_draft, by name.
        draft = dict(draft) if isinstance(draft, Mapping) else draft
        validate_draft(draft)
        verdict = self._verdict(draft)
        return finalize_line(draft, verdict, max_bytes=self.record_max_bytes)

    def _screen(self, records: Sequence[dict[str, Any]]) -> list[RecordError | None]:
        """The content rules over a batch, in one call (see :mod:`convergent.screening`)."""
        if not self.screen or not records:
            return [None] * len(records)
        if self._screener is None:
            self._screener = Screener(self.root, self.config)
        # ts and id are the recorder's own (its clock, the content's hash: see _finalize).
        return self._screener.batch(records, filled=("ts", "id"))

    def emit(self, draft: Mapping[str, Any]) -> dict[str, Any]:
        """Append one draft; returns the full record once it is durable on disk."""
        record, line = self.prepare(draft)
        self.log.append([line])
        self._appended([record])
        return record

    def emit_many(self, drafts: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Append drafts with one write and one fsync; all or none are appended. The batch
        is screened in one call; the first refused draft's error is raised."""
        prepared = [self._finalize(d) for d in drafts]
        for error in self._screen([record for record, _ in prepared]):
            if error is not None:
                raise error
        self.log.append([line for _, line in prepared])
        records = [rec for rec, _ in prepared]
        self._appended(records)
        return records

    def append_records(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Append records the caller finalized (e.g. an approval stamped with its merge's
        time, so every clone writes the same line); checked like any committed line."""
        lines = []
        for record in records:
            validate_record(dict(record) if isinstance(record, Mapping) else record)
            lines.append(encode(record, self.record_max_bytes))
        self.log.append(lines)
        self._appended([dict(r) for r in records])

    def emit_lines(self, lines: Iterable[bytes], source: str = "<input>",
                   batch: int = 256) -> list[EmitOutcome]:
        """Append draft JSON lines; bad lines are reported, good ones still appended.

        No line can cost another its place: a line refused for any reason (a bad draft,
        or an error raised by a verifier or a screening plugin) is reported and the loop
        goes on, and the good lines prepared so far are appended even when the loop is cut
        short (an interrupt, an unreadable input).
        """
        outcomes: list[EmitOutcome] = []
        pending: list[tuple[int, dict[str, Any], bytes]] = []
        try:
            for lineno, raw in enumerate(lines, 1):
                raw = raw.rstrip(b"\r\n")
                if not raw.strip():
                    continue
                try:
                    record, line = self._finalize(decode_line(raw, self.record_max_bytes))
                except RecordError as exc:
                    outcomes.append(EmitOutcome(lineno, None, InputError(
                        source, lineno, exc.field, exc.message)))
                    continue
                except Exception as exc:  # a plugin's bug must not lose the other lines
                    outcomes.append(EmitOutcome(lineno, None, InputError(
                        source, lineno, "", f"could not be recorded: {type(exc).__name__}: "
                        f"{exc}")))
                    continue
                pending.append((lineno, record, line))
                if len(pending) >= batch:
                    # Taken first: a failed append is never retried by the finally below.
                    full, pending = pending, []
                    outcomes.extend(self._flush(full, source))
        finally:
            outcomes.extend(self._flush(pending, source))
        return sorted(outcomes, key=lambda o: o.line)

    def _flush(self, pending: list[tuple[int, dict[str, Any], bytes]],
               source: str) -> list[EmitOutcome]:
        """Screen the batch in one call, then append the lines it does not refuse."""
        if not pending:
            return []
        try:
            errors = self._screen([rec for _, rec, _ in pending])
        except Exception as exc:  # a plugin's bug must not lose the other lines
            why = f"could not be screened: {type(exc).__name__}: {exc}"
            return [EmitOutcome(lineno, None, InputError(source, lineno, "", why))
                    for lineno, _, _ in pending]
        refused = [EmitOutcome(lineno, None, InputError(source, lineno, error.field,
                                                        error.message))
                   for (lineno, _, _), error in zip(pending, errors, strict=True)
                   if error is not None]
        kept = [p for p, error in zip(pending, errors, strict=True) if error is None]
        if kept:
            self.log.append([line for _, _, line in kept])
            self._appended([rec for _, rec, _ in kept])
        return refused + [EmitOutcome(lineno, rec, None) for lineno, rec, _ in kept]

    def _verdict(self, draft: Mapping[str, Any]) -> Verdict | None:
        if draft["kind"] != "experience":
            return None
        if not self.verify:
            return Verdict(False, "none", "verification skipped by the emitter")

        return verify(dict(draft), VerifyContext(self.root, self.config))

    # -- after an append ------------------------------------------------------------------

    def _appended(self, records: list[dict[str, Any]]) -> None:
        hook = load_plugins().hook
        for record in records:
            hook.record_appended(record=record, repo=str(self.root))
        if self.commit_every <= 0 and self.commit_seconds <= 0:
            return
        with self._count_lock:
            self._since_commit += len(records)
            due = self.commit_every > 0 and self._since_commit >= self.commit_every
            if due:
                self._since_commit = 0
            elif self.commit_seconds > 0 and self._timer is None:
                self._timer = threading.Timer(self.commit_seconds, self._timed_commit)
                self._timer.daemon = True
                self._timer.start()
        if due:
            self.commit()

    def _timed_commit(self) -> None:
        with self._count_lock:
            self._timer = None
            self._since_commit = 0
        self.commit()

    def commit(self, message: str | None = None) -> str | None:
        """Commit the records appended since the last commit; returns the commit sha."""
        return commit_log(self.root, message)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.log.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_recorders: dict[Path, Recorder] = {}
_recorders_lock = threading.Lock()


def recorder_for(root: Path) -> Recorder:
    """One shared Recorder per records repo in this process (for the emit hook)."""
    key = root.resolve()
    with _recorders_lock:
        if key not in _recorders:
            _recorders[key] = Recorder(key)
        return _recorders[key]
