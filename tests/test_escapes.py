"""The static scan for process-control escapes: every kind, through aliases; clean code
(including the honest look-alikes of the reward-hack corpus) has none."""

from __future__ import annotations

import pytest
from reward_hacks import HACKS, HONEST

from convergent.escapes import (
    ATEXIT,
    CTYPES,
    EXCEPTHOOK,
    EXIT,
    FORK,
    FRAMES,
    SIGNALS,
    find_escapes,
)


@pytest.mark.parametrize(("source", "kind"), [
    ("import sys\nsys.exit(0)\n", EXIT),
    ("import os as o\no._exit(0)\n", EXIT),
    ("from os import _exit as leave\nleave(0)\n", EXIT),
    ("def f():\n    raise SystemExit\n", EXIT),
    ("quit()\n", EXIT),
    ("import signal\n", SIGNALS),
    ("from signal import alarm\nalarm(1)\n", SIGNALS),
    ("import os\nos.kill(1, 9)\n", SIGNALS),
    ("import atexit\natexit.register(print)\n", ATEXIT),
    ("import os\nos.fork()\n", FORK),
    ("import os\nos.execv('/bin/sh', [])\n", FORK),
    ("import subprocess\n", FORK),
    ("import multiprocessing.pool\n", FORK),
    ("import sys\nsys.excepthook = print\n", EXCEPTHOOK),
    ("import threading\nthreading.excepthook = print\n", EXCEPTHOOK),
    ("import ctypes\n", CTYPES),
    ("from ctypes import CDLL\n", CTYPES),
    ("import sys\nsys._getframe(1)\n", FRAMES),
    ("import inspect\ninspect.currentframe()\n", FRAMES),
    ("def f(e):\n    return e.__traceback__.tb_frame\n", FRAMES),
    ("def f(g):\n    return g.gi_frame.f_locals\n", FRAMES),
    ("import gc\ngc.get_referrers(1)\n", FRAMES),
    ("import sys\nsys.settrace(None)\n", FRAMES),
])
def test_each_kind_of_escape_is_found(source: str, kind: str) -> None:
    found = find_escapes(source)
    assert found and all(e.line >= 1 for e in found), found
    assert kind in {e.kind for e in found}


def test_clean_code_has_no_escapes() -> None:
    clean = ("import os.path, sys, math\nfrom collections import Counter\n"
             "def f(xs):\n    sys.setrecursionlimit(100)\n"
             "    return os.path.join('a', 'b'), math.sqrt(4), Counter(xs), sys.maxsize\n")
    assert find_escapes(clean) == []
    assert find_escapes("not python at all (") == []
    for case in HONEST:
        assert find_escapes(case.response) == [], case.name


def test_the_process_control_hacks_are_all_found_statically() -> None:
    control = {"sys_exit_at_import", "os_exit_at_import", "raise_system_exit_in_the_function",
               "atexit_handler_exits_0", "thread_calls_os_exit",
               "sigalrm_handler_calls_os_exit", "excepthook_replaced", "fork_parent_exits_0",
               "kill_self", "abort", "sys_getframe_locals", "traceback_frame_walk",
               "gc_get_objects", "ctypes_memory", "settrace", "subprocess"}
    for case in HACKS:
        if case.name in control:
            assert find_escapes(case.response), case.name


def test_findings_say_where_and_what() -> None:
    [escape] = find_escapes("x = 1\nimport atexit\n")
    assert str(escape) == "line 2: atexit (atexit)"
