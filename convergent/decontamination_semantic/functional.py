"""The functional stage: does the response solve a benchmark item?

The response is run against each shortlisted item's own ``check(candidate)`` in the
sandbox, once per top-level function whose positional arity fits the item's entry point
(and with the entry point's name bound to that function, since some tests call it by
name). A function that gets through every assertion within the time limit *is* a
solution of the item.

A check that runs past its own alarm has not passed (a solution returns in time). A run
that gives no answer, a response that ends the harness's process, or one that defeats
the alarm, leaves the item unchecked: an error, which the screen refuses (fail closed).

One sandbox run covers every (function, item) pair of a record that is not cached yet.
Outcomes are cached content-addressed by the response, the items' prompts and tests and
the functions tried: per (response, item) pair for a shortlist, one entry per response
for a sweep; errors are never cached.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import json
import os
import secrets
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from convergent.decontamination_semantic.items import Item, positional_arity
from convergent.decontamination_semantic.lexical import tokens
from convergent.sandbox import SandboxLimits, SandboxResult, run_python

# Bumped when the program or the meaning of a cached outcome changes.
CACHE_VERSION = 1
PER_CHECK_S = 2.0  # a solution passes a benchmark's tests in well under this
MAX_FUNCTIONS = 4  # per item: the best-named functions of fitting arity
_MEMO_MAX = 50_000  # outcomes kept in memory per FunctionalCheck

Runner = Callable[..., SandboxResult]


@dataclass(frozen=True)
class Function:
    name: str
    required: int
    total: int


def top_level_functions(code: str) -> list[Function] | None:
    """The module-level functions (and ``name = lambda``) of Python code; None when it
    does not compile."""
    tree = compiled_module(code)
    return None if tree is None else module_functions(tree)


def compiled_module(code: str) -> ast.Module | None:
    """The syntax tree of Python code that compiles; None when it does not."""
    try:
        tree = ast.parse(code)
        # The symbol table's checks too (``nonlocal`` with no binding, ...): code that does
        # not compile solves nothing. Compiling runs none of it.
        compile(tree, "<response>", "exec")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    return tree


def module_functions(tree: ast.Module) -> list[Function]:
    """The module-level functions (and ``name = lambda``) of a syntax tree."""
    found = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if isinstance(node, ast.FunctionDef):  # a coroutine solves nothing
                found.append(Function(node.name, *positional_arity(node.args)))
        elif (isinstance(node, ast.Assign) and isinstance(node.value, ast.Lambda)
              and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            found.append(Function(node.targets[0].id, *positional_arity(node.value.args)))
    return found


def name_words(name: str) -> frozenset[str]:
    """The words of a name (a function's, an entry point's)."""
    return _name_words(name) if len(name) <= 256 else frozenset(tokens(name))


@functools.lru_cache(maxsize=4096)
def _name_words(name: str) -> frozenset[str]:  # short names, asked again and again
    return frozenset(tokens(name))


def fitting(functions: Sequence[Function], item: Item) -> list[str]:
    """Names of the functions that could be the item's entry point: the arity fits (the
    tests call it with ``required``..``total`` positional arguments), best names first."""
    if item.arity is None:
        return []
    need_lo, need_hi = item.arity
    fits = [f for f in functions if f.required <= need_hi and need_lo <= f.total]
    target = name_words(item.entry_point)

    def rank(f: Function) -> tuple[int, int]:
        return (f.name != item.entry_point, -len(name_words(f.name) & target))

    return [f.name for f in sorted(fits, key=rank)[:MAX_FUNCTIONS]]


@dataclass(frozen=True)
class Outcome:
    """What running a response against one item showed: the functions that passed its
    tests (empty: none did), or ``error`` when the run gave no answer (fail closed)."""

    passed: tuple[str, ...] = ()
    error: str = ""


# The harness: runs inside the sandbox. Each (item, function) check gets a fresh copy of
# the response's module and of the item's prompt + test, and an alarm that re-fires. Before
# each check, and at the end, one short line goes to the original stdout: the per-run
# nonce, "s <check>" or "e", and the checks passed so far. The last line of the output tail
# is then the whole state, however many checks ran; the program's own output goes to
# stderr, so that it cannot pass for a report by accident.
HARNESS = r"""
import json, os, signal
NONCE, PER_CHECK, RESPONSE, CHECKS = json.loads(DATA)
out = os.dup(1)
os.dup2(2, 1)
def _alarm(signum, frame):
    raise TimeoutError("check took too long")
signal.signal(signal.SIGALRM, _alarm)
code = compile(RESPONSE, "response.py", "exec")
tests = {}
passed = []
def say(what):
    os.write(out, ("%s %s %s\n" % (NONCE, what, ",".join(passed) or "-")).encode())
def quiet():
    # An alarm may be pending, or fire while an interrupted check unwinds (freeing a huge
    # structure can take seconds): keep disarming until it sticks.
    while True:
        try:
            signal.setitimer(signal.ITIMER_REAL, 0)
            return
        except BaseException:
            continue
for i, (prompt, test, entry, name) in enumerate(CHECKS):
    say("s %d" % i)
    ok = False
    try:
        try:
            signal.setitimer(signal.ITIMER_REAL, PER_CHECK, PER_CHECK)
            mod = {"__name__": "__main__", "__builtins__": __builtins__}
            exec(code, mod)
            fn = mod.get(name)
            if callable(fn):
                if (prompt, test) not in tests:
                    tests[prompt, test] = (compile(prompt, "prompt.py", "exec"),
                                           compile(test, "test.py", "exec"))
                env = {"__name__": "__benchmark__", "__builtins__": __builtins__}
                exec(tests[prompt, test][0], env)
                env[entry] = fn
                exec(tests[prompt, test][1], env)
                env["check"](fn)
                ok = True
        finally:
            quiet()
    except BaseException:
        ok = False
    quiet()
    if ok:
        passed.append(str(i))
say("e -1")
"""


def harness_program(response: str, checks: Sequence[tuple[Item, str]], nonce: str,
                    per_check_s: float = PER_CHECK_S) -> str:
    """The one program a functional run executes (the seam to the execution harness)."""
    data = json.dumps([nonce, per_check_s, response,
                       [[item.prompt, item.test, item.entry_point, name]
                        for item, name in checks]])
    return f"DATA = {data!r}\n" + HARNESS


@dataclass(frozen=True)
class Report:
    """What one harness run said: the checks passed, the check that was running when
    the output stopped (None: none, or the harness reached its end), and whether it did."""

    passed: frozenset[int]
    running: int | None
    ended: bool


def parse_report(stdout: str, nonce: str) -> Report | None:
    """The state in the last line the harness wrote; None when it wrote none."""
    for line in reversed(stdout.splitlines()):
        parts = line.split()
        if len(parts) != 4 or parts[0] != nonce or parts[1] not in ("s", "e"):
            continue
        try:
            passed = frozenset(int(p) for p in parts[3].split(",") if p != "-")
            ended = parts[1] == "e"
            return Report(passed, None if ended else int(parts[2]), ended)
        except ValueError:
            continue
    return None


class FunctionalCheck:
    """Runs responses against items in the sandbox, with a per-(response, item) cache.

    ``directory`` holds one small JSON file per (response, item) outcome; ``runner`` is
    :func:`convergent.sandbox.run_python` or a stand-in with its signature.
    """

    def __init__(self, directory: Path | None, limits: SandboxLimits | None = None,
                 runner: Runner = run_python, per_check_s: float = PER_CHECK_S) -> None:
        self.directory = directory
        self.limits = limits or SandboxLimits()
        self.runner = runner
        self.per_check_s = per_check_s
        self.runs = 0
        self.hits = 0
        self._lock = threading.Lock()
        # Outcomes already read or run in this process (a response is often screened
        # again: at emit, then at check; the same program in many records): bounded.
        self._memo: dict[str, dict[str, Outcome]] = {}

    def key(self, response: str, targets: Sequence[tuple[Item, Sequence[str]]]) -> str:
        blob = json.dumps([CACHE_VERSION, self.per_check_s, response,
                           [[item.digest, list(names)] for item, names in targets]],
                          ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()

    def outcomes(self, response: str, targets: Iterable[tuple[Item, Sequence[str]]]
                 ) -> dict[str, Outcome]:
        """Item key -> outcome for each (item, function names) target, each pair cached
        on its own (a shortlist: few items, often seen again in other combinations)."""
        result: dict[str, Outcome] = {}
        pending: list[tuple[Item, Sequence[str], str]] = []
        for item, names in targets:
            if not names:
                continue
            key = self.key(response, [(item, names)])
            cached = self._load(key)
            if cached is not None:
                with self._lock:
                    self.hits += 1
                result[item.key] = cached.get(item.key, Outcome())
            else:
                pending.append((item, names, key))
        if pending:
            fresh = self._run(response, [(item, names) for item, names, _ in pending])
            for item, _, key in pending:
                result[item.key] = fresh[item.key]
                self._store(key, {item.key: fresh[item.key]})
        return result

    def sweep(self, response: str, targets: Sequence[tuple[Item, Sequence[str]]]
              ) -> dict[str, Outcome]:
        """:meth:`outcomes` for a whole benchmark at once, cached as one entry (a sweep:
        every item of fitting arity, so one file per response rather than hundreds)."""
        targets = [(item, names) for item, names in targets if names]
        key = self.key(response, targets)
        cached = self._load(key)
        if cached is not None:
            with self._lock:
                self.hits += 1
            return {item.key: cached.get(item.key, Outcome()) for item, _ in targets}
        fresh = self._run(response, targets) if targets else {}
        self._store(key, fresh)
        return fresh

    def _run(self, response: str, targets: Sequence[tuple[Item, Sequence[str]]]
             ) -> dict[str, Outcome]:
        checks = [(item, name) for item, names in targets for name in names]
        passed: dict[str, list[str]] = {item.key: [] for item, _ in targets}
        errors: dict[str, str] = {}
        report, result = self._run_once(response, checks) if checks else (None, "")
        if checks and report is None:  # no answer at all: errors, never passes
            why = result.reason if isinstance(result, SandboxResult) else result
            errors.update((item.key, f"the functional check gave no answer ({why})")
                          for item, _ in checks)
        elif report is not None:
            for i in sorted(report.passed):
                passed[checks[i][0].key].append(checks[i][1])
            if report.running is not None:
                assert isinstance(result, SandboxResult)
                if result.timed_out:
                    # Each check has its own alarm: outliving it means the response
                    # defeats the harness, so the checks left cannot be concluded.
                    why = f"a check outlived its {self.per_check_s:g} s alarm ({result.reason})"
                else:
                    # The process ended in the middle of a check: the response stopped
                    # the harness (os._exit, a signal, a limit).
                    why = ("the response ended the check's process "
                           f"({result.reason or 'no reason'})")
                errors[checks[report.running][0].key] = why
                for item, _ in checks[report.running + 1:]:
                    errors.setdefault(item.key, f"not checked: an earlier check failed ({why})")
        # Fail closed: an item with an error is refused, unless a function passed it,
        # which settles it anyway.
        return {item.key: Outcome((), errors[item.key])
                if item.key in errors and not passed[item.key]
                else Outcome(tuple(passed[item.key])) for item, _ in targets}

    def _run_once(self, response: str, checks: Sequence[tuple[Item, str]]
                  ) -> tuple[Report | None, SandboxResult | str]:
        """One harness run: its report (None: it wrote none) and the sandbox's result (or
        why the sandbox could not run)."""
        nonce = secrets.token_hex(8)
        budget = self.per_check_s * len(checks) + 5.0
        limits = replace(self.limits, timeout_s=max(self.limits.timeout_s, budget),
                         cpu_s=max(self.limits.cpu_s, int(budget) + 1))
        with self._lock:
            self.runs += 1
        try:
            result = self.runner(harness_program(response, checks, nonce, self.per_check_s),
                                 limits=limits)
        except OSError as exc:
            return None, f"the sandbox could not run: {exc}"
        return parse_report(result.stdout, nonce), result

    # --- cache --------------------------------------------------------------------------

    def _path(self, key: str) -> Path | None:
        return None if self.directory is None else self.directory / key[:2] / f"{key}.json"

    def _load(self, key: str) -> dict[str, Outcome] | None:
        memo = self._memo.get(key)
        if memo is not None:
            return memo
        path = self._path(key)
        if path is None:
            return None
        try:
            data = json.loads(path.read_text("utf-8"))
            found = {str(k): Outcome(tuple(str(n) for n in names))
                     for k, names in data["passed"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        self._remember(key, found)
        return found

    def _remember(self, key: str, outcomes: dict[str, Outcome]) -> None:
        with self._lock:
            if len(self._memo) >= _MEMO_MAX:
                self._memo.clear()
            self._memo[key] = outcomes

    def _store(self, key: str, outcomes: dict[str, Outcome]) -> None:
        """Cache what the run showed; never an error (it is asked again next time)."""
        if any(o.error for o in outcomes.values()):
            return
        self._remember(key, {k: o for k, o in outcomes.items() if o.passed})
        path = self._path(key)
        if path is None:
            return
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"passed": {k: list(o.passed) for k, o in outcomes.items()
                                      if o.passed}}, fh)
            os.replace(tmp, path)
        except OSError:  # a read-only cache costs speed, never a verdict
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
