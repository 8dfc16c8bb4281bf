"""Source snapshots for grounding: what a citation may cite, and who put it there.

A snapshot is a content-addressed file ``data/convergence/sources/<sha256 hex>``,
registered with :func:`store_source` (or ``convergent source add``) together with a
provenance entry ``<hex>.provenance.json`` naming the source that registered it
(``{"registered_by": "docs-ingest", "source": "sha256:<hex>"}``), and committed.

A record may cite a snapshot only when (:func:`citable_snapshot`):

- it is a regular file in Git at the revision the record builds on (HEAD at emit and for
  the staged change; the first parent when a commit is checked), so a snapshot added by
  the record's own commit, or never committed, is refused, and a symlink, a directory or
  a submodule is refused (read from Git, never through the file system);
- its bytes hash to its name;
- and it was registered by someone other than the record's emitter: the commit that
  added it (its *anchor*) is an operator's (signed, when signatures are required), or it
  is by another git identity than the one committing the record and its provenance entry
  names another source than the record's ``source.emitter``.

What this does and does not prove is in ``docs/operators.md`` ("Grounding sources").
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git

from convergent.approval import (
    is_operator,
    policy_before,
    signature_problem,
    signatures_required,
)
from convergent.config import Config
from convergent.errors import RecordError, RepoError
from convergent.gitops import commit_paths, open_repo
from convergent.layout import SOURCES_DIR
from convergent.records import canonical_json, decode_line

SHA256_REF = re.compile(r"sha256:([0-9a-f]{64})")
PROVENANCE_SUFFIX = ".provenance.json"
# Git tree modes of a regular file (a symlink is 120000, a directory 040000).
_TREE_MODES = {"100644": "file", "100755": "file", "120000": "a symlink",
                  "040000": "a directory", "160000": "a submodule"}


def snapshot_ref(content: str | bytes) -> str:
    """The name a snapshot of ``content`` gets: ``sha256:`` + hex of its bytes (UTF-8)."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    return "sha256:" + hashlib.sha256(data).hexdigest()


def snapshot_relpath(ref: str) -> str:
    """The repo-relative path of the snapshot ``sha256:<hex>``; ValueError for any other
    name (so a citation cannot point outside the sources dir)."""
    match = SHA256_REF.fullmatch(ref) if isinstance(ref, str) else None
    if match is None:
        raise ValueError(f"source {ref!r} is not 'sha256:' + 64 lower-case hex digits")
    return f"{SOURCES_DIR}/{match.group(1)}"


def source_path(root: Path, ref: str) -> Path:
    """Where the snapshot named ``ref`` lives in the working tree."""
    return root / snapshot_relpath(ref)


def store_source(root: Path, content: str | bytes, *, registered_by: str) -> str:
    """Write a snapshot of ``content`` and its provenance entry (both for a later commit);
    returns its name. The first registration of a snapshot is the one kept.

    :param registered_by: the source registering it (an ingestion job, a crawler, an
        operator's tool), never the agent that will cite it: a record citing a snapshot
        its own emitter registered does not verify.
    """
    if not isinstance(registered_by, str) or not registered_by.strip():
        raise RepoError("store_source: registered_by must name the registering source")
    data = content.encode("utf-8") if isinstance(content, str) else content
    ref = snapshot_ref(data)
    folder = _sources_dir(Path(root))
    path = folder / ref.removeprefix("sha256:")
    entry = path.with_name(path.name + PROVENANCE_SUFFIX)
    _write_new(path, data)
    _write_new(entry, (canonical_json({"registered_by": registered_by.strip(),
                                       "source": ref}) + "\n").encode("utf-8"))
    return ref


def _sources_dir(root: Path) -> Path:
    """The sources dir, made if missing; RepoError when it, or a folder above it inside
    the repo, is a symlink (a write would land outside the repo)."""
    here = root
    for part in SOURCES_DIR.split("/"):
        here = here / part
        if here.is_symlink() or (here.exists() and not here.is_dir()):
            raise RepoError(f"{here} is not a plain directory: refusing to store sources "
                            "through it")
    here.mkdir(parents=True, exist_ok=True)
    return here


def _write_new(path: Path, data: bytes) -> None:
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise RepoError(f"{path} is in the way and not a regular file: remove it")
    if path.exists():
        return
    # Temp file then rename: a concurrent reader never sees half a snapshot.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


# --- what a record may cite ---------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """A committed snapshot: its text and who put it in Git."""

    ref: str
    text: str
    anchor: str  # the commit that added it
    added_by: str  # that commit's author, ``Name <email>``
    registered_by: str | None  # what its provenance entry names, None without one


def committed_snapshot(repo: git.Repo, ref: str, rev: str | None) -> Snapshot:
    """The snapshot ``ref`` as committed at ``rev``; ValueError saying why it cannot be
    cited (not committed there, not a regular file, edited, ...)."""
    path = snapshot_relpath(ref)
    if rev is None:
        raise ValueError(f"snapshot {ref} is missing: nothing is committed yet")
    entry = repo.git.ls_tree(rev, "--", path)
    if not entry:
        raise ValueError(f"snapshot {ref} is missing from {rev[:12]}, the commit this record "
                         f"builds on: commit {path} before the record, not with it")
    mode, _, blob = entry.split("\t", 1)[0].split()
    if _TREE_MODES.get(mode) != "file":
        raise ValueError(f"snapshot {ref} is {_TREE_MODES.get(mode, 'not a file')} in "
                         "Git, not a regular file")
    data = repo.odb.stream(bytes.fromhex(blob)).read()
    if snapshot_ref(data) != ref:
        raise ValueError(f"snapshot {ref} does not match its hash (edited after storing)")
    anchor, added_by = _adding_commit(repo, rev, path)
    return Snapshot(ref, data.decode("utf-8", errors="replace"), anchor, added_by,
                    _registered_by(repo, rev, path + PROVENANCE_SUFFIX, ref))


def _adding_commit(repo: git.Repo, rev: str, path: str) -> tuple[str, str]:
    """The newest commit reachable from ``rev`` that added ``path``, and its author."""
    out = repo.git.log("-n", "1", "--diff-filter=A", "--format=%H%x00%an <%ae>", rev,
                       "--", path)
    sha, _, author = out.partition("\0")
    return sha, author


def _registered_by(repo: git.Repo, rev: str, path: str, ref: str) -> str | None:
    try:
        blob = repo.commit(rev).tree / path
        entry: Any = decode_line(blob.data_stream.read().rstrip(b"\n"))
    except (KeyError, RecordError):
        return None
    who = entry.get("registered_by")
    return who if isinstance(who, str) and entry.get("source") == ref else None


def provenance_problem(snapshot: Snapshot, *, emitter: Any, committer: str | None,
                       config: Config, root: Path) -> str | None:
    """Why a record by ``emitter``, committed by ``committer``, may not cite
    ``snapshot`` (None: it may)."""
    where = f"snapshot {snapshot.ref} was added by {snapshot.added_by} in " \
            f"{snapshot.anchor[:12]}"
    # An operator by the policy in force before the snapshot's commit.
    policy, rev = policy_before(open_repo(root), snapshot.anchor, config)
    if is_operator(policy, snapshot.added_by):
        if signatures_required(policy):
            problem = signature_problem(root, policy, rev, snapshot.anchor)
            if problem is not None:
                return f"{where}, an operator, but {problem}"
        return None
    if committer is None:
        return (f"{where}, and who commits this record is unknown (no git identity): "
                "nothing shows the record does not ground itself")
    if snapshot.added_by == committer:
        return (f"{where}, who also commits this record: a record cannot ground itself "
                "(sources are registered by another source, or committed by an operator)")
    if snapshot.registered_by is None:
        return (f"{where}, with no provenance entry naming who registered it (register "
                "sources with `convergent source add`)")
    if snapshot.registered_by == emitter:
        return (f"{where}, registered by {snapshot.registered_by}, this record's own "
                "emitter: a record cannot ground itself")
    return None


def register_sources(root: Path, contents: list[bytes], *, registered_by: str,
                     commit: bool = True) -> tuple[list[str], str | None]:
    """Store each content as a snapshot registered by ``registered_by`` and (``commit``)
    commit them as the current git user, so records can cite them from the next commit
    on. Returns the snapshot names and the commit (None: nothing new to commit)."""
    refs = [store_source(root, data, registered_by=registered_by) for data in contents]
    if not commit:
        return refs, None
    paths = []
    for ref in refs:
        rel = snapshot_relpath(ref)
        paths += [rel, rel + PROVENANCE_SUFFIX]
    count = len(set(refs))
    sha = commit_paths(root, paths, f"convergent: register {count} source snapshot"
                       f"{'s' if count != 1 else ''} (registered by {registered_by})")
    return refs, sha
