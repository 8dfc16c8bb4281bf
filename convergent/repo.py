"""Make or upgrade a records repo (``convergent init``), idempotently."""

from __future__ import annotations

from pathlib import Path

import git

from convergent.config import Config, default_config, parse_config, render_config
from convergent.errors import RepoError
from convergent.gitops import commit_paths, open_repo
from convergent.holdout import default_holdout_sha256
from convergent.layout import (
    ACTIVE_FILE,
    ADAPTERS_DIR,
    CONFIG_FILE,
    GITATTRIBUTES,
    LOCAL_DIR,
    RECORDS_DIR,
    SOURCES_DIR,
)
from convergent.organism_tasks import ORGANISM, organism_repo_config

GITATTRIBUTES_LINES = (
    "# convergent: concurrent branches appending to one segment merge without conflict",
    f"{RECORDS_DIR}/*.jsonl merge=union",
    "# convergent: adapters are binary; with git-lfs installed, track them with:",
    f"#   git lfs track '{ADAPTERS_DIR}/**/*.safetensors'",
    f"{ADAPTERS_DIR}/**/*.safetensors -diff -merge binary",
)
GITIGNORE_LINE = f"/{LOCAL_DIR}/"


def _ensure_lines(path: Path, lines: tuple[str, ...] | list[str]) -> bool:
    """Append the lines ``path`` lacks; True when it changed."""
    existing = path.read_text("utf-8").splitlines() if path.exists() else []
    missing = [line for line in lines if line not in existing]
    if not missing:
        return False
    prefix = "" if not existing or path.read_text("utf-8").endswith("\n") else "\n"
    with path.open("a", encoding="utf-8") as fh:
        fh.write(prefix + "\n".join(missing) + "\n")
    return True


def _ensure_config(root: Path, operators: list[str], base: str | None, branch: str | None
                   ) -> None:
    """Write the default config, or add what an older config lacks (never removing)."""
    path = root / CONFIG_FILE
    config: Config = default_config()
    if branch:  # the branch checked out when the repo became a records repo
        config["operators"]["main_branch"] = branch
    if operators:
        config["operators"]["allowed"] = operators
    if base:
        config["base"]["model"] = base
    frozen = _holdout_sha256()
    if frozen:
        config["tripwire"]["holdout_sha256"] = frozen
    if base == ORGANISM:  # the embedded organism: its own frozen hold-out and cycle knobs
        for table, values in organism_repo_config().items():
            config[table].update(values)
    if not path.exists():
        path.write_text(render_config(config), "utf-8")
        return
    current = parse_config(path.read_text("utf-8"), str(path))
    additions = []
    for table, values in config.items():
        if table not in current:
            additions.append(render_config({table: values}).split("\n", 2)[2])
    if operators and set(operators) - set(current.get("operators", {}).get("allowed", [])):
        raise ValueError(f"{path}: add operators by editing [operators] allowed in a reviewed "
                         "commit; init does not rewrite an existing config")
    if base and current.get("base", {}).get("model", base) != base:
        raise ValueError(f"{path}: change the base model by editing [base] model in a "
                         "reviewed commit; init does not rewrite an existing config")
    if additions:
        with path.open("a", encoding="utf-8") as fh:
            fh.write("\n" + "\n".join(additions))


def _holdout_sha256() -> str:
    return default_holdout_sha256()


def init_repo(path: Path, *, operators: list[str] | None = None, base: str | None = None,
              install_hooks: bool = True) -> Path:
    """Make ``path`` a records repo (a new or existing Git repo); safe to run again."""
    root = Path(path).resolve()
    root.mkdir(parents=True, exist_ok=True)
    try:
        repo = open_repo(root)
    except RepoError:
        git.Repo.init(root, initial_branch="main")
        repo = open_repo(root)
    for folder in (RECORDS_DIR, SOURCES_DIR, ADAPTERS_DIR):
        (root / folder).mkdir(parents=True, exist_ok=True)
        keep = root / folder / ".gitkeep"
        if not any((root / folder).iterdir()):
            keep.touch()
    active = root / ACTIVE_FILE
    if not active.exists():
        active.write_text("base\n", "utf-8")
    branch = None if repo.head.is_detached else repo.active_branch.name
    _ensure_config(root, operators or [], base, branch)
    _ensure_lines(root / GITATTRIBUTES, GITATTRIBUTES_LINES)
    _ensure_lines(root / ".gitignore", [GITIGNORE_LINE])
    (root / LOCAL_DIR).mkdir(exist_ok=True)
    if install_hooks:
        from convergent.approval import main_branch
        from convergent.config import load_config
        from convergent.hooks.install import install_git_hooks

        install_git_hooks(root, main_branch(load_config(root)))
    paths = [CONFIG_FILE, GITATTRIBUTES, ".gitignore", ACTIVE_FILE,
             f"{RECORDS_DIR}/.gitkeep", f"{SOURCES_DIR}/.gitkeep", f"{ADAPTERS_DIR}/.gitkeep"]
    commit_paths(root, [p for p in paths if (root / p).exists()],
                 "convergent: init records repo")
    del repo
    return root
