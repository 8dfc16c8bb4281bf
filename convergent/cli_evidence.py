"""CLI commands that give records evidence others can check: vouch, source add."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from convergent.cli_support import RefusedError, refusals, repo_option


def add_commands(cli: click.Group) -> None:
    cli.add_command(vouch_cmd)
    cli.add_command(source_group)


@click.command(name="vouch")
@click.argument("drafts", type=click.File("rb"))
@repo_option
@click.option("--sign/--no-sign", default=None,
              help="Sign the vouching commit (-S); default: when signatures are required.")
@click.option("--ssh-key", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Vouch by an SSH signature per record with this private key (no commit).")
def vouch_cmd(drafts: Any, repo: Path, sign: bool | None, ssh_key: Path | None) -> None:
    """Vouch, as the operator you are, for the operator-evidence drafts in DRAFTS (JSON
    lines, or - for stdin), then emit them.

    Makes one commit whose `Vouches: sha256:<digest>` trailers name exactly these
    records (or, with --ssh-key, signs each digest), fills in evidence.commit (or
    evidence.signature) and appends the records; prints `<id> <verified|unverified>`.
    """
    from convergent.errors import InputError, RecordError
    from convergent.recorder import Recorder
    from convergent.records import Record, decode_line
    from convergent.vouch import vouch_drafts

    name = getattr(drafts, "name", "-")
    source = "<stdin>" if name in ("<stdin>", "-") else str(name)
    parsed = []
    with refusals():
        for lineno, raw in enumerate(drafts, 1):
            if not raw.strip():
                continue
            try:
                parsed.append(decode_line(raw.rstrip(b"\r\n")))
            except RecordError as exc:
                raise InputError(source, lineno, exc.field, exc.message) from None
        if not parsed:
            raise RefusedError(f"{source}: no drafts to vouch for")
        root = repo.resolve()
        vouched = vouch_drafts(root, parsed, sign=sign, ssh_key=ssh_key)
        with Recorder(root) as recorder:
            records = recorder.emit_many(vouched)
    commit = Record(vouched[0]).evidence.get("commit")
    click.echo(f"vouched in commit {commit}" if commit else "vouched by SSH signature",
               err=True)
    unverified = []
    for record in records:
        verdict = record["verdict"]
        click.echo(f"{record['id']} {'verified' if verdict['verified'] else 'unverified'}")
        if not verdict["verified"]:
            unverified.append(f"{record['id']}: {verdict['detail']}")
    if unverified:
        raise RefusedError("recorded but not verified:\n" + "\n".join(unverified))


@click.group(name="source")
def source_group() -> None:
    """Source snapshots that grounding evidence cites."""


@source_group.command(name="add")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(dir_okay=False, exists=True, path_type=Path))
@repo_option
@click.option("--registered-by", required=True,
              help="The source registering them (an ingestion job, a crawler, you): never "
                   "the agent that will cite them.")
@click.option("--no-commit", is_flag=True,
              help="Only store them; commit them yourself before any record cites them.")
def source_add(files: tuple[Path, ...], repo: Path, registered_by: str, no_commit: bool
               ) -> None:
    """Register FILES as source snapshots and commit them (as the current git user).

    Prints `<sha256:...> <file>` per file: the name a citation gives as its source.
    """
    from convergent.sources import register_sources

    with refusals():
        refs, sha = register_sources(repo.resolve(), [f.read_bytes() for f in files],
                                     registered_by=registered_by, commit=not no_commit)
    for ref, path in zip(refs, files, strict=True):
        click.echo(f"{ref} {path}")
    if sha:
        click.echo(f"committed in {sha}", err=True)
