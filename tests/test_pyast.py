"""ASTs from several threads at once (the tripwire and best-of-N verify in thread pools)."""

from __future__ import annotations

import ast
import gc
import threading

from convergent import pyast


def test_a_parse_in_another_thread_cannot_corrupt_one_in_progress() -> None:
    """CPython 3.11 keeps the AST conversion's recursion depth per interpreter: a parse that
    starts in another thread while one is under way resets it, and the first fails with
    ``SystemError: AST constructor recursion depth mismatch`` (seen in the suite, with the
    tripwire's pool). Here a garbage-collector callback, which runs in the middle of the
    conversion, starts parses in other threads; under the lock they wait, and all succeed."""
    others: list[threading.Thread] = []
    parsed: list[ast.Module] = []

    def parse_elsewhere() -> None:
        parsed.append(pyast.parse("def g(y):\n    return [[y]]\n"))

    def collecting(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and len(others) < 3:
            others.append(threading.Thread(target=parse_elsewhere))
            others[-1].start()
            others[-1].join(0.2)  # without the lock it runs to the end right now

    source = "def f(x):\n" + "".join(f"    a{i} = [[[x, {i}]]]\n" for i in range(200))
    thresholds = gc.get_threshold()
    gc.set_threshold(1, 1, 1)
    gc.callbacks.append(collecting)
    try:
        tree = pyast.parse(source)
    finally:
        gc.callbacks.remove(collecting)
        gc.set_threshold(*thresholds)
    for thread in others:
        thread.join(5)
    assert len(tree.body[0].body) == 200  # type: ignore[attr-defined]
    assert len(others) == 3 and len(parsed) == 3
    assert pyast.compile_tree(tree, "<race>").co_filename == "<race>"
