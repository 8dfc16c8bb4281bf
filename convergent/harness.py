"""Did this program pass its tests? One answer, used by every entry point.

The execution verifier, the best-of-N lever, the tripwire's hold-out runs and the dataset
build all ask :meth:`Harness.verify`. A case is a response, its tests and an optional entry
point (the HumanEval convention: the response, then the tests, then
``check(<entry_point>)``). It passes when all of this holds:

- **The harness reports that the tests ran to the end.** The verdict is a report written by
  :mod:`convergent.harness_runtime` inside the sandbox, authenticated with a MAC keyed by a
  per-run nonce (delivered with the compiled case on an fd read and closed before the case
  runs); the exit status alone never counts. Ending early by any route (``sys.exit``,
  ``os._exit``, a signal, a thread, ``atexit``, a fork) is a failure that says what happened.
- **Honest values.** Every comparison in the tests is checked: its result must be a real
  ``bool``, an object that claims to equal an unrelated object fails, and a value of the
  program's own class may only match values of that same class (or builtin semantics).
- **Tests with teeth.** The tests first run against a null solution (each function of the
  response replaced by one returning None); tests that pass it, or that reach no assertion,
  "assert nothing".
- **Isolation.** Without bubblewrap nothing is verified unless the records repo opts in with
  ``[sandbox] allow_unisolated = true``, and then the verdict says so.
- **The program keeps to its sandbox**: no process control, frame or object-graph
  introspection, ctypes, or patched builtins and standard library (see the runtime).

Verdicts are cached in ``.convergent/verify-cache/`` (never mounted in the sandbox), keyed
by the case, the limits, the isolation, the interpreter and this harness's own source;
unisolated and timed-out runs are never cached.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import hmac
import json
import keyword
import marshal
import os
import re
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from convergent import harness_runtime as runtime
from convergent import pyast
from convergent.layout import CONFIG_FILE, local_dir
from convergent.sandbox import (
    BWRAP,
    Isolation,
    RunSpec,
    SandboxLimits,
    SandboxResult,
    isolation,
    run_python,
)

RUNTIME_SOURCE = Path(runtime.__file__).read_text("utf-8")
# Any change to how cases are prepared, run or judged makes a new version (cache keys).
HARNESS_VERSION = hashlib.sha256(
    RUNTIME_SOURCE.encode("utf-8") + Path(__file__).read_bytes()).hexdigest()[:16]
# The sandbox's main program: it runs the runtime, compiled once here (a main script gets
# no .pyc, and compiling the runtime at every start would cost more than running it).
BOOTSTRAP = """\
import marshal, sys
with open(sys.argv[3], "rb") as runtime:
    code = marshal.loads(runtime.read())
exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
"""
REPORT_MAX_BYTES = 65536
NO_ISOLATION = (f"no isolation: {{note}}; execution is not verified without it (set "
                f"[sandbox] allow_unisolated = true in {CONFIG_FILE} to accept rlimits-only "
                "runs on this machine)")
UNISOLATED = "not isolated: allowed by [sandbox] allow_unisolated"
ADDRESS = re.compile(r"0x[0-9a-fA-F]{4,}")


@dataclass(frozen=True)
class ExecutionCase:
    """What runs: the response, then the tests, then ``check(entry_point)`` if given."""

    response: str
    tests: str
    entry_point: str | None = None


@dataclass(frozen=True)
class Outcome:
    """The harness's verdict on one case. ``reason`` is deterministic (it goes into record
    ids): no timings, pids, addresses or nonces."""

    passed: bool
    reason: str
    isolation: str
    asserts: int = 0
    timed_out: bool = False

    def detail(self) -> str:
        where = self.isolation if self.isolation == BWRAP or not self.passed else (
            f"{self.isolation}, {UNISOLATED}")
        return f"{self.reason} (sandbox: {where})"


class CaseError(ValueError):
    """The case cannot run at all (it does not compile, a bad entry point); says why."""


# --- preparing a case --------------------------------------------------------------------


def _audit_call(*args: ast.expr) -> ast.Call:
    """``sys.audit(...)``, reached through a code constant the runtime swaps in (so that
    nothing the program can rebind stands between a test and the judge)."""
    func = ast.Attribute(value=ast.Constant(runtime.PLACEHOLDER), attr="__call__",
                         ctx=ast.Load())
    return ast.Call(func=func, args=list(args), keywords=[])


def _name(name: str) -> ast.Name:
    return ast.Name(id=name, ctx=ast.Load())


def _lambda(params: list[str], body: ast.expr) -> ast.Lambda:
    return ast.Lambda(args=ast.arguments(posonlyargs=[], args=[ast.arg(arg=p) for p in params],
                                         kwonlyargs=[], kw_defaults=[], defaults=[]),
                      body=body)


class _CompareRewriter(ast.NodeTransformer):
    """Every comparison becomes a call into the judge that returns its honest ``bool``.

    ``a OP b`` -> ``(lambda box, l, r: (audit(COMPARE, OP, line, box, l, r), box.pop())[1])
    ([], a, b)``: the operands are evaluated where they were (the lambda only receives
    them), chains evaluate later operands lazily, as Python does.
    """

    def __init__(self, lineno: int | None = None) -> None:
        self.lineno = lineno

    def _judged(self, op: str, line: int, left: str, right: str) -> ast.expr:
        call = _audit_call(ast.Constant(runtime.EVENT_COMPARE), ast.Constant(op),
                           ast.Constant(line), _name("_cv_box"), _name(left), _name(right))
        pop = ast.Call(func=ast.Attribute(value=_name("_cv_box"), attr="pop", ctx=ast.Load()),
                       args=[], keywords=[])
        return ast.Subscript(value=ast.Tuple(elts=[call, pop], ctx=ast.Load()),
                             slice=ast.Constant(1), ctx=ast.Load())

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        self.generic_visit(node)
        line = self.lineno or node.lineno
        ops = [_OP_TEXT[type(op)] for op in node.ops]
        count = len(ops)

        def chain(k: int) -> ast.expr:  # compares operand k-1 with operand k
            judged = self._judged(ops[k - 1], line, f"_cv_v{k - 1}", f"_cv_v{k}")
            if k == count:
                return judged
            later = ast.Call(func=_lambda([f"_cv_v{k + 1}"], chain(k + 1)),
                             args=[ast.Call(func=_name(f"_cv_t{k + 1}"), args=[], keywords=[])],
                             keywords=[])
            return ast.BoolOp(op=ast.And(), values=[judged, later])

        params = ["_cv_box", "_cv_v0", "_cv_v1", *(f"_cv_t{k}" for k in range(2, count + 1))]
        thunks = [_lambda([], operand) for operand in node.comparators[1:]]
        args = [ast.List(elts=[], ctx=ast.Load()), node.left, node.comparators[0], *thunks]
        return ast.copy_location(ast.Call(func=_lambda(params, chain(1)), args=args,
                                          keywords=[]), node)


_OP_TEXT: dict[type, str] = {
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
    ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}


class _TestsRewriter(ast.NodeTransformer):
    """Each ``assert test`` becomes ``audit(ASSERT, line, text, test)``: the judge checks the
    test's truth honestly and counts it (the message is not evaluated: the judge writes
    its own). Comparisons outside asserts are judged too (they may feed one)."""

    def __init__(self, source: str) -> None:
        self.source = source

    def visit_Assert(self, node: ast.Assert) -> ast.stmt:
        text = " ".join((ast.get_source_segment(self.source, node.test) or
                         ast.unparse(node.test)).split())
        text = text if len(text) <= 100 else text[:97] + "..."
        test = _CompareRewriter(node.lineno).visit(node.test)
        call = _audit_call(ast.Constant(runtime.EVENT_ASSERT), ast.Constant(node.lineno),
                           ast.Constant(text), test)
        return ast.copy_location(ast.Expr(value=call), node)

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        return _CompareRewriter().visit(node)  # type: ignore[no-any-return]


def _parse(source: str, what: str) -> ast.Module:
    try:
        return pyast.parse(source, f"<{what}>")
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as exc:
        raise CaseError(f"the {what} do not compile: {_error_text(exc)}"
                        if what == "tests" else
                        f"the {what} does not compile: {_error_text(exc)}") from None


def _compile(tree: ast.Module | str, what: str) -> Any:
    try:
        if isinstance(tree, ast.Module):
            return pyast.compile_tree(tree, f"<{what}>")
        return compile(tree, f"<{what}>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as exc:
        raise CaseError(f"the {what} could not be compiled: {_error_text(exc)}") from None


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} (line {exc.lineno})"
    return f"{type(exc).__name__}: {exc}"[:200]


def _imports(*trees: ast.Module) -> list[str]:
    """Standard-library modules the code imports by name: loaded (and snapshotted) before
    any of it runs, so that a patch to one is seen."""
    found: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module)
    return sorted(name for name in found if name.split(".")[0] in sys.stdlib_module_names
                  and name.split(".")[0] not in runtime.DENIED_MODULES)


def null_names(response: ast.Module, entry_point: str | None) -> list[str]:
    """What the null run replaces: the entry point and each top-level function."""
    names = {node.name for node in response.body
             if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
    if entry_point:
        names.add(entry_point)
    return sorted(names)


def prepare(case: ExecutionCase) -> bytes:
    """The payload the runtime loads: compiled code objects and what it must know."""
    entry = case.entry_point
    if entry is not None and (not isinstance(entry, str) or not entry.isidentifier()
                              or keyword.iskeyword(entry)):
        raise CaseError(f"entry_point {entry!r} is not a Python identifier")
    response_tree = _parse(case.response, "response")
    tests_tree = _parse(case.tests, "tests")
    response = _compile(case.response, "response")
    rewritten = ast.fix_missing_locations(_TestsRewriter(case.tests).visit(tests_tree))
    tests = _compile(rewritten, "tests")
    call = _compile(f"check({entry})\n", "tests") if entry else None
    return marshal.dumps((runtime.PROTOCOL, response, tests, call,
                          tuple(null_names(response_tree, entry)),
                          tuple(_imports(response_tree, tests_tree))))


# --- running a case ----------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def compiled_runtime() -> bytes:
    return marshal.dumps(compile(RUNTIME_SOURCE, "<harness>", "exec", dont_inherit=True))


def run_case(case: ExecutionCase, limits: SandboxLimits, iso: Isolation) -> Outcome:
    """One sandbox run of the harness on ``case`` (no cache)."""
    try:
        payload = prepare(case)
    except CaseError as exc:
        return Outcome(False, str(exc), iso.kind)
    key = os.urandom(32)
    # The key and the compiled case arrive on an anonymous file that the runtime reads and
    # closes before any of the case runs: nothing of either is left in the sandbox (the
    # tests' constants are the expected answers).
    inputs = os.memfd_create("convergent-case")
    report_r, report_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        os.write(inputs, key.hex().encode("ascii") + b"\n" + payload)
        os.lseek(inputs, 0, os.SEEK_SET)
        spec = RunSpec(files={"harness": compiled_runtime()}, pass_fds=(inputs, report_w),
                       args=(str(inputs), str(report_w), "harness"))
        result = run_python(BOOTSTRAP, limits=limits, spec=spec, iso=iso)
        os.close(report_w)
        report_w = -1
        report = _drain(report_r)
    finally:
        for fd in (inputs, report_r, report_w):
            if fd >= 0:
                os.close(fd)
    return _judge(result, report, key)


def _drain(fd: int) -> bytes:
    chunks, size = [], 0
    while size <= REPORT_MAX_BYTES:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _judge(result: SandboxResult, report: bytes, key: bytes) -> Outcome:
    """The verdict: the authenticated report, or how the run ended without one."""
    if result.timed_out:
        return Outcome(False, result.reason, result.isolation, timed_out=True)
    if report:
        body, _, rest = report.partition(b"\n")
        mac, _, tail = rest.partition(b"\n")
        expected = hashlib.blake2b(body, key=key, digest_size=32).hexdigest().encode()
        if not tail and rest.endswith(b"\n") and hmac.compare_digest(mac, expected):
            passed, asserts, reason = body.decode("utf-8", "replace").split("\t", 2)
            if passed == "1" and result.returncode != 0:
                return Outcome(False, f"the program ended abnormally after its report "
                               f"({result.reason})", result.isolation)
            return Outcome(passed == "1", _scrub(reason), result.isolation, int(asserts))
        return Outcome(False, "the harness's report channel holds data the harness did not "
                       "write (a forged or corrupted report)", result.isolation)
    if result.returncode is not None and result.reason and not result.reason.startswith(
            "exit status"):
        return Outcome(False, f"{runtime.EXITED}: {result.reason}", result.isolation)
    last = next((ln.strip() for ln in reversed(result.stderr.splitlines()) if ln.strip()), "")
    tail_text = f": {_scrub(last)}" if last and result.returncode != 0 else ""
    return Outcome(False, f"{runtime.EXITED} (exit status {result.returncode}, no "
                   f"completion report){tail_text}", result.isolation)


def _scrub(text: str) -> str:
    """Deterministic text: memory addresses blanked, length bounded."""
    text = ADDRESS.sub("0x?", text)
    return text if len(text) <= 600 else text[:597] + "..."


# --- the verification cache and the entry point -----------------------------------------


Runner = Callable[[ExecutionCase, SandboxLimits, Isolation], Outcome]


class Harness:
    """Verify cases under one repo's limits and isolation policy, through a cache of
    verdicts (one small JSON file per case in sharded dirs; writes are atomic)."""

    def __init__(self, directory: Path | None, limits: SandboxLimits,
                 allow_unisolated: bool = False, runner: Runner = run_case) -> None:
        self.directory = directory
        self.limits = limits
        self.allow_unisolated = allow_unisolated
        self.runner = runner
        self.hits = 0
        self.runs = 0

    @classmethod
    def for_repo(cls, root: Path, config: Mapping[str, Any]) -> Harness:
        """The harness of a records repo: its ``[sandbox]`` limits and policy, its cache
        in ``.convergent/verify-cache/`` (git-ignored, never mounted in the sandbox)."""
        return cls(local_dir(root) / "verify-cache", SandboxLimits.from_config(config),
                   allow_unisolated(config))

    def key(self, case: ExecutionCase, iso: Isolation) -> str:
        what = {"harness": HARNESS_VERSION, "python": sys.version, "isolation": iso.kind,
                "limits": asdict(self.limits), "case": asdict(case)}
        blob = json.dumps(what, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def verify(self, case: ExecutionCase) -> Outcome:
        """The verdict on ``case``: cached, or run in the sandbox now."""
        iso = isolation()
        if iso.kind != BWRAP and not self.allow_unisolated:
            return Outcome(False, NO_ISOLATION.format(note=iso.note), iso.kind)
        # Only isolated verdicts are kept: an unisolated program could have written here.
        path = None
        if iso.kind == BWRAP and self.directory is not None:
            key = self.key(case, iso)
            path = self.directory / key[:2] / f"{key}.json"
            cached = _load(path, key)
            if cached is not None:
                self.hits += 1
                return cached
        outcome = self.runner(case, self.limits, iso)
        self.runs += 1
        if path is not None and not outcome.timed_out:
            _store(path, path.stem, outcome)
        return outcome


def allow_unisolated(config: Mapping[str, Any]) -> bool:
    """``[sandbox] allow_unisolated``: only a real TOML ``true`` opts in."""
    return config.get("sandbox", {}).get("allow_unisolated", False) is True


def _load(path: Path, key: str) -> Outcome | None:
    """The entry stored for ``key``, or None (absent, unreadable, or bound to another key)."""
    try:
        entry = json.loads(path.read_text("utf-8"))
        outcome = entry["outcome"]
        if entry.get("key") != key or outcome.get("isolation") != BWRAP:
            return None
        return Outcome(passed=outcome["passed"] is True, reason=str(outcome["reason"]),
                       isolation=BWRAP, asserts=int(outcome["asserts"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _store(path: Path, key: str, outcome: Outcome) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"key": key, "outcome": asdict(outcome)}, fh, sort_keys=True)
    os.replace(tmp, path)
