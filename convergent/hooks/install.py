"""Install convergent's git hooks into a records repo (``convergent init`` calls this)."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

from convergent.gitops import open_repo

HOOKS = ("pre-commit", "pre-merge-commit", "pre-push", "post-merge", "reference-transaction")
MARKER = "# installed by convergent"
FRAMEWORK_CONFIG = ".pre-commit-config.yaml"
# git runs reference-transaction hooks from 2.28 on.
REF_HOOK_GIT = (2, 28)


def hook_script(name: str, main_branch: str = "main") -> str:
    python = shlex.quote(sys.executable)
    run = f'exec {python} -m convergent.hooks.git_hook {name} "$@"\n'
    if name != "reference-transaction":
        return f"#!/bin/sh\n{MARKER}\n{run}"
    # It fires on every ref update: only the main branch, adapter tags and replace refs
    # (refused) start Python, and only in the "prepared" state, the one that can still
    # refuse (the pattern may also match a longer branch name; Python compares exactly).
    ref = shlex.quote(f" refs/heads/{main_branch}")
    return (f"#!/bin/sh\n{MARKER}\n"
            '[ "$1" = prepared ] || exit 0\n'
            "input=$(cat)\n"
            'case "$input" in\n'
            f"  *{ref}*|*' refs/tags/adapter/'*|*' refs/replace/'*) ;;\n"
            "  *) exit 0 ;;\n"
            "esac\n"
            f'printf \'%s\\n\' "$input" | {run}')


def git_version(root: Path) -> tuple[int, ...]:
    out = open_repo(root).git.version()
    match = re.search(r"(\d+)\.(\d+)", out)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def install_git_hooks(root: Path, main_branch: str = "main") -> list[str]:
    """Write our hooks; never overwrite a hook someone else installed.

    A repo that uses the pre-commit framework keeps its own pre-commit hook (the gates
    run there through ``.pre-commit-hooks.yaml``); we add the others.
    """
    repo = open_repo(root)
    hooks_dir = Path(repo.git_dir) / "hooks"
    hooks_dir.mkdir(exist_ok=True)
    installed = []
    for name in HOOKS:
        if name == "pre-commit" and (root / FRAMEWORK_CONFIG).exists():
            continue
        if name == "reference-transaction" and git_version(root) < REF_HOOK_GIT:
            continue
        path = hooks_dir / name
        if path.exists() and MARKER not in path.read_text(errors="replace"):
            continue
        path.write_text(hook_script(name, main_branch))
        path.chmod(0o755)
        installed.append(name)
    return installed
