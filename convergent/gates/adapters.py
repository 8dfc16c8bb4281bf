"""Gate ``adapters``: only a cycle's promotion, a rollback or an operator moves ``ACTIVE``.

A change of ``data/convergence/ACTIVE`` is accepted only as a cycle's promotion commit
(the commit that changes ``ACTIVE`` alone, on top of the commit that appended the cycle
which promoted that adapter), as a rollback along the promoted chain, or as an
operator's own commit (signed, when signatures are required); see
:mod:`convergent.adapters`. Files under ``adapters/<sha256>/`` must hash to their folder
name and never change once registered. ``check --all`` and ``check --rev-range`` also
check every ``adapter/vN`` tag (:func:`check_tags`): annotated, pointing at the promotion
commit its metadata describes.

Whatever the shape of the change, a commit that moves weights (registers an adapter
folder, appends a ``cycle`` or ``promotion`` record, or changes the value of ``ACTIVE``)
is refused unless it is an operator's own commit or one by a listed cycle runner
(:func:`convergent.approval.weight_commit_problems`; for the staged change,
:func:`convergent.approval.pending_weight_problems`). A merge that takes such a change as
it is on one of its merged parents moves nothing itself: the commits that made it there
are checked on their own.
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
from convergent.approval import (
    current_identity,
    pending_weight_problems,
    weight_commit_problems,
)
from convergent.config import Config
from convergent.gates.base import GateContext, Problem
from convergent.gitops import open_repo
from convergent.layout import ACTIVE_FILE, ADAPTERS_DIR
from convergent.records import Record

GATE = "adapters"
# Records whose appending moves weights: a cycle's outcome and its promotion.
WEIGHT_RECORDS = ("cycle", "promotion")


def _folder_of(path: str) -> str | None:
    """The adapter folder a path is in (its name), or None: not in the registry, or a
    file beside the folders (.gitkeep)."""
    rel = path.removeprefix(ADAPTERS_DIR + "/")
    if rel == path or "/" not in rel:
        return None
    return rel.split("/", 1)[0]


def _folders(ctx: GateContext) -> dict[str, bool]:
    """Adapter folders the change touches -> whether the folder existed before it."""
    folders: dict[str, bool] = {}
    for change in ctx.files:
        name = _folder_of(change.path)
        if name is not None:
            folders[name] = folders.get(name, False) or change.old is not None
    return folders


def _taken_from_merged(ctx: GateContext, paths: list[str]) -> set[str]:
    """Of ``paths``, those the change holds exactly as one of its merged parents does."""
    if len(ctx.parents) < 2 or not paths:
        return set()
    repo = open_repo(ctx.root)
    taken: set[str] = set()
    for other in ctx.parents[1:]:
        if ctx.commit is None:
            out = repo.git.diff_index("--cached", "--name-only", "--no-renames", other, "--",
                                      *paths)
        else:
            out = repo.git.diff_tree("-r", "--name-only", "--no-renames", other, ctx.commit,
                                     "--", *paths)
        taken |= set(paths) - set(out.splitlines())
    return taken


def weight_changes(ctx: GateContext) -> list[tuple[str, int, str]]:
    """(path, line, what) for each way the change moves weights: an adapter folder it
    registers, a cycle or promotion record it appends, a new value of ``ACTIVE``."""
    named = {c.path: name for c in ctx.files if (name := _folder_of(c.path)) is not None}
    folders = list(named)
    active = next((c for c in ctx.files if c.path == ACTIVE_FILE), None)
    moved = active is not None and parse_active(active.old) != parse_active(active.new)
    taken = _taken_from_merged(ctx, folders + ([ACTIVE_FILE] if moved else []))
    out: list[tuple[str, int, str]] = []
    seen: set[str] = set()
    for path in folders:
        name = named[path]
        if path not in taken and name not in seen:
            seen.add(name)
            out.append((f"{ADAPTERS_DIR}/{name}/", 0, f"registering sha256:{name[:12]}"))
    for line in ctx.new_lines:
        kind = Record(line.record).kind if line.record is not None else None
        if kind in WEIGHT_RECORDS:
            out.append((line.path, line.lineno, f"appending a {kind} record"))
    if active is not None and moved and ACTIVE_FILE not in taken:
        out.append((ACTIVE_FILE, 1, f"ACTIVE -> {parse_active(active.new)[:19]}"))
    return out


def check_weight_movers(ctx: GateContext) -> Iterator[Problem]:
    """Only an operator or a listed cycle runner makes a commit that moves weights."""
    changes = weight_changes(ctx)
    if not changes:
        return
    if ctx.commit is not None:  # judged by the policy in force before it, signature too
        who = weight_commit_problems(ctx.root, ctx.commit)
        which = f"commit {ctx.commit[:12]}"
    else:  # staged: the signature is checked on the commit (reference-transaction, check)
        who = pending_weight_problems(ctx.root, ctx.config)
        which = "the next commit"
    if not who:
        return
    for path, line, what in changes:
        yield Problem(path, line, GATE, f"{what} in {which} is refused: only an operator "
                      "(`[operators] allowed`) or a listed cycle runner (`[operators] "
                      f"cycle_runners`) moves weights; {'; '.join(who)}: make the commit as "
                      "one of them (signed, when `require_signed = true`)")


def check_adapters(ctx: GateContext) -> Iterator[Problem]:
    yield from check_weight_movers(ctx)
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
