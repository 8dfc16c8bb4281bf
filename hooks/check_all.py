"""pre-commit hook: every gate on the staged change (the all-in-one hook)."""

from __future__ import annotations

from collections.abc import Sequence

from convergent.hooks.runner import gate_main


def main(argv: Sequence[str] | None = None) -> int:
    return gate_main(None, argv)


if __name__ == "__main__":
    raise SystemExit(main())
