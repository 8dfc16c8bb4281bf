"""Screen records before they are appended, by the very rules commits are gated with.

Content rules refuse a record at ``emit`` time (decontamination an experience, through
:class:`convergent.contamination.Decontamination`; secrets any record, through the gate's
:func:`convergent.gates.secrets.record_secrets`), so a benchmark item or a credential never
reaches the log; the same rules run again at every commit and merge as a second line of
defence (for hand edits). A batch is screened in one call: one decontamination pass and
one secrets scan over all its records.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convergent.config import Config
from convergent.errors import RecordError, RepoError
from convergent.records import typed

if TYPE_CHECKING:
    from convergent.contamination import Decontamination

DECONTAMINATION = "decontamination"
SECRETS = "secrets"


def screen_batch(root: Path, config: Config, records: Sequence[Mapping[str, Any]], *,
                 filled: Collection[str] = ()) -> list[RecordError | None]:
    """Per record, why it is refused (a :class:`RecordError` whose field is the rule's
    gate id), or None: :meth:`Screener.batch` of a screener made for this one call."""
    return Screener(root, config).batch(records, filled=filled)


class Screener:
    """The content rules of one records repo and config, for batch after batch (a
    recorder's): the decontamination check is prepared on the first batch that holds an
    experience (see :class:`convergent.contamination.Decontamination`), and made again
    on the next one if that failed."""

    def __init__(self, root: Path, config: Config) -> None:
        self.root, self.config = root, config
        self._decontamination: Decontamination | None = None

    def batch(self, records: Sequence[Mapping[str, Any]], *,
              filled: Collection[str] = ()) -> list[RecordError | None]:
        """Per record, why it is refused (a :class:`RecordError` whose field is the rule's
        gate id), or None. Decontamination is about training pairs (experiences); a
        credential has no place in any record. A decontamination check that cannot run
        refuses every experience of the batch (fail closed).

        ``filled``: top-level fields the caller wrote itself from its clock and a content
        hash (the recorder's ``ts`` and ``id``, see :func:`convergent.records.finalize`):
        they hold no emitter text, so they are not scanned for credentials (a hand edit of
        them is, by the gate at every commit)."""
        decontamination, record_secrets = _rules()
        errors: list[RecordError | None] = [None] * len(records)
        experiences = [n for n, r in enumerate(typed(records)) if r.kind == "experience"]
        if experiences:
            try:
                if self._decontamination is None:
                    self._decontamination = decontamination(self.root, self.config)
                findings = self._decontamination([records[n] for n in experiences])
            except (RepoError, OSError) as exc:
                for n in experiences:
                    errors[n] = RecordError(DECONTAMINATION,
                                            f"cannot check against the benchmarks: {exc}")
            else:
                for finding in findings:
                    n = experiences[finding.record]
                    errors[n] = errors[n] or RecordError(DECONTAMINATION, finding.message)
        scanned = [{k: v for k, v in r.items() if k not in filled} for r in records] \
            if filled else records
        for n, message in record_secrets(scanned, remember=True):
            errors[n] = errors[n] or RecordError(SECRETS, message)
        return errors


def screen(root: Path, config: Config, record: Mapping[str, Any], *,
           filled: Collection[str] = ()) -> None:
    """Raise the :class:`RecordError` of :func:`screen_batch` for one record, if any."""
    [error] = screen_batch(root, config, [record], filled=filled)
    if error is not None:
        raise error


@functools.cache
def _rules() -> tuple[type[Decontamination], Callable[..., Any]]:
    """The two rules, imported on first use (the gates sit above this module), once."""
    from convergent.contamination import Decontamination
    from convergent.gates.secrets import record_secrets

    return Decontamination, record_secrets
