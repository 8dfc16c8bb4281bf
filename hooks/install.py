"""Install convergent's git hooks into a records repo (``convergent init`` calls this)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from convergent.gitops import open_repo

HOOKS = ("pre-commit", "pre-merge-commit", "pre-push", "post-merge")
MARKER = "# installed by convergent"
FRAMEWORK_CONFIG = ".pre-commit-config.yaml"


def hook_script(name: str) -> str:
    python = shlex.quote(sys.executable)
    return (f"#!/bin/sh\n{MARKER}\n"
            f'exec {python} -m convergent.hooks.git_hook {name} "$@"\n')


def install_git_hooks(root: Path) -> list[str]:
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
        path = hooks_dir / name
        if path.exists() and MARKER not in path.read_text(errors="replace"):
            continue
        path.write_text(hook_script(name))
        path.chmod(0o755)
        installed.append(name)
    return installed
