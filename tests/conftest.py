"""Shared fixtures: an isolated git identity and a fresh records repo per test."""

from __future__ import annotations

from pathlib import Path

import pytest

OPERATOR = "Ada Operator <ada@example.com>"
# What `convergent check` says on stderr while approvals need no signature.
UNSIGNED_WARNING = ("warning: approvals are unsigned ([operators] require_signed = false): any "
                    "committer can spoof an operator by writing their name; require signed "
                    "merges (see docs/operators.md, 'Signed approvals')\n")


@pytest.fixture(autouse=True)
def git_identity(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
                 ) -> None:
    """Point git's global config at a temp file so tests never read the user's."""
    home = tmp_path_factory.getbasetemp() / "gitconfig"
    cfg = home / ".gitconfig"
    if not cfg.exists():
        home.mkdir(exist_ok=True)
        cfg.write_text("[user]\n\tname = Test Agent\n\temail = agent@example.com\n"
                       "[init]\n\tdefaultBranch = main\n[commit]\n\tgpgsign = false\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(cfg))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME",
                "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def records_repo(tmp_path: Path) -> Path:
    from convergent.repo import init_repo

    return init_repo(tmp_path / "records", operators=[OPERATOR])
