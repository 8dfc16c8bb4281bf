"""Running a module in a child process that never outlives its parent, nor leaves
children of its own: the parent side (:func:`run_module`, which starts every training,
generation and model-building process, and the built-in member ``base``'s generation) and
the child side (:func:`main`).

    python -m convergent.child_process MODULE [ARGS...]

The child runs as the leader of a process group of its own, with the kernel sending it
SIGTERM when the parent dies, however it dies (``PR_SET_PDEATHSIG``). Here that SIGTERM, or
a watchdog thread that sees the parent gone (for when the main thread is deep in C code),
kills the whole group at once: the module and anything it started. Standard library only:
the CLI and gate processes import this without torch.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import runpy
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence

from convergent.errors import ConvergentError

CHILD = "convergent.child_process"
_TAIL_BYTES = 8192


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def dies_with_this_process(sig: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel send ``sig`` to the child when this process
    dies, even by SIGKILL (Linux ``PR_SET_PDEATHSIG``); None where there is no ``prctl``."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, sig)
        if os.getppid() != parent:  # we died before the prctl took hold
            os._exit(1)

    return preexec


class _Terminated(BaseException):
    """SIGTERM or SIGHUP arrived while a child ran: take the child down, then exit."""


@contextlib.contextmanager
def _terminate_raises() -> Iterator[None]:
    """SIGTERM and SIGHUP raise in the waiting (main) thread, so the child's process group
    is killed on the way out, like on Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        raise _Terminated(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    except _Terminated as exc:
        raise SystemExit(128 + int(exc.args[0])) from None
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_module(module: str, args: Sequence[str], *, timeout_s: float | None, what: str,
               error: type[ConvergentError] = ConvergentError, echo: bool = True,
               timeout_setting: str | None = None) -> None:
    """Run ``python -m module args`` in a new session, echoing its output to our stderr
    (``echo``; either way its tail is kept for the error).

    The child and its own children never outlive us: their process group is killed on a
    timeout, an error, Ctrl-C, SIGTERM or SIGHUP, and when we die any other way (even by
    SIGKILL) the kernel tells the child, which kills its group (:func:`main`).
    Raises ``error`` with the tail of the child's output when it fails or times out (the
    message names ``timeout_setting``, the setting that sets ``timeout_s``, when given).
    """
    env = dict(os.environ)
    # Stable set order in the child (PEFT serializes target_modules from a set).
    env.setdefault("PYTHONHASHSEED", "0")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    # This module's main() takes the child's whole process group down when we die.
    command = [sys.executable, "-m", CHILD, module, *args]
    with _terminate_raises():
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   env=env, start_new_session=True,
                                   preexec_fn=dies_with_this_process(signal.SIGTERM))
        tail: deque[bytes] = deque()
        pump = threading.Thread(target=_pump, args=(process, tail, echo), daemon=True)
        pump.start()
        try:
            code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_session(process, pump)
            setting = f" ({timeout_setting})" if timeout_setting else ""
            raise error(f"{what} timed out after {timeout_s}s{setting}\n{_text(tail)}"
                        ) from None
        except BaseException:
            # Ctrl-C, SIGTERM or an error here: the child has its own session, so take
            # it down with us.
            _kill_session(process, pump)
            raise
    pump.join()
    if code != 0:
        raise error(f"{what} failed (exit {code})\n{_text(tail)}")


def _kill_session(process: subprocess.Popen[bytes], pump: threading.Thread) -> None:
    # The whole session: a backend may have started helpers of its own.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    pump.join()


def _pump(process: subprocess.Popen[bytes], tail: deque[bytes], echo: bool) -> None:
    assert process.stdout is not None
    kept = 0
    # os.read returns what is there: progress lines show up as they are printed.
    while chunk := os.read(process.stdout.fileno(), 4096):
        if echo:
            sys.stderr.buffer.write(chunk)
            sys.stderr.flush()
        tail.append(chunk)
        kept += len(chunk)
        while kept - len(tail[0]) > _TAIL_BYTES:
            kept -= len(tail.popleft())


def _text(tail: deque[bytes]) -> str:
    return b"".join(tail).decode("utf-8", "replace")[-_TAIL_BYTES:]


# The child side.

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
        print("usage: python -m convergent.child_process MODULE [ARGS...]", file=sys.stderr)
        return 2
    parent = os.getppid()
    signal.signal(signal.SIGTERM, _kill_group)
    threading.Thread(target=_watch, args=(parent,), daemon=True, name="parent-watch").start()
    sys.argv = list(args)
    runpy.run_module(args[0], run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
