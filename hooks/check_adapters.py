"""pre-commit hook: the `adapters` gate on the staged change."""

from __future__ import annotations

from collections.abc import Sequence

from convergent.hooks.runner import gate_main


def main(argv: Sequence[str] | None = None) -> int:
    return gate_main(["adapters"], argv)


if __name__ == "__main__":
    raise SystemExit(main())
