"""Sections of ``convergent status`` beyond the log: gaps, levers, proposals, cycles."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def extra_sections(root: Path, records: list[dict[str, Any]]) -> dict[str, Any]:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_kind.setdefault(str(record.get("kind")), []).append(record)
    gaps = [r.get("evidence", {}).get("name", r.get("claim")) for r in by_kind.get("gap", [])]
    levers = [f"{r.get('evidence', {}).get('lever')}@{r.get('evidence', {}).get('gap')}"
              for r in by_kind.get("lever", [])]
    from convergent.tripwire_history import tripwire_history, trust_record

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
    from convergent.adapters import RegistryError, adapter_tags, tag_metadata, tag_problems
    from convergent.config import load_config
    from convergent.gitops import open_repo

    refused = {name for name, _ in tag_problems(root, load_config(root))}
    out = []
    for tag in adapter_tags(open_repo(root)):
        mark = " (REFUSED by the adapters gate)" if tag.name in refused else ""
        try:
            out.append(f"{tag.name}={str(tag_metadata(tag).get('adapter'))[:19]}{mark}")
        except RegistryError:  # a tag someone made by hand, without our metadata
            out.append(f"{tag.name}=?{mark}")
    return out
