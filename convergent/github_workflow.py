"""``convergent init --github-workflow``: CI for a records repo on a self-hosted GPU runner.

Pull requests run every gate on their commits (``convergent check --rev-range``): the job
``convergent gates`` is meant to be a *required status check* of the main branch (branch
protection), the server-side way into the main line that local hooks cannot guarantee.
A push to main runs the gates on what was pushed, then ``convergent on-merge``, which
records the approval of a merged proposal and starts its cycle on the runner's GPU (as
``convergent-bot``, which must be listed in ``[operators] cycle_runners``: only an
operator or a listed cycle runner moves weights). One ``concurrency`` group per branch
serializes those jobs, and the approval is pushed before the cycle starts (``--push
origin``), so a merge starts one cycle even when pushes race.
"""

from __future__ import annotations

from pathlib import Path

from convergent.errors import RepoError
from convergent.gitops import commit_paths

WORKFLOW_PATH = ".github/workflows/convergent.yml"

WORKFLOW = """\
# convergent: gates on every PR; on main, approval by merge starts one training cycle.
# Needs a self-hosted runner labelled `gpu` with convergent[train] installed.
# Make "convergent gates" a required status check of main (Settings > Branches > branch
# protection: require status checks, require branches to be up to date, no force pushes,
# no bypass), and protect the tags adapter/*: see docs/operators.md.
# The bot below runs the cycle, so it moves weights: list it in .convergent.toml, in an
# operator's commit: [operators] cycle_runners = ["convergent-bot <convergent-bot@users.
# noreply.github.com>"] (with require_signed = true it must also sign its commits, with a
# key in allowed_signers: git config gpg.format ssh, user.signingkey, commit.gpgsign true).
name: convergent

on:
  pull_request:
  push:
    branches: [main]

concurrency:
  group: convergent-${{ github.ref }}
  cancel-in-progress: false

jobs:
  gates:
    name: convergent gates
    if: github.event_name == 'pull_request'
    runs-on: [self-hosted, gpu]
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0
      - name: every gate on the PR's commits
        run: >-
          convergent check --rev-range
          "${{ github.event.pull_request.base.sha }}..${{ github.event.pull_request.head.sha }}"

  on-merge:
    if: github.event_name == 'push'
    runs-on: [self-hosted, gpu]
    permissions:
      contents: write
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0
          ref: ${{ github.ref }}
      - name: every gate on the pushed commits
        run: |
          if [ "${{ github.event.before }}" = "0000000000000000000000000000000000000000" ]; then
            convergent check --all
          else
            convergent check --rev-range "${{ github.event.before }}..${{ github.sha }}"
          fi
      - name: approval by merge starts the cycle, once
        run: |
          git config user.name "convergent-bot"
          git config user.email "convergent-bot@users.noreply.github.com"
          convergent on-merge --push origin
      - name: publish the cycle's commits and its adapter tag
        run: git push --follow-tags origin "HEAD:${{ github.ref_name }}"
"""


def write_github_workflow(root: Path) -> Path:
    """Write and commit the workflow; an existing, edited one is left alone."""
    path = Path(root) / WORKFLOW_PATH
    if path.exists():
        if path.read_text("utf-8") != WORKFLOW:
            raise RepoError(f"{WORKFLOW_PATH} exists and differs from the template; "
                            "left as it is (delete it to get the template)")
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(WORKFLOW, "utf-8")
    commit_paths(Path(root), [WORKFLOW_PATH], "convergent: add the GitHub Actions workflow")
    return path
