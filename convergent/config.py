"""The records repo's config, ``.convergent.toml``: defaults, loading, rendering."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import git

from convergent.errors import RepoError
from convergent.gitops import read_path_at
from convergent.layout import CONFIG_FILE

Config = dict[str, Any]

DEFAULT_CONFIG: Config = {
    "convergent": {"schema": 1},
    "operators": {"allowed": [], "cycle_runners": [], "require_signed": False,
                  "allowed_signers": "", "main_branch": "main"},
    "log": {"segment_max_bytes": 32 * 1024 * 1024, "record_max_bytes": 1024 * 1024},
    "commit": {"every_records": 0, "every_seconds": 0.0},
    "sandbox": {"timeout_s": 10.0, "memory_mb": 512, "cpu_s": 10, "max_processes": 64,
                "max_file_mb": 16, "allow_unisolated": False},
    # The text and functional stages' keys: convergent.decontamination_semantic.Settings
    # (thresholds measured on tests/corpus/contamination, bench/decontamination_semantic.py).
    "decontamination": {"ngram": 13, "benchmarks": ["humaneval"],
                        "shortlist": 5, "shortlist_floor": 0.2,
                        "semantic_threshold": 0.80, "semantic_threshold_prose": 0.65,
                        "lexical_threshold": 0.55, "lexical_threshold_prose": 0.65,
                        "functional": "shortlist", "functional_build": "sweep",
                        "embeddings": "auto", "embeddings_build": "required"},
    "base": {"model": "tiny"},
    "members": {"max_new_tokens": 96, "timeout_s": 900.0},
    "levers": {"allow_reported": False, "rag_k": 2},
    "cycle": {"autostart": True, "backend": "auto", "external": ["stdlib"],
              "external_share": 0.2, "seed": 0,
              "max_steps": 30, "batch_size": 4, "learning_rate": 0.0002, "lora_r": 8,
              "lora_alpha": 16},
    "tripwire": {"holdout": "default", "holdout_sha256": "", "pass_rate_tolerance": 0.0,
                 "diversity_tolerance": 0.05, "shrink_streak": 2,
                 "max_new_tokens": 48, "embeddings": True},
    "distillation": {"state": "dormant"},
}


def _merge(base: Config, override: Config) -> Config:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_config(text: str, where: str = CONFIG_FILE) -> Config:
    """The raw TOML table of a config text (no defaults merged)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RepoError(f"{where}: not valid TOML: {exc}") from None


def resolve_config(table: Config) -> Config:
    """A raw config table over the defaults."""
    return _merge(DEFAULT_CONFIG, table)


def config_at(repo: git.Repo, rev: str) -> Config | None:
    """The resolved config committed at ``rev`` (None: no config file there)."""
    text = read_path_at(repo, rev, CONFIG_FILE)
    if text is None:
        return None
    return resolve_config(parse_config(text.decode("utf-8", "replace"), f"{rev}:{CONFIG_FILE}"))


def committed_config(root: Path) -> Config:
    """The resolved config committed at HEAD: what on-merge and the cycle act on (the
    working tree's file is anyone's to edit)."""
    from convergent.gitops import head_sha, open_repo

    repo = open_repo(root)
    head = head_sha(repo)
    config = None if head is None else config_at(repo, head)
    if config is None:
        raise RepoError(f"{root}: no {CONFIG_FILE} is committed at HEAD; commit it (or run "
                        f"`convergent init {root}`)")
    return config


def load_config(root: Path) -> Config:
    """The resolved config of a records repo: its file over the defaults."""
    path = root / CONFIG_FILE
    if not path.exists():
        raise RepoError(f"{root}: not a records repo ({CONFIG_FILE} missing); "
                        f"run `convergent init {root}`")
    return resolve_config(parse_config(path.read_text("utf-8"), str(path)))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def render_config(config: Config) -> str:
    """TOML text for a two-level config (tables of scalars and lists)."""
    lines = ["# convergent records repo config; reviewed like code.", ""]
    for table, values in config.items():
        lines.append(f"[{table}]")
        lines.extend(f"{key} = {_toml_value(val)}" for key, val in values.items())
        lines.append("")
    return "\n".join(lines)


def set_config_value(root: Path, table: str, key: str, value: Any) -> None:
    """Set ``key`` of ``[table]`` in the repo's config file in place: the line that holds
    it is rewritten, every other line (comments, order) is kept."""
    path = root / CONFIG_FILE
    lines = path.read_text("utf-8").splitlines()
    current = ""
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            current = stripped[1:-1].strip()
        elif current == table and stripped.split("=", 1)[0].strip() == key \
                and "=" in stripped:
            lines[i] = f"{key} = {_toml_value(value)}"
            path.write_text("\n".join(lines) + "\n", "utf-8")
            return
    raise RepoError(f"{CONFIG_FILE} has no {key} line under [{table}]")


def default_config() -> Config:
    return copy.deepcopy(DEFAULT_CONFIG)
