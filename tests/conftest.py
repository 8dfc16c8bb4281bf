"""Shared fixtures: an isolated git identity and a fresh records repo per test."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

OPERATOR = "Ada Operator <ada@example.com>"
# What `convergent check` says on stderr while approvals need no signature.
UNSIGNED_WARNING = ("warning: approvals are unsigned ([operators] require_signed = false): any "
                    "committer can spoof an operator by writing their name; require signed "
                    "merges (see docs/operators.md, 'Signed approvals')\n")


def private_gitconfig(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A global git config of our own: tests never read the user's."""
    home = tmp_path_factory.getbasetemp() / "gitconfig"
    cfg = home / ".gitconfig"
    if not cfg.exists():
        home.mkdir(exist_ok=True)
        cfg.write_text("[user]\n\tname = Test Agent\n\temail = agent@example.com\n"
                       "[init]\n\tdefaultBranch = main\n[commit]\n\tgpgsign = false\n")
    return cfg


@pytest.fixture(autouse=True)
def git_identity(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
                 ) -> None:
    """Point git's global config at a temp file so tests never read the user's."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(private_gitconfig(tmp_path_factory)))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME",
                "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def records_repo(tmp_path: Path) -> Path:
    from convergent.repo import init_repo

    return init_repo(tmp_path / "records", operators=[OPERATOR])


# Someone who is not the demo's operator, as CI environments often set it.
SOMEONE_ELSE = ("Someone Else", "someone@example.org")


@dataclass(frozen=True)
class DemoRun:
    """What `convergent demo DIR --quick` left: its folder, records repo and output."""

    target: Path
    done: subprocess.CompletedProcess[str]

    @property
    def root(self) -> Path:
        return self.target / "records"

    @property
    def operator_key(self) -> Path:
        return self.target / "operator-key" / "id_ed25519"


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """One run of the demo for the whole session (the loop with a real cycle), started with
    the caller's git identity set to someone else in the environment."""
    pytest.importorskip("torch")
    target = tmp_path_factory.mktemp("demo-run") / "demo"
    name, email = SOMEONE_ELSE
    env = dict(os.environ, GIT_CONFIG_GLOBAL=str(private_gitconfig(tmp_path_factory)),
               GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=email,
               GIT_COMMITTER_NAME=name, GIT_COMMITTER_EMAIL=email)
    done = subprocess.run([sys.executable, "-m", "convergent", "demo", str(target), "--quick"],
                          capture_output=True, text=True, timeout=1200, env=env)
    return DemoRun(target, done)
