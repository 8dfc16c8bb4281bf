"""Progress bars for long work, on an interactive terminal only (stderr, transient)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


def _ignore(n: int = 1) -> None:
    """Advancing no bar."""


@contextmanager
def progress(description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``; draws a rich bar when stderr is a terminal, else does nothing."""
    if not sys.stderr.isatty():
        yield _ignore
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)

        def advance(n: int = 1) -> None:
            bar.advance(task, n)

        yield advance


def tracked(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """``items``, advancing a progress bar per item."""
    with progress(description, total) as advance:
        for item in items:
            yield item
            advance(1)
