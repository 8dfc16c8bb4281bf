"""CLI commands of the distillation path: gaps, levers, proposals, approval, on-merge.

Added to the ``convergent`` group by :func:`add_commands`; library errors become exit
status 1 through :func:`convergent.cli_support.refusals`, bad arguments exit 2.
"""

from __future__ import annotations

from pathlib import Path

import click

from convergent.cli_support import RefusedError, refusals, repo_option
from convergent.errors import RecordError
from convergent.levers import LEVER_ORDER
from convergent.records import decode_line


def _json_object(text: str | None) -> dict[str, object]:
    if not text:
        return {}
    try:
        return decode_line(text.encode("utf-8", "surrogatepass"))
    except RecordError as exc:
        raise click.UsageError(f"--detail: {exc}") from None


@click.group(name="gap")
def gap_group() -> None:
    """Measured capability gaps."""


@gap_group.command(name="add")
@click.argument("name")
@click.option("--metric", required=True, help="What is measured, e.g. pass@1.")
@click.option("--target", required=True, type=float, help="The value the gap closes at.")
@click.option("--eval", "eval_ref", required=True,
              help="JSONL evaluation set (HumanEval format), relative to the repo root.")
@click.option("--measured", required=True, type=float, help="The value measured now.")
@click.option("--lower-is-better", is_flag=True, help="The metric improves downwards.")
@repo_option
def gap_add(name: str, metric: str, target: float, eval_ref: str, measured: float,
            lower_is_better: bool, repo: Path) -> None:
    """Record the capability gap NAME, measured on an evaluation set."""
    from convergent.gaps import record_gap

    with refusals():
        record = record_gap(repo, name, metric, target, eval_ref, measured, lower_is_better)
    click.echo(record["id"])


@click.group(name="lever")
def lever_group() -> None:
    """Frozen-base lever tries, tried before any distillation."""


@lever_group.command(name="record")
@click.option("--gap", required=True, help="The gap the lever was tried on.")
@click.option("--lever", required=True, type=click.Choice(LEVER_ORDER))
@click.option("--measured", required=True, type=float, help="The metric after the lever.")
@click.option("--detail", help="Evidence of the try, a JSON object.")
@repo_option
def lever_record(gap: str, lever: str, measured: float, detail: str | None, repo: Path
                 ) -> None:
    """Record a lever try (route, rag) measured by the host."""
    from convergent.gaps import record_lever

    evidence = _json_object(detail)
    with refusals():
        record = record_lever(repo, gap, lever, measured, evidence)
    click.echo(record["id"])


@lever_group.command(name="best-of-n")
@click.option("--gap", required=True, help="The gap whose evaluation set is measured.")
@click.option("--n", "n", default=8, show_default=True, type=click.IntRange(min=1),
              help="Candidates sampled per task.")
@click.option("--sampler", help="A sampler registered through register_samplers.")
@repo_option
def lever_best_of_n(gap: str, n: int, sampler: str | None, repo: Path) -> None:
    """Execution-verify + best-of-N: sample, run the tests, select, record the pass rate."""
    from convergent.best_of_n import run_best_of_n

    with refusals():
        record = run_best_of_n(repo, gap, n, sampler)
    detail = record["evidence"]["detail"]
    click.echo(f"{record['id']} pass rate {detail['solved']}/{detail['tasks']} = "
               f"{record['evidence']['measured']:.4f} (n={n})")


@click.command(name="propose")
@click.option("--gap", required=True, help="The gap to propose distillation for.")
@click.option("--push", "push_remote", help="Push the proposal branch to this remote.")
@repo_option
def propose_cmd(gap: str, push_remote: str | None, repo: Path) -> None:
    """Make a proposal branch, or refuse with what is missing (levers first)."""
    from convergent.proposals import propose

    with refusals():
        proposal = propose(repo, gap, push_remote=push_remote)
    click.echo(f"branch: {proposal.branch}", err=True)
    click.echo(proposal.description)


@click.command(name="approve")
@click.argument("proposal", required=False)
@click.option("--sign/--no-sign", default=None,
              help="Sign the merge (default: when [operators] require_signed).")
@repo_option
def approve_cmd(proposal: str | None, sign: bool | None, repo: Path) -> None:
    """Approve PROPOSAL (branch or id) by merging it as the current operator."""
    from convergent.approve import approve

    with refusals():
        outcome = approve(repo, proposal, sign=sign, quiet=False)
    if outcome.git_output:
        click.echo(outcome.git_output, err=True)
    if outcome.approval is None:
        raise RefusedError(f"merged {outcome.branch} as {outcome.merge[:12]}, but the merge "
                           "does not approve it (see above)")
    click.echo(f"approved: {outcome.approval['id']} (merge {outcome.merge[:12]})")


@click.command(name="on-merge")
@click.option("--push", "push_remote", help="Push the approval here before any cycle starts.")
@click.option("--quiet", is_flag=True, help="Print nothing.")
@repo_option
def on_merge_cmd(push_remote: str | None, quiet: bool, repo: Path) -> None:
    """Start the cycle of each newly approved proposal, exactly once."""
    from convergent.on_merge import on_merge

    with refusals():
        on_merge(repo, quiet=quiet, push_remote=push_remote)


def add_commands(cli: click.Group) -> None:
    """Add the distillation commands to the ``convergent`` group."""
    for command in (gap_group, lever_group, propose_cmd, approve_cmd, on_merge_cmd):
        cli.add_command(command)
