"""The adapter registry: content-addressed adapters in Git, promotion commits and tags.

An adapter lives under ``data/convergence/adapters/<sha256>/`` (its files plus
``metadata.json``). A promotion is a commit that changes only ``ACTIVE`` and carries
an annotated tag ``adapter/v<N>`` whose message is the metadata as JSON, so
``git revert <promotion>`` restores the previous adapter without touching the log.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from convergent.adapter_hash import adapter_sha256
from convergent.adapters import METADATA, TAG_PREFIX, RegistryError, adapter_tags
from convergent.gitops import commit_paths, open_repo
from convergent.layout import ACTIVE_FILE, ADAPTERS_DIR


def adapter_path(root: Path, sha: str) -> Path:
    return root / ADAPTERS_DIR / sha.removeprefix("sha256:")


def register_adapter(root: Path, adapter_dir: Path, metadata: dict[str, Any]) -> str:
    """Copy an adapter into the registry under its sha256; returns ``sha256:<hex>``."""
    sha = adapter_sha256(adapter_dir)
    target = adapter_path(root, sha)
    if target.exists():
        return f"sha256:{sha}"
    target.parent.mkdir(parents=True, exist_ok=True)
    # Copy beside the target and rename: a killed copy never looks like a registered adapter.
    staging = Path(tempfile.mkdtemp(prefix=f".{sha[:12]}.", dir=target.parent))
    try:
        shutil.copytree(adapter_dir, staging, dirs_exist_ok=True)
        (staging / METADATA).write_text(json.dumps(dict(metadata, adapter=f"sha256:{sha}"),
                                                   indent=1, sort_keys=True) + "\n", "utf-8")
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return f"sha256:{sha}"


def promote(root: Path, sha: str, metadata: dict[str, Any]) -> tuple[str, str]:
    """Commit ``ACTIVE = sha`` alone and tag it ``adapter/v<N>``; returns (commit, tag)."""
    repo = open_repo(root)
    version = len(adapter_tags(repo)) + 1
    tag_name = f"{TAG_PREFIX}{version}"
    (root / ACTIVE_FILE).write_text(sha + "\n", "utf-8")
    commit = commit_paths(root, [ACTIVE_FILE],
                          f"convergent: promote {tag_name} ({sha[:19]})\n\n"
                          + json.dumps(metadata, indent=1, sort_keys=True))
    if commit is None:
        raise RegistryError(f"{sha} is already the active adapter")
    repo.create_tag(tag_name, ref=commit,
                    message=json.dumps(dict(metadata, tag=tag_name), indent=1, sort_keys=True))
    return commit, tag_name
