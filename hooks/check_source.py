"""pre-commit hook: the `source` gate on the staged change."""

from __future__ import annotations

from collections.abc import Sequence

from convergent.hooks.runner import gate_main


def main(argv: Sequence[str] | None = None) -> int:
    return gate_main(["source"], argv)


if __name__ == "__main__":
    raise SystemExit(main())
