"""The ``secrets`` gate: no credentials in records, found with detect-secrets.

Every string of every appended record is scanned, line by line, with detect-secrets'
default plugin set and default filters (the same pipeline as ``detect-secrets scan`` on a
file, non-eager). Problems name the log line, the field and the secret type, never the
secret itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from convergent.gates.base import GateContext, Problem

GATE = "secrets"
# What detect-secrets is told the text is: a plain file (no language-specific rules).
_FILENAME = "record.txt"


def check_secrets(ctx: GateContext) -> Iterator[Problem]:
    texts = [(line, where, text) for line in ctx.new_lines if line.record is not None
             for where, text in _strings(line.record, "")]
    if not texts:
        return
    scanned = _scan({part for _, _, text in texts for part in text.splitlines()})
    for line, where, text in texts:
        for number, part in enumerate(text.splitlines(), 1):
            for kind in scanned.get(part, ()):
                yield Problem(line.path, line.lineno, GATE,
                              f"{where} line {number}: looks like a credential ({kind}); "
                              "remove it from the record")


def _strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """Every string in a JSON value, with its field path (``evidence.tests``, ``links[0]``)."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            inner = f"{where}.{key}" if where else str(key)
            yield f"{inner} (the key)", str(key)  # keys are emitter-controlled text too
            yield from _strings(item, inner)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{where}[{i}]")


def _scan(lines: set[str]) -> dict[str, list[str]]:
    """Secret types found per distinct line (lines without any are left out)."""
    # Imported here: detect-secrets pulls in requests, which commands without records skip.
    from detect_secrets.core.scan import _process_line_based_plugins
    from detect_secrets.settings import default_settings, get_plugins

    found: dict[str, list[str]] = {}
    with default_settings():
        plugins = get_plugins()
        for line in lines:
            # Calling the plugins directly is several times cheaper than detect-secrets'
            # dependency-injecting pipeline; only lines they flag pay for the full pipeline,
            # whose filters (UUIDs, templates, indirect references ...) have the last word.
            if line.strip() and any(p.analyze_line(filename=_FILENAME, line=line)
                                    for p in plugins):
                kinds = sorted({s.type for s in _process_line_based_plugins(
                    [(1, line)], _FILENAME)})
                if kinds:
                    found[line] = kinds
    return found
