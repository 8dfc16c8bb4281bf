"""The weights policy, in one place: who may change ``ACTIVE``, what a registered adapter
is, and which commit an ``adapter/vN`` tag may name.

``ACTIVE`` changes only by

* a cycle's **promotion** commit: a commit that changes only ``ACTIVE``, whose parent
  appended the ``cycle`` record that promoted that very adapter (and its ``promotion``
  record), for a proposal whose approval Git backs, and whose registered files hash to
  the sha256 the adapter is named by;
* a **rollback** along the promoted chain: back to an adapter (or ``base``) that the
  current one was promoted over (:func:`active_chain`); rolling back is always allowed;
* an **operator's own commit** (signed, when ``[operators] require_signed``):
  re-promoting an earlier adapter is a weight change, so only an operator makes it.

And whichever of these it is, the commit is an operator's own or a listed cycle
runner's (:func:`convergent.approval.weight_commit_problems`, the ``adapters`` gate): so is
every commit that registers an adapter or appends a ``cycle`` or ``promotion`` record.

A merge may also take ``ACTIVE`` as it is on one of its merged parents (the commits that
changed it there are checked on their own). Files under ``adapters/<sha256>/`` hash to
their folder name (:mod:`convergent.adapter_hash`, ``metadata.json`` aside) and never
change once registered. An annotated tag ``adapter/v<N>`` whose metadata names adapter
X points at X's promotion commit on the main line; versions follow that line's order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git

from convergent.adapter_hash import adapter_files_sha256, tree_files
from convergent.approval import (
    approval_records,
    main_branch,
    operator_commit_problems,
    pending_commit_problems,
    record_problems,
    weight_commit_problems,
)
from convergent.changes import appended_records
from convergent.config import Config
from convergent.errors import ConvergentError
from convergent.gitops import diff_trees, is_ancestor, open_repo, read_path_at
from convergent.history import records_at
from convergent.layout import ACTIVE_FILE, ADAPTERS_DIR
from convergent.records import typed

TAG_PREFIX = "adapter/v"
METADATA = "metadata.json"
BASE = "base"
_SHA_REF = re.compile(r"sha256:([0-9a-f]{64})")
_TAG_NAME = re.compile(re.escape(TAG_PREFIX) + r"[1-9][0-9]*")


class RegistryError(ConvergentError):
    """The registry, a tag or the active adapter is not in the state an operation needs."""


def parse_active(data: bytes | None) -> str:
    """The value of an ``ACTIVE`` file's content (absent: ``base``)."""
    return BASE if data is None else data.decode("utf-8", "replace").strip()


def read_active(root: Path) -> str:
    """``ACTIVE`` as the working tree has it."""
    path = Path(root) / ACTIVE_FILE
    return parse_active(path.read_bytes() if path.exists() else None)


def active_at(repo: git.Repo, rev: str) -> str:
    """``ACTIVE`` as committed at ``rev``."""
    return parse_active(read_path_at(repo, rev, ACTIVE_FILE))


def adapter_folder(sha: str) -> str:
    return f"{ADAPTERS_DIR}/{sha.removeprefix('sha256:')}"


def value_problem(value: str) -> str | None:
    if value == BASE or _SHA_REF.fullmatch(value):
        return None
    return f"ACTIVE holds {value[:80]!r}: it is one line, 'base' or 'sha256:<64 hex>'"


def folder_problems(repo: git.Repo, rev: str | None, name: str) -> list[str]:
    """Why ``adapters/<name>/`` at ``rev`` (None: the index) is not a registered adapter."""
    folder = f"{ADAPTERS_DIR}/{name}"
    if not re.fullmatch(r"[0-9a-f]{64}", name):
        return [f"{folder}/ is not named by a sha256: adapters live in "
                f"{ADAPTERS_DIR}/<sha256>/"]
    files = tree_files(repo, rev, folder)
    if not files:
        return [f"sha256:{name} is not a registered adapter: {folder}/ holds nothing"]
    metadata = files.pop(METADATA, None)
    problems = []
    actual = adapter_files_sha256(files)
    if actual != name:
        problems.append(f"{folder}/ hashes to {actual}, not to its name: a registered "
                        "adapter's files are never changed or replaced")
    try:
        meta = json.loads(b"".join(metadata.chunks())) if metadata else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        meta = None
    if not isinstance(meta, dict) or meta.get("adapter") != f"sha256:{name}":
        problems.append(f"{folder}/{METADATA} does not describe adapter sha256:{name}")
    return problems


def active_chain(repo: git.Repo, rev: str) -> list[str]:
    """The promoted chain at ``rev``: ``base``, then each adapter promoted over the one
    before it, ending with the active one. A rollback pops adapters off its end."""
    commits = repo.git.rev_list("--first-parent", "--reverse", rev, "--", ACTIVE_FILE).split()
    chain = [BASE]
    for commit in commits:
        value = active_at(repo, commit)
        if value in chain:
            del chain[chain.index(value) + 1:]
        else:
            chain.append(value)
    return chain


def promotion_source_problems(root: Path, config: Config, parent: str, adapter: str
                              ) -> list[str]:
    """Why a commit on top of ``parent`` that sets ``ACTIVE = adapter`` is not that
    adapter's promotion: ``parent`` must append the cycle that promoted it, for an
    approval that Git backs."""
    repo = open_repo(root)
    added = typed(appended_records(repo, parent))
    cycle = next((r for r in added if r.kind == "cycle"
                  and r.evidence.get("outcome") == "promoted"
                  and r.evidence.get("adapter") == adapter), None)
    if cycle is None:
        return [f"its parent {parent[:12]} does not append a cycle that promoted {adapter[:19]}"]
    cycle_id = cycle.raw.get("id")
    if not any(r.kind == "promotion" and r.evidence.get("cycle") == cycle_id for r in added):
        return [f"cycle {str(cycle_id)[:19]} has no promotion record"]
    evidence = cycle.evidence
    approval = approval_records(records_at(repo, parent)).get(str(evidence.get("proposal")))
    if approval is None or approval.get("id") != evidence.get("approval"):
        return [f"cycle {str(cycle_id)[:19]} names approval "
                f"{evidence.get('approval')}, which is not its proposal's approval"]
    return [f"its cycle's approval: {p}" for p in record_problems(root, approval, parent)]


def promotion_commit_problems(root: Path, config: Config, commit: str, adapter: str
                              ) -> list[str]:
    """Why ``commit`` is not the promotion commit of ``adapter``."""
    repo = open_repo(root)
    obj = repo.commit(commit)
    if len(obj.parents) != 1:
        return [f"commit {commit[:12]} is not a promotion: it has {len(obj.parents)} parents"]
    parent = obj.parents[0].hexsha
    changed = [c.path for c in diff_trees(repo, parent, commit)]
    if changed != [ACTIVE_FILE]:
        return [f"commit {commit[:12]} is not a promotion: it changes "
                f"{', '.join(changed) or 'nothing'}, not ACTIVE alone"]
    if active_at(repo, commit) != adapter:
        return [f"commit {commit[:12]} sets ACTIVE to {active_at(repo, commit)[:19]}, not "
                f"{adapter[:19]}"]
    return [*weight_commit_problems(root, commit),
            *promotion_source_problems(root, config, parent, adapter)]


@dataclass(frozen=True)
class ActiveChange:
    """A change of ``ACTIVE``: by a commit, or by the staged index (``commit`` None)."""

    old: str
    new: str
    parents: tuple[str, ...]
    only_active: bool
    commit: str | None
    author: str


def change_problems(root: Path, config: Config, change: ActiveChange) -> list[str]:
    """Why this change of ``ACTIVE`` is refused (empty: it is allowed; see the module)."""
    if change.new == change.old:
        return []
    problem = value_problem(change.new)
    if problem:
        return [problem]
    repo = open_repo(root)
    if change.new != BASE:
        problems = folder_problems(repo, change.commit, change.new.removeprefix("sha256:"))
        if problems:
            return problems
    merged = [active_at(repo, p) for p in change.parents[1:]]
    if change.new in merged:
        return []
    first = change.parents[0] if change.parents else None
    chain = active_chain(repo, first) if first else [BASE]
    if change.new in chain[:-1]:
        return []  # a rollback along the promoted chain
    if first is None or len(change.parents) > 1 or not change.only_active:
        promotion = ["it is not a commit that changes ACTIVE alone on top of its cycle"]
    else:
        promotion = promotion_source_problems(root, config, first, change.new)
    if not promotion:
        return []
    if change.commit is not None:  # judged by the policy committed before it
        operator = operator_commit_problems(root, change.commit)
    else:  # staged: the signature is checked on the commit (reference-transaction, check)
        operator = pending_commit_problems(root, config)
    if not operator:
        return []
    return [f"ACTIVE -> {change.new[:19]} is refused: not a cycle's promotion ("
            f"{'; '.join(promotion)}), not a rollback along the promoted chain "
            f"({' -> '.join(v[:19] for v in chain)}), and not an operator's own commit "
            f"({'; '.join(operator)})"]


def change_of_commit(repo: git.Repo, commit: str) -> ActiveChange:
    obj = repo.commit(commit)
    parents = tuple(p.hexsha for p in obj.parents)
    changed = [c.path for c in diff_trees(repo, parents[0], commit)] if parents else []
    return ActiveChange(old=active_at(repo, parents[0]) if parents else BASE,
                        new=active_at(repo, commit), parents=parents,
                        only_active=changed == [ACTIVE_FILE], commit=commit,
                        author=f"{obj.author.name} <{obj.author.email}>")


def active_problems(root: Path, config: Config) -> list[str]:
    """Why the working tree's ``ACTIVE`` is not a legitimately active adapter (empty: it
    is): committed, registered, and set by a commit the rules allow."""
    repo = open_repo(root)
    value = read_active(root)
    try:
        committed = active_at(repo, "HEAD")
    except (ValueError, git.BadName):  # no commit yet
        committed = BASE
    if value != committed:
        return [f"ACTIVE says {value[:19]} but {committed[:19]} is committed: an uncommitted "
                "change activates nothing"]
    problem = value_problem(value)
    if problem or value == BASE:
        return [problem] if problem else []
    problems = folder_problems(repo, "HEAD", value.removeprefix("sha256:"))
    last = repo.git.rev_list("--first-parent", "-1", "HEAD", "--", ACTIVE_FILE).strip()
    if not problems and last:
        problems = [*weight_commit_problems(root, last),
                    *change_problems(root, config, change_of_commit(repo, last))]
    return problems


def rewind_problems(repo: git.Repo, current: str, new: str, new_commits: set[str]
                    ) -> list[str]:
    """Why moving the main branch from ``current`` to ``new`` (not a fast-forward: a reset,
    a rebase) changes the weights unlawfully. Allowed when ``ACTIVE`` stays, when the
    commit that last set it is one of ``new_commits`` (checked on its own), or when the
    move is a rollback along ``current``'s promoted chain."""
    was, now = active_at(repo, current), active_at(repo, new)
    if was == now:
        return []
    last = repo.git.rev_list("--first-parent", "-1", new, "--", ACTIVE_FILE).strip()
    chain = active_chain(repo, current)
    if last in new_commits or now in chain:
        return []
    return [f"moving the main branch from {current[:12]} to {new[:12]} (not a fast-forward) "
            f"would change ACTIVE from {was[:19]} to {now[:19]}, which is not a rollback "
            f"along the promoted chain ({' -> '.join(v[:19] for v in chain)})"]


def adapter_tags(repo: git.Repo) -> list[git.TagReference]:
    """``adapter/v<N>`` tags in version order."""
    tags = [t for t in repo.tags if t.name.startswith(TAG_PREFIX)
            and t.name[len(TAG_PREFIX):].isdigit()]
    return sorted(tags, key=lambda t: int(t.name[len(TAG_PREFIX):]))


def tag_metadata(tag: git.TagReference) -> dict[str, Any]:
    """The adapter metadata an annotated ``adapter/vN`` tag carries."""
    if tag.tag is None:
        raise RegistryError(f"{tag.name} is a lightweight tag, not an annotated one with the "
                         "adapter's metadata")
    try:
        value = json.loads(tag.tag.message)
    except json.JSONDecodeError:
        raise RegistryError(f"{tag.name}: tag message is not the adapter metadata JSON"
                            ) from None
    if not isinstance(value, dict):
        raise RegistryError(f"{tag.name}: tag message is not the adapter metadata JSON")
    return value


def tag_problems_of(root: Path, config: Config, name: str, sha: str, main: str | None
                    ) -> list[str]:
    """Why the tag ``name`` (tag object or commit ``sha``) is not a genuine adapter tag:
    annotated, its metadata naming it and an adapter, pointing at that adapter's
    promotion commit on the main line (``main``: the main branch ref, None: not checked)."""
    if not _TAG_NAME.fullmatch(name):
        return [f"{name} is not an adapter tag name ({TAG_PREFIX}<N>)"]
    repo = open_repo(root)
    if repo.git.cat_file("-t", sha) != "tag":
        return [f"{name} is a lightweight tag: adapter tags are annotated, with the "
                "adapter's metadata, and made by the cycle's promotion"]
    try:
        meta = json.loads(git.TagObject(repo, bytes.fromhex(sha)).message)
        commit = repo.git.rev_parse("--verify", f"{sha}^{{commit}}")
    except (json.JSONDecodeError, git.GitCommandError):
        return [f"{name}: not a tag of a commit with the adapter metadata JSON as its message"]
    if not isinstance(meta, dict) or meta.get("tag") != name or not isinstance(
            meta.get("adapter"), str):
        return [f"{name}: its metadata does not name this tag and an adapter"]
    if main is not None and not is_ancestor(repo, commit, main):
        return [f"{name} points at {commit[:12]}, which is not on the main line"]
    problems = promotion_commit_problems(root, config, commit, meta["adapter"])
    return [f"{name} does not point at the promotion of {meta['adapter'][:19]}: {p}"
            for p in problems]


def main_ref(repo: git.Repo, config: Config) -> str | None:
    """The main branch's ref, when it exists."""
    ref = f"refs/heads/{main_branch(config)}"
    return ref if repo.git.rev_parse("--verify", "-q", ref, with_exceptions=False) else None


def tag_problems(root: Path, config: Config) -> Iterable[tuple[str, str]]:
    """(tag, reason) for every ``adapter/`` tag that is moved, forged or out of order."""
    repo = open_repo(root)
    main = main_ref(repo, config)
    good: list[tuple[int, str, str]] = []
    out = repo.git.for_each_ref("--format=%(refname:strip=2) %(objectname)", "refs/tags/adapter/")
    for row in out.splitlines():
        name, sha = row.rsplit(" ", 1)
        problems = tag_problems_of(root, config, name, sha, main)
        for problem in problems:
            yield name, problem
        if not problems:
            commit = repo.git.rev_parse(f"{sha}^{{commit}}")
            good.append((int(name[len(TAG_PREFIX):]), name, commit))
    good.sort()
    for (_, earlier, a), (_, later, b) in zip(good, good[1:], strict=False):
        if a == b or not is_ancestor(repo, a, b):
            yield later, (f"{later} does not come after {earlier} on the main line: each "
                          "promotion gets the next version")
