"""The ``convergent`` command line: one click group; library errors become click errors."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from convergent import cli_cycle, cli_distill, cli_evidence
from convergent.cli_support import RefusedError, refusals, repo_option


@click.group()
@click.version_option(package_name="convergent")
def cli() -> None:
    """convergent: verified agent experience in, reversible LoRA adapters out.

    Levers first: distillation is only proposed once routing, execution-verify +
    best-of-N and RAG were tried and measured.
    """


@cli.command(name="init")
@click.argument("path", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--operator", "operators", multiple=True,
              help="'Name <email>' allowed to approve proposals (repeatable).")
@click.option("--base", "base", metavar="PATH_OR_ID",
              help="Base model to adapt: a local directory or a hub id (default: 'tiny', "
                   "the offline test model; 'organism': the embedded default, pretrained "
                   "here on a CPU, with its own hold-out).")
@click.option("--no-hooks", is_flag=True, help="Do not install the git hooks.")
@click.option("--github-workflow", is_flag=True,
              help="Also write .github/workflows/convergent.yml (self-hosted GPU runner).")
def init_cmd(path: Path, operators: tuple[str, ...], base: str | None, no_hooks: bool,
             github_workflow: bool) -> None:
    """Make or upgrade a records repo at PATH and install the git hooks."""
    from convergent.github_workflow import write_github_workflow
    from convergent.repo import init_repo

    with refusals():
        try:
            root = init_repo(path, operators=list(operators), base=base,
                             install_hooks=not no_hooks)
        except ValueError as exc:
            raise RefusedError(str(exc)) from None
        if github_workflow:
            click.echo(f"workflow: {write_github_workflow(root)}")
    click.echo(f"records repo ready: {root}")


@cli.command(name="emit")
@click.argument("file", type=click.File("rb"))
@repo_option
@click.option("--no-verify", is_flag=True, help="Record experiences as unverified.")
def emit_cmd(file: Any, repo: Path, no_verify: bool) -> None:
    """Append draft records from FILE (JSON lines, or - for stdin).

    Prints `<id> <verified|unverified>` per appended record; bad lines are named on
    stderr (line and field) and the good ones are still appended.
    """
    from convergent.progress import tracked
    from convergent.recorder import Recorder

    name = getattr(file, "name", "-")
    source = "<stdin>" if name in ("<stdin>", "-") else str(name)
    with refusals(), Recorder(repo, verify=not no_verify) as recorder:
        outcomes = recorder.emit_lines(tracked(file, "verifying and appending"),
                                       source=source)
    bad = 0
    for outcome in outcomes:
        if outcome.error is not None:
            bad += 1
            click.echo(str(outcome.error), err=True)
            continue
        assert outcome.record is not None
        verdict = outcome.record.get("verdict")
        status = "verified" if verdict and verdict.get("verified") else "unverified"
        click.echo(f"{outcome.record['id']} {status}")
    if bad:
        raise RefusedError(f"{bad} line{'s' if bad != 1 else ''} refused; the others were "
                           "appended")


@cli.command(name="commit")
@repo_option
@click.option("-m", "--message", help="Commit message.")
def commit_cmd(repo: Path, message: str | None) -> None:
    """Commit what was appended to the log since the last commit."""
    from convergent.gitops import commit_log

    with refusals():
        try:
            sha = commit_log(repo.resolve(), message)
        except Exception as exc:  # a refusing pre-commit hook surfaces as a git error
            from git import GitCommandError

            if isinstance(exc, GitCommandError):
                raise RefusedError(f"commit refused:\n{exc.stderr.strip()}") from None
            raise
    click.echo(sha or "nothing to commit")


@cli.command(name="check")
@repo_option
@click.option("--all", "all_commits", is_flag=True, help="Check every commit.")
@click.option("--rev-range", help="Check every commit of A..B.")
@click.option("--staged", is_flag=True, help="Check the staged change (the default).")
@click.option("--gate", "gates", multiple=True, help="Only these gates (repeatable).")
def check_cmd(repo: Path, all_commits: bool, rev_range: str | None, staged: bool,
              gates: tuple[str, ...]) -> None:
    """Run every gate (CI, pre-push): `path:line: gate-id: message` per problem."""
    from convergent.hooks.runner import run_check

    if sum([all_commits, bool(rev_range), staged]) > 1:
        raise click.UsageError("choose one of --all, --rev-range, --staged")
    from convergent.approval import unsigned_warning
    from convergent.config import load_config

    with refusals():
        problems = run_check(repo.resolve(), names=list(gates) or None, rev_range=rev_range,
                             all_commits=all_commits)
        warning = unsigned_warning(load_config(repo.resolve()))
    for problem in problems:
        click.echo(str(problem), err=True)
    if warning:
        click.echo(f"warning: {warning}", err=True)
    if problems:
        raise RefusedError(
            f"{len(problems)} problem{'s' if len(problems) != 1 else ''}: fix each line named "
            "above and commit again; committed records are never edited, append a new record "
            "that supersedes one instead (see docs/operators.md)")
    click.echo("all gates passed")


@cli.command(name="verify")
@repo_option
def verify_cmd(repo: Path) -> None:
    """Whole-log integrity: every line parses, every id matches, no duplicate ids."""
    from convergent.integrity import verify_log

    with refusals():
        report = verify_log(repo.resolve())
    for problem in report.problems:
        click.echo(problem, err=True)
    if not report.ok:
        raise RefusedError(f"{len(report.problems)} problems in {report.lines} lines")
    click.echo(f"ok: {report.lines} records in {report.segments} segments")


@cli.command(name="index")
@repo_option
@click.option("--rebuild", is_flag=True, help="Drop the index and build it from the log.")
def index_cmd(repo: Path, rebuild: bool) -> None:
    """Bring the SQLite index (.convergent/index.db) up to date with the log."""
    from convergent import index

    with refusals():
        stats = (index.rebuild_index if rebuild else index.update_index)(repo.resolve())
    for line in stats.unreadable:  # skipped, not indexed: `convergent verify` says more
        click.echo(f"not indexed: {line}", err=True)
    click.echo(str(replace(stats, unreadable=())))


@cli.command(name="query")
@click.argument("text", required=False)
@repo_option
@click.option("--kind", help="Only records of this kind.")
@click.option("--verified/--unverified", default=None, help="Filter by verdict.")
@click.option("--limit", default=20, show_default=True)
def query_cmd(text: str | None, repo: Path, kind: str | None, verified: bool | None,
              limit: int) -> None:
    """Full-text search over claim, task and response; prints JSON lines."""
    from convergent import index

    with refusals():
        rows = index.query(repo.resolve(), text=text, kind=kind, verified=verified, limit=limit)
    for row in rows:
        click.echo(json.dumps(row, sort_keys=True))


@cli.command(name="status")
@repo_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status_cmd(repo: Path, as_json: bool) -> None:
    """Log size, gaps and levers, proposals, cycles, active adapter."""
    from convergent.status import collect_status, render_status

    with refusals():
        status = collect_status(repo.resolve())
    if as_json:
        click.echo(json.dumps(status, indent=2, sort_keys=True))
    else:
        render_status(status, sys.stdout)


cli_cycle.add_commands(cli)
cli_distill.add_commands(cli)
cli_evidence.add_commands(cli)


def main() -> None:
    from convergent.plugins import load_plugins

    load_plugins().hook.register_commands(cli=cli)
    cli()
