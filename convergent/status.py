"""``convergent status``: what the log holds (gaps, levers, proposals, cycles), the
tripwire's trust record, and which adapter is active."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, TextIO

from convergent.adapters import (
    RegistryError,
    active_problems,
    adapter_tags,
    read_active,
    tag_metadata,
    tag_problems,
)
from convergent.approval import unsigned_warning
from convergent.config import Config, load_config
from convergent.gitops import open_repo
from convergent.history import read_log
from convergent.log import segment_paths
from convergent.records import Record, typed
from convergent.tripwire_history import tripwire_history, trust_record

UNREADABLE_SHOWN = 20  # the text view names this many bad lines; --json names all


def active_adapter(root: Path, config: Config) -> dict[str, Any]:
    """The active adapter, only when the rules back it; else "unknown" and why it is refused
    (an unregistered adapter is never reported as active)."""
    value = read_active(root)
    problems = active_problems(root, config)
    if problems:
        return {"active_adapter": "unknown", "active_adapter_refused": {
            "value": value, "reasons": problems}}
    return {"active_adapter": value}


def approval_signatures(config: Config) -> str:
    warning = unsigned_warning(config)
    return f"UNSIGNED: {warning}" if warning else (
        "signed: an approving merge must carry a signature that verifies "
        "([operators] require_signed = true)")


def collect_status(root: Path) -> dict[str, Any]:
    config = load_config(root)
    records, problems = read_log(root)
    views = typed(records)
    kinds = Counter(r.kind for r in views)
    experiences = [r for r in views if r.kind == "experience"]
    verified = sum(1 for r in experiences if r.verified)
    segments = segment_paths(root)
    status: dict[str, Any] = {
        "repo": str(root),
        "log": {"records": len(records), "segments": len(segments),
                "bytes": sum(p.stat().st_size for p in segments)},
        "kinds": dict(sorted((str(k), v) for k, v in kinds.items())),
        "experiences": {"total": len(experiences), "verified": verified,
                        "unverified": len(experiences) - verified},
        **active_adapter(root, config),
        "approval_signatures": approval_signatures(config),
        "distillation": config["distillation"].get("state", "dormant"),
        # Lines that are not records (committed past the gates): named, never counted.
        "unreadable_lines": problems,
    }
    status.update(_log_sections(root, records))
    return status


def _log_sections(root: Path, records: list[dict[str, Any]]) -> dict[str, Any]:
    by_kind: dict[str, list[Record]] = {}
    for record in typed(records):
        by_kind.setdefault(record.kind, []).append(record)
    gaps = [r.evidence.get("name", r.raw.get("claim")) for r in by_kind.get("gap", [])]
    levers = [f"{r.evidence.get('lever')}@{r.evidence.get('gap')}"
              for r in by_kind.get("lever", [])]
    return {
        "tripwire": trust_record(tripwire_history(root)),
        "adapter_history": _adapter_history(root),
        "gaps": gaps,
        "levers": levers,
        "proposals": len(by_kind.get("proposal", [])),
        "approvals": len(by_kind.get("approval", [])),
        "cycles": len(by_kind.get("cycle", [])),
        "halts": len(by_kind.get("halt", [])),
        "promotions": len(by_kind.get("promotion", [])),
        "reverts": len(by_kind.get("revert", [])),
    }


def _adapter_history(root: Path) -> list[str]:
    """Promotion tags, oldest first, with the adapter each promoted (refused tags marked)."""
    refused = {name for name, _ in tag_problems(root, load_config(root))}
    out = []
    for tag in adapter_tags(open_repo(root)):
        mark = " (REFUSED by the adapters gate)" if tag.name in refused else ""
        try:
            out.append(f"{tag.name}={str(tag_metadata(tag).get('adapter'))[:19]}{mark}")
        except RegistryError:  # a tag someone made by hand, without our metadata
            out.append(f"{tag.name}=?{mark}")
    return out


def render_status(status: dict[str, Any], out: TextIO) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(file=out, width=100)
    table = Table(title=escape(f"convergent status: {status['repo']}"), show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")

    def row(what: str, value: str) -> None:
        table.add_row(what, escape(value))  # values are text, never rich markup

    log = status["log"]
    row("log", f"{log['records']} records, {log['segments']} segments, {log['bytes']} bytes")
    exp = status["experiences"]
    row("experiences", f"{exp['total']} ({exp['verified']} verified, "
                       f"{exp['unverified']} unverified)")
    row("records by kind", ", ".join(f"{k}: {v}" for k, v in status["kinds"].items())
        or "none")
    refused = status.get("active_adapter_refused")
    row("active adapter", status["active_adapter"] if not refused else (
        f"unknown: ACTIVE names {refused['value']}, which is REFUSED: "
        + "; ".join(refused["reasons"])))
    row("approval signatures", status["approval_signatures"])
    row("distillation", status["distillation"])
    for key, value in status.items():
        if key in ("repo", "log", "experiences", "kinds", "active_adapter",
                   "active_adapter_refused", "approval_signatures", "distillation",
                   "unreadable_lines"):
            continue
        row(key.replace("_", " "), _fmt(value))
    console.print(table)
    unreadable = status.get("unreadable_lines") or []
    if unreadable:
        console.print(f"{len(unreadable)} line(s) of the log are not records "
                      "(`convergent verify` checks the whole log):", markup=False)
        for problem in unreadable[:UNREADABLE_SHOWN]:
            console.print(problem, markup=False, highlight=False)
        if len(unreadable) > UNREADABLE_SHOWN:
            console.print(f"... and {len(unreadable) - UNREADABLE_SHOWN} more", markup=False)


def _fmt(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list):
        return "; ".join(_fmt(v) for v in value) or "none"
    return str(value)
