"""Gate ``never-removed``: the ``[distillation]`` option stays in the config.

It may be ``dormant`` (or ``active``), never deleted: distillation stays an option an
operator can reach.
"""

from __future__ import annotations

from collections.abc import Iterator

from convergent.config import parse_config
from convergent.errors import RepoError
from convergent.gates.base import GateContext, Problem
from convergent.layout import CONFIG_FILE

STATES = ("dormant", "active")


def check_never_removed(ctx: GateContext) -> Iterator[Problem]:
    for change in ctx.files:
        if change.path != CONFIG_FILE or change.old is None:
            continue
        if change.new is None:
            yield Problem(CONFIG_FILE, 1, "never-removed",
                          "the config was deleted; [distillation] must stay (state = dormant)")
            continue
        try:
            table = parse_config(change.new.decode("utf-8"))
        except (RepoError, UnicodeDecodeError) as exc:
            yield Problem(CONFIG_FILE, 1, "never-removed", f"config unreadable: {exc}")
            continue
        distill = table.get("distillation")
        if not isinstance(distill, dict):
            yield Problem(CONFIG_FILE, 1, "never-removed",
                          "[distillation] was removed; it may be dormant, never deleted")
        elif distill.get("state") not in STATES:
            yield Problem(CONFIG_FILE, _line_of(change.new, "state"), "never-removed",
                          f"[distillation] state must be one of {', '.join(STATES)}")


def _line_of(text: bytes, key: str) -> int:
    for i, line in enumerate(text.decode("utf-8", "replace").splitlines(), 1):
        if line.strip().startswith(key):
            return i
    return 1
