"""Git plumbing the rest of the package shares: commits, blobs, diffs (GitPython)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import git

from convergent.errors import RepoError
from convergent.layout import RECORDS_DIR, SOURCES_DIR, local_dir

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
TRACKED_DATA = (RECORDS_DIR, SOURCES_DIR)
REPLACE_REFS = "refs/replace/"
REGULAR_FILE = "100644"
REGULAR_FILES = (REGULAR_FILE, "100755", "000000")  # 000000: the path is removed
# History as the commits spell it: replace refs and grafts let anyone with write access to a
# clone swap a commit (a forged approval merge, an author) or its parents (a bad commit
# hidden from `check --all`) for every git command that honors them. Ours never do.
# (A grafts file that cannot exist: git would warn that /dev/null is a deprecated one.)
HONEST_HISTORY_ENV = {"GIT_NO_REPLACE_OBJECTS": "1",
                      "GIT_GRAFT_FILE": os.path.join(os.devnull, "no-grafts")}


def open_repo(root: Path) -> git.Repo:
    """The repository at ``root``; every git call through it (GitPython's object reads
    included) ignores replace refs and grafts (:data:`HONEST_HISTORY_ENV`)."""
    try:
        repo = git.Repo(root)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise RepoError(f"{root}: not a git repository") from None
    repo.git.update_environment(**HONEST_HISTORY_ENV)
    return repo


def history_rewrites(repo: git.Repo) -> list[tuple[str, str]]:
    """(where, why) for what in this clone rewrites history for other git commands: replace
    refs and a grafts file (ours ignore both; ``check`` names them so nobody is fooled)."""
    problems = []
    out = repo.git.for_each_ref("--format=%(refname)", REPLACE_REFS)
    for ref in out.split():
        problems.append((ref, "a replace ref rewrites history for every git command that "
                         "honors it; convergent ignores it, remove it with `git replace -d`"))
    grafts = Path(repo.common_dir) / "info" / "grafts"
    if grafts.exists():
        problems.append((".git/info/grafts", "grafts rewrite the parents of commits for every "
                         f"git command that honors them; convergent ignores them, remove "
                         f"{grafts}"))
    return problems


@contextmanager
def repo_lock(root: Path, name: str = "git.lock") -> Iterator[None]:
    """Serialize our own git writes in this clone across processes."""
    fd = os.open(local_dir(root) / name, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def head_sha(repo: git.Repo) -> str | None:
    try:
        return repo.head.commit.hexsha
    except ValueError:  # no commits yet
        return None


def commit_paths(root: Path, paths: list[str], message: str | Callable[[git.Repo], str]
                 ) -> str | None:
    """Stage ``paths`` and commit them (hooks run); None when nothing changed.

    ``message`` may be a function of the repo, called once the paths are staged.
    """
    repo = open_repo(root)
    with repo_lock(root):
        existing = [p for p in paths if (root / p).exists()]
        if existing:
            repo.git.add("--", *existing)
        if not repo.git.diff("--cached", "--name-only", "--", *paths).strip():
            return None
        text = message(repo) if callable(message) else message
        repo.git.commit("-q", "-m", text, "--", *paths)
        return repo.head.commit.hexsha


def commit_message(root: Path, message: str, *, sign: bool = False) -> str:
    """An empty commit holding only ``message`` (hooks run), as the current git user;
    ``sign``: ``-S`` with git's configured signing key. Returns its sha."""
    repo = open_repo(root)
    with repo_lock(root):
        try:
            repo.git.commit("-q", "--allow-empty", "--only", *(["-S"] if sign else []), "-m",
                            message)
        except git.GitCommandError as exc:
            raise RepoError(f"commit refused:\n{(exc.stderr or '').strip()}") from None
        return repo.head.commit.hexsha


def author_identity(repo: git.Repo) -> str:
    """``Name <email>`` git would write as the author of the next commit (environment
    variables such as ``GIT_AUTHOR_NAME`` included)."""
    ident = repo.git.var("GIT_AUTHOR_IDENT")
    return ident[:ident.rindex(">") + 1]


def commit_log(root: Path, message: str | None = None) -> str | None:
    """Commit what was appended to the log (and new source snapshots) since the last commit."""
    return commit_paths(root, list(TRACKED_DATA), message or _records_message)


def _records_message(repo: git.Repo) -> str:
    added = _staged_line_count(repo)
    return f"convergent: record {added} appended line{'s' if added != 1 else ''}"


def _staged_line_count(repo: git.Repo) -> int:
    out = repo.git.diff("--cached", "--numstat", "--", RECORDS_DIR)
    total = 0
    for row in out.splitlines():
        added, _, _ = row.split("\t", 2)
        total += int(added) if added.isdigit() else 0
    return total


@dataclass(frozen=True)
class RawChange:
    """One entry of ``git diff --raw``: path, old/new blob shas (None when absent) and the
    new side's mode (``100644``; ``120000`` is a symbolic link, ``160000`` a submodule)."""

    path: str
    old_sha: str | None
    new_sha: str | None
    new_mode: str = REGULAR_FILE


_NULL_SHA = "0" * 40


def parse_raw_diff(out: str) -> list[RawChange]:
    """Parse ``git diff-tree/diff-index -r --raw -z --no-renames`` output."""
    parts = out.split("\0")
    changes: list[RawChange] = []
    i = 0
    while i + 1 < len(parts):
        meta, path = parts[i], parts[i + 1]
        i += 2
        if not meta.startswith(":"):
            continue
        _, new_mode, old_sha, new_sha, _status = meta[1:].split(" ")
        changes.append(RawChange(path, None if old_sha == _NULL_SHA else old_sha,
                                 None if new_sha == _NULL_SHA else new_sha, new_mode))
    return changes


def diff_trees(repo: git.Repo, old: str, new: str) -> list[RawChange]:
    out = repo.git.diff_tree("-r", "--raw", "-z", "--no-renames", old, new)
    return parse_raw_diff(out)


def diff_staged(repo: git.Repo) -> list[RawChange]:
    """Staged changes: the index against HEAD (or the empty tree before the first commit)."""
    base = head_sha(repo) or EMPTY_TREE
    out = repo.git.diff_index("--cached", "-r", "--raw", "-z", "--no-renames", base)
    return parse_raw_diff(out)


def read_blob(repo: git.Repo, sha: str | None) -> bytes | None:
    if sha is None:
        return None
    return repo.odb.stream(bytes.fromhex(sha)).read()


def read_path_at(repo: git.Repo, rev: str, path: str) -> bytes | None:
    """A file's bytes at a revision, None when absent there."""
    try:
        blob = repo.commit(rev).tree / path
    except KeyError:
        return None
    return blob.data_stream.read()


def is_ancestor(repo: git.Repo, older: str, newer: str) -> bool:
    try:
        repo.git.merge_base("--is-ancestor", older, newer)
        return True
    except git.GitCommandError:
        return False


def rev_list(repo: git.Repo, spec: str) -> list[str]:
    """Commits of a range, oldest first."""
    out = repo.git.rev_list("--reverse", "--topo-order", spec)
    return out.split()

