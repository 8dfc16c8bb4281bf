"""What every CLI command module shares: the refusal exit, the ``--repo`` option."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from convergent.errors import ConvergentError


class RefusedError(click.ClickException):
    """Exit 1: a gate or an input was refused (the spec's exit status)."""

    exit_code = 1


@contextmanager
def refusals() -> Iterator[None]:
    """Turn library errors into exit status 1 with the reason on stderr."""
    try:
        yield
    except ConvergentError as exc:
        raise RefusedError(str(exc)) from None


repo_option = click.option("--repo", "repo", default=".", show_default=True,
                           type=click.Path(file_okay=False, path_type=Path),
                           help="The records repo.")
