"""Build a :class:`GateContext` for the staged index, one commit, or a revision range."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import git

from convergent.changes import (
    FileChange,
    drop_merged,
    merge_parent_segments,
    new_lines_of,
    segment_changes,
)
from convergent.config import Config, parse_config, resolve_config
from convergent.gates.base import GateContext
from convergent.gitops import (
    EMPTY_TREE,
    RawChange,
    diff_staged,
    diff_trees,
    head_sha,
    read_blob,
    read_path_at,
)
from convergent.history import records_at
from convergent.layout import ADAPTERS_DIR, CONFIG_FILE, RECORDS_DIR, is_segment

# Adapter weights can be large and no gate reads their bytes: they are named, not loaded.
_UNREAD_PREFIXES = (ADAPTERS_DIR + "/",)


def config_from(text: bytes | None, root: Path) -> Config:
    """The resolved config whose file content is ``text`` (None: the defaults)."""
    if text is None:
        return resolve_config({})
    return resolve_config(parse_config(text.decode("utf-8"), f"{root}/{CONFIG_FILE}"))


def _file_changes(repo: git.Repo, changes: list[RawChange]) -> tuple[list[FileChange],
                                                                      list[FileChange]]:
    segments = segment_changes(repo, changes)
    files: list[FileChange] = []
    for change in changes:
        if is_segment(change.path):
            continue
        if change.path.startswith(_UNREAD_PREFIXES):
            files.append(FileChange(change.path, None if change.old_sha is None else b"",
                                    None if change.new_sha is None else b""))
        else:
            files.append(FileChange(change.path, read_blob(repo, change.old_sha),
                                    read_blob(repo, change.new_sha)))
    return segments, files


def _segment_names(repo: git.Repo, rev: str | None) -> list[str]:
    if rev is None:
        return []
    out = repo.git.ls_tree("--name-only", rev, RECORDS_DIR + "/")
    return [p for p in out.splitlines() if is_segment(p)]


def _history_loader(repo: git.Repo, rev: str | None) -> Callable[[], list[dict[str, Any]]]:
    """All records as of ``rev`` (None: the staged index), loaded on first use."""
    cache: list[list[dict[str, Any]]] = []

    def load() -> list[dict[str, Any]]:
        if not cache:
            cache.append(records_at(repo, rev))
        return cache[0]

    return load


def _context(repo: git.Repo, root: Path, base: str | None, changes: list[RawChange],
             config_text: bytes | None, *, commit: str | None, parents: tuple[str, ...],
             history_rev: str | None) -> GateContext:
    segments, files = _file_changes(repo, changes)
    return GateContext(root=root, config=config_from(config_text, root),
                       new_lines=new_lines_of(segments),
                       segments=segments, files=files,
                       old_segment_names=_segment_names(repo, base), commit=commit,
                       parents=parents, history=_history_loader(repo, history_rev),
                       read_file=_file_reader(repo, history_rev))


def _file_reader(repo: git.Repo, rev: str | None) -> Callable[[str], bytes | None]:
    """A file's bytes at ``rev`` (None: the staged index)."""
    if rev is None:
        return lambda path: _index_blob(repo, path)
    return lambda path: read_path_at(repo, rev, path)


def staged_context(repo: git.Repo, root: Path, merge_heads: list[str] | None = None
                   ) -> GateContext:
    """What the next commit would record: the index against HEAD (and MERGE_HEAD)."""
    head = head_sha(repo)
    config_text = _index_blob(repo, CONFIG_FILE)
    ctx = _context(repo, root, head, diff_staged(repo), config_text, commit=None,
                   parents=tuple(x for x in [head, *(merge_heads or [])] if x),
                   history_rev=None)
    if merge_heads:
        _add_merge_parents(repo, ctx, merge_heads, new_rev=None)
    return ctx


def _index_blob(repo: git.Repo, path: str) -> bytes | None:
    out = repo.git.ls_files("-s", "--", path)
    return read_blob(repo, out.split()[1]) if out else None


def commit_context(repo: git.Repo, root: Path, commit: str) -> GateContext:
    """One commit against its first parent (and, for a merge, its other parents)."""
    obj = repo.commit(commit)
    parents = tuple(p.hexsha for p in obj.parents)
    base = parents[0] if parents else EMPTY_TREE
    try:
        config_text: bytes | None = (obj.tree / CONFIG_FILE).data_stream.read()
    except KeyError:
        config_text = None
    ctx = _context(repo, root, parents[0] if parents else None,
                   diff_trees(repo, base, obj.hexsha), config_text, commit=obj.hexsha,
                   parents=parents, history_rev=obj.hexsha)
    if len(parents) > 1:
        _add_merge_parents(repo, ctx, list(parents[1:]), new_rev=obj.hexsha)
    return ctx


def _add_merge_parents(repo: git.Repo, ctx: GateContext, others: list[str],
                       new_rev: str | None) -> None:
    """Record each extra parent's segment versions; drop lines a parent already had."""
    ctx.merge_segments.extend(merge_parent_segments(repo, other, new_rev) for other in others)
    ctx.new_lines = drop_merged(ctx.new_lines, ctx.segments, ctx.merge_segments)
