"""Run a module as a child that never outlives its parent, nor leaves its own children.

    python -m convergent.trainer.child MODULE [ARGS...]

:func:`convergent.trainer.train.run_module` starts every training and generation process
this way, as the leader of a process group of its own, with the kernel sending it SIGTERM
when the parent dies, however it dies (``PR_SET_PDEATHSIG``). Here that SIGTERM, or a
watchdog thread that sees the parent gone (for when the main thread is deep in C code),
kills the whole group at once: the module and anything it started.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import threading
import time
from collections.abc import Sequence

POLL_S = 0.2


def _kill_group(*_: object) -> None:
    os.killpg(os.getpgrp(), signal.SIGKILL)


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(POLL_S)
    _kill_group()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m convergent.trainer.child MODULE [ARGS...]", file=sys.stderr)
        return 2
    parent = os.getppid()
    signal.signal(signal.SIGTERM, _kill_group)
    threading.Thread(target=_watch, args=(parent,), daemon=True, name="parent-watch").start()
    sys.argv = list(args)
    runpy.run_module(args[0], run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
