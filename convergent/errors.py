"""Errors raised by the library. Only the CLI turns them into click exceptions."""

from __future__ import annotations


class ConvergentError(Exception):
    """Base class of every error this package raises on purpose."""


class RecordError(ConvergentError):
    """A record or draft is invalid. ``field`` names the offending field ("" for the line)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


class InputError(ConvergentError):
    """One input line was refused; carries where it came from."""

    def __init__(self, source: str, line: int, field: str, message: str) -> None:
        self.source = source
        self.line = line
        self.field = field
        self.message = message
        where = f"{source}:{line}"
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


class RepoError(ConvergentError):
    """The records repo is missing, malformed or in a state we refuse to act on."""


class GateError(ConvergentError):
    """A gate refused; ``problems`` holds every reason."""

    def __init__(self, problems: list[object]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
