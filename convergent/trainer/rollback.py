"""``convergent revert``: roll the active adapter back with one ``git revert``.

The promotion commit changes only ``ACTIVE``, so reverting it restores the previous
adapter and leaves the log alone; a ``revert`` record follows in its own commit. The
revert commit goes through the same gates as any commit (the reference-transaction hook
checks it). Only a genuine promotion is ever reverted: a tag that is moved or forged
(:func:`convergent.adapters.tag_problems_of`) is refused, and so is reverting a rollback
(that would be a re-promotion, which only an operator's own commit may make).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import git

from convergent.adapters import (
    RegistryError,
    adapter_tags,
    main_ref,
    read_active,
    tag_metadata,
    tag_problems_of,
)
from convergent.config import load_config
from convergent.gitops import commit_log, open_repo, repo_lock
from convergent.layout import ACTIVE_FILE
from convergent.recorder import Recorder


def _reverted(repo: git.Repo) -> set[str]:
    """Promotion commits that a later commit on this branch reverted."""
    done = set()
    for commit in repo.iter_commits("HEAD"):
        message = str(commit.message)
        marker = "This reverts commit "
        if marker in message:
            done.add(message.split(marker, 1)[1].split(".", 1)[0].strip())
    return done


def promotion_to_revert(root: Path, repo: git.Repo, active: str, tag_name: str | None
                        ) -> git.TagReference:
    """The named tag, or the newest unreverted promotion of the active adapter; refused
    unless the tag points at the promotion commit its metadata describes."""
    tag = _chosen_tag(repo, active, tag_name)
    config = load_config(root)
    problems = tag_problems_of(root, config, tag.name, tag.tag.hexsha if tag.tag else
                               tag.commit.hexsha, main_ref(repo, config))
    if problems:
        raise RegistryError(f"refusing to revert {tag.name}: only a promotion commit is "
                            "reverted, and " + "; ".join(problems))
    return tag


def _chosen_tag(repo: git.Repo, active: str, tag_name: str | None) -> git.TagReference:
    tags = adapter_tags(repo)
    if tag_name is not None:
        for tag in tags:
            if tag.name == tag_name:
                return tag
        raise RegistryError(f"no adapter tag {tag_name!r}; known: "
                            f"{', '.join(t.name for t in tags) or 'none'}")
    reverted = _reverted(repo)
    for tag in reversed(tags):
        if tag.commit.hexsha in reverted:
            continue
        try:
            if tag_metadata(tag).get("adapter") == active:
                return tag
        except RegistryError:
            continue  # a hand-made tag is never the default
    raise RegistryError(f"the active adapter is {active}: no promotion of it to revert")


def revert(root: Path, tag_name: str | None = None) -> dict[str, Any]:
    """``git revert`` the promotion, then record it; returns the ``revert`` record."""
    root = Path(root).resolve()
    repo = open_repo(root)
    with repo_lock(root):
        if repo.is_dirty(path=ACTIVE_FILE):
            raise RegistryError(f"{ACTIVE_FILE} has uncommitted changes")
        active = read_active(root)
        tag = promotion_to_revert(root, repo, active, tag_name)
        try:
            repo.git.revert("--no-edit", tag.commit.hexsha)
        except git.GitCommandError as exc:
            if (Path(repo.git_dir) / "REVERT_HEAD").exists():  # leave no half-done revert
                repo.git.revert("--abort")
            raise RegistryError(f"git revert of {tag.name} refused:\n{exc.stderr.strip()}"
                                ) from None
        revert_commit = repo.head.commit.hexsha
    restored = read_active(root)
    with Recorder(root, verify=False) as recorder:
        record = recorder.emit({
            "kind": "revert", "claim": f"revert {tag.name}: active adapter {active[:19]} -> "
                                       f"{restored[:19]}",
            "evidence": {"type": "revert", "tag": tag.name, "promotion": tag.commit.hexsha,
                         "revert_commit": revert_commit, "from": active, "to": restored},
            "confidence": 1.0,
            "source": {"emitter": "convergent/revert", "model": "none", "origin": "operator"},
        })
    commit_log(root, f"convergent: record the revert of {tag.name}")
    return record
