"""CLI commands of the distillation path: gaps, levers, proposals, approval, on-merge.

Added to the ``convergent`` group by :func:`add_commands`; library errors become exit
status 1 through :func:`convergent.cli_support.refusals`, bad arguments exit 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from convergent.cli_support import RefusedError, refusals, repo_option
from convergent.errors import RecordError
from convergent.levers import LEVER_ORDER
from convergent.records import Record, decode_line


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


def _say_measured(record: dict[str, Any]) -> None:
    """The record id, then each member's pass@1 with its standard error."""
    click.echo(record["id"])
    for entry in Record(record).evidence["measurements"]:
        click.echo(f"  {entry['member']}: pass@1 {entry['solved']}/{entry['tasks']} = "
                   f"{entry['pass_rate']:.4f} ± {entry['stderr']:.4f} (n={entry['n']}, "
                   f"completions {entry['completions_sha256'][:12]})", err=True)


@gap_group.command(name="measure")
@click.argument("name")
@click.option("--eval", "eval_ref", required=True,
              help="JSONL evaluation set (HumanEval format), relative to the repo root.")
@click.option("--target", required=True, type=float, help="The pass@1 the gap closes at.")
@click.option("--member", help="The member measured (default: the built-in base).")
@repo_option
def gap_measure(name: str, eval_ref: str, target: float, member: str | None, repo: Path
                ) -> None:
    """Measure the gap NAME: pass@1 of a member on an evaluation set, run in the sandbox."""
    from convergent.gaps import measure_gap

    with refusals():
        record = measure_gap(repo, name, target, eval_ref, member)
    _say_measured(record)


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
    """Record the gap NAME with a typed value (needs [levers] allow_reported = true)."""
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
    """Record a lever try with a typed value (needs [levers] allow_reported = true)."""
    from convergent.gaps import record_lever

    evidence = _json_object(detail)
    with refusals():
        record = record_lever(repo, gap, lever, measured, evidence)
    click.echo(record["id"])


@lever_group.command(name="measure")
@click.option("--gap", required=True, help="The gap whose evaluation set is measured.")
@click.option("--lever", required=True, type=click.Choice(LEVER_ORDER))
@click.option("--member", "members", multiple=True,
              help="verify_best_of_n, rag: the member (default: base); route: the members "
                   "routed between (repeat; default: every registered member).")
@click.option("--n", "n", default=8, show_default=True, type=click.IntRange(min=1),
              help="verify_best_of_n: candidates sampled per task.")
@click.option("--temperature", default=0.8, show_default=True, type=click.FloatRange(min=0),
              help="verify_best_of_n: sampling temperature.")
@click.option("--seed", default=0, show_default=True, type=int, help="Sampling seed.")
@click.option("--k", "k", type=click.IntRange(min=1),
              help="rag: experiences retrieved per task (default: [levers] rag_k).")
@repo_option
def lever_measure(gap: str, lever: str, members: tuple[str, ...], n: int, temperature: float,
                  seed: int, k: int | None, repo: Path) -> None:
    """Measure a lever on the gap's evaluation set through the members; record the try."""
    from convergent.lever_measures import run_best_of_n, run_rag, run_route

    if lever != "route" and len(members) > 1:
        raise click.UsageError(f"--lever {lever} measures one --member")
    member = members[0] if members else None
    with refusals():
        if lever == "route":
            record = run_route(repo, gap, list(members) or None)
        elif lever == "rag":
            record = run_rag(repo, gap, member, k)
        else:
            record = run_best_of_n(repo, gap, n, member, temperature=temperature, seed=seed)
    _say_measured(record)
    ev = Record(record).evidence
    click.echo(f"{lever}: measured {ev['measured']:.4f} ± {ev['stderr']:.4f}", err=True)


@lever_group.command(name="best-of-n")
@click.option("--gap", required=True, help="The gap whose evaluation set is measured.")
@click.option("--n", "n", default=8, show_default=True, type=click.IntRange(min=1),
              help="Candidates sampled per task.")
@click.option("--member", "--sampler", "member",
              help="The member sampled (default: base).")
@repo_option
def lever_best_of_n(gap: str, n: int, member: str | None, repo: Path) -> None:
    """Execution-verify + best-of-N (``lever measure --lever verify_best_of_n``)."""
    from convergent.lever_measures import run_best_of_n

    with refusals():
        record = run_best_of_n(repo, gap, n, member)
    ev = Record(record).evidence
    detail = ev["detail"]
    click.echo(f"{record['id']} pass rate {detail['solved']}/{detail['tasks']} = "
               f"{ev['measured']:.4f} (n={n}), standard error {ev['stderr']:.4f}")


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
