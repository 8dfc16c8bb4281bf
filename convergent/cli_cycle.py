"""CLI commands of the cycle: run, revert, regenerate, report, hold-out freeze."""

from __future__ import annotations

import json
from pathlib import Path

import click

from convergent.cli_support import RefusedError, refusals, repo_option
from convergent.layout import LOCAL_DIR
from convergent.records import Record


def add_commands(cli: click.Group) -> None:
    cli.add_command(cycle_group)
    cli.add_command(revert_cmd)
    cli.add_command(regenerate_cmd)
    cli.add_command(report_cmd)
    cli.add_command(holdout_group)
    cli.add_command(demo_cmd)


@click.group(name="cycle")
def cycle_group() -> None:
    """Distillation cycles of approved proposals."""


@cycle_group.command(name="run")
@repo_option
def cycle_run(repo: Path) -> None:
    """Run the cycle of every approved proposal that has none yet (exactly once each)."""
    from convergent.trainer.cycle import run_due_cycles

    with refusals():
        cycles = run_due_cycles(repo.resolve())
    if not cycles:
        click.echo("no approved proposal is waiting for a cycle")
    for cycle in cycles:
        ev = Record(cycle).evidence
        click.echo(f"{cycle['id']} {ev['outcome']} {ev.get('adapter') or ''}".rstrip())


@click.command(name="revert")
@click.argument("tag", required=False)
@repo_option
def revert_cmd(tag: str | None, repo: Path) -> None:
    """Roll the active adapter back: a `git revert` of TAG's promotion (default: the active
    adapter's), then a `revert` record."""
    from convergent.trainer.rollback import revert

    with refusals():
        record = revert(repo.resolve(), tag)
    ev = Record(record).evidence
    click.echo(f"reverted {ev['tag']}: active adapter is now {ev['to']}")


@click.command(name="regenerate")
@click.argument("tag")
@repo_option
def regenerate_cmd(tag: str, repo: Path) -> None:
    """Rebuild TAG's adapter from the log and its recorded config; say whether it is
    identical (exit 1 when it differs)."""
    from convergent.trainer.regenerate import regenerate

    with refusals():
        result = regenerate(repo.resolve(), tag)
    if result["identical"]:
        click.echo(f"identical: {tag} regenerated to {result['adapter']} ({result['backend']})")
        return
    raise RefusedError(f"{tag} differs when regenerated:\n  " + "\n  ".join(
        result["differences"]))


@click.command(name="report")
@repo_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the report (default: .convergent/report).")
def report_cmd(repo: Path, out: Path | None) -> None:
    """Write the tripwire plot (PNG) and page (HTML); print their paths."""
    from convergent.trainer.report import write_report
    from convergent.tripwire_history import tripwire_history

    root = repo.resolve()
    with refusals():
        png, html = write_report(tripwire_history(root), out or root / LOCAL_DIR / "report")
    click.echo(str(png))
    click.echo(str(html))


@click.group(name="holdout")
def holdout_group() -> None:
    """The frozen hold-out."""


@holdout_group.command(name="freeze")
@repo_option
def holdout_freeze(repo: Path) -> None:
    """Write the current hold-out's sha256 into the config; commit it in a reviewed change."""
    from convergent.config import load_config, set_config_value
    from convergent.holdout import load_holdout, tasks_sha256

    root = repo.resolve()
    with refusals():
        sha = tasks_sha256(load_holdout(root, load_config(root)))
        set_config_value(root, "tripwire", "holdout_sha256", sha)
    click.echo(json.dumps({"holdout_sha256": sha}))


@click.command(name="demo")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), required=False)
@click.option("--quick", is_flag=True, help="A shorter run (fewer records and steps).")
def demo_cmd(directory: Path | None, quick: bool) -> None:
    """Run the whole loop end to end in DIRECTORY (new or empty; default: a new temp
    folder), narrating each step."""
    import tempfile

    from convergent.demo import run_demo

    target = directory or Path(tempfile.mkdtemp(prefix="convergent-demo-"))
    with refusals():
        run_demo(target, quick=quick, say=click.echo)
