"""The gate entry points: one ``check_<gate>(argv)`` per gate and ``check_all``.

pyproject's console scripts (``convergent-gate-<gate>``, what ``.pre-commit-hooks.yaml``
names as each hook's entry) point here; :func:`convergent.hooks.runner.gate_main` does
the work. Also runnable as ``python -m convergent.hooks.gate_hooks GATE [ARGS]``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from convergent.hooks.runner import gate_main

EntryPoint = Callable[[Sequence[str] | None], int]


def _entry(names: Sequence[str] | None) -> EntryPoint:
    def main(argv: Sequence[str] | None = None) -> int:
        return gate_main(names, argv)

    main.__doc__ = (f"pre-commit hook: the {', '.join(names or ['all'])} gate(s) on the "
                    "staged change.")
    return main


check_all = _entry(None)
check_adapters = _entry(["adapters"])
check_append_only = _entry(["append-only"])
check_approval = _entry(["approval"])
check_benchmark_not_target = _entry(["benchmark-not-target"])
check_decontamination = _entry(["decontamination"])
check_levers_first = _entry(["levers-first"])
check_never_removed = _entry(["never-removed"])
check_schema = _entry(["schema"])
check_secrets = _entry(["secrets"])
check_source = _entry(["source"])

# Hook id (the gate's name, or "all") -> its entry point.
ENTRY_POINTS: dict[str, EntryPoint] = {
    "all": check_all, "adapters": check_adapters, "append-only": check_append_only,
    "approval": check_approval, "benchmark-not-target": check_benchmark_not_target,
    "decontamination": check_decontamination, "levers-first": check_levers_first,
    "never-removed": check_never_removed, "schema": check_schema, "secrets": check_secrets,
    "source": check_source,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in ENTRY_POINTS:
        print(f"usage: python -m convergent.hooks.gate_hooks {{{','.join(ENTRY_POINTS)}}} "
              "[--repo R] [--rev-range A..B] [--all]", file=sys.stderr)
        return 2
    return ENTRY_POINTS[args[0]](args[1:])


if __name__ == "__main__":
    raise SystemExit(main())
