"""Gate ``adapters``: only a cycle's promotion, a rollback or an operator moves ``ACTIVE``.

A change of ``data/convergence/ACTIVE`` is accepted only as a cycle's promotion commit
(the commit that changes ``ACTIVE`` alone, on top of the commit that appended the cycle
which promoted that adapter), as a rollback along the promoted chain, or as an
operator's own commit (signed, when signatures are required); see
:mod:`convergent.adapters`. Files under ``adapters/<sha256>/`` must hash to their folder
name and never change once registered. ``check --all`` and ``check --rev-range`` also
check every ``adapter/vN`` tag (:func:`check_tags`): annotated, pointing at the promotion
commit its metadata describes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from convergent.adapters import (
    ActiveChange,
    change_problems,
    folder_problems,
    parse_active,
    tag_problems,
)
from convergent.approval import current_identity
from convergent.config import Config
from convergent.gates.base import GateContext, Problem
from convergent.gitops import open_repo
from convergent.layout import ACTIVE_FILE, ADAPTERS_DIR

GATE = "adapters"


def _folders(ctx: GateContext) -> dict[str, bool]:
    """Adapter folders the change touches -> whether the folder existed before it."""
    folders: dict[str, bool] = {}
    for change in ctx.files:
        rel = change.path.removeprefix(ADAPTERS_DIR + "/")
        if rel == change.path or "/" not in rel:
            continue  # not in the registry, or a file beside the folders (.gitkeep)
        name = rel.split("/", 1)[0]
        folders[name] = folders.get(name, False) or change.old is not None
    return folders


def check_adapters(ctx: GateContext) -> Iterator[Problem]:
    repo = open_repo(ctx.root)
    for name, existed in sorted(_folders(ctx).items()):
        path = f"{ADAPTERS_DIR}/{name}/"
        if existed:
            yield Problem(path, 0, GATE, f"registered adapter sha256:{name} is changed or "
                          "removed: a registered adapter is never touched again")
            continue
        for reason in folder_problems(repo, ctx.commit, name):
            yield Problem(path, 0, GATE, reason)
    active = next((c for c in ctx.files if c.path == ACTIVE_FILE), None)
    if active is None:
        return
    if ctx.commit is not None:
        obj = repo.commit(ctx.commit)
        author = f"{obj.author.name} <{obj.author.email}>"
    else:
        author = current_identity(repo)
    change = ActiveChange(old=parse_active(active.old), new=parse_active(active.new),
                          parents=ctx.parents,
                          only_active=not ctx.segments and len(ctx.files) == 1,
                          commit=ctx.commit, author=author)
    for reason in change_problems(ctx.root, ctx.config, change):
        yield Problem(ACTIVE_FILE, 1, GATE, reason)


def check_tags(root: Path, config: Config) -> Iterator[Problem]:
    """Every ``adapter/`` tag that is moved, forged or out of order."""
    for tag, reason in tag_problems(root, config):
        yield Problem(f"refs/tags/{tag}", 0, GATE, reason)
