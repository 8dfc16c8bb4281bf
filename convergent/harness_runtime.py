"""The verification harness inside the sandbox: run a program's tests, then report unforgeably.

:mod:`convergent.harness` sends this file into the sandbox as the main program, beside the
program to check (compiled code objects, see :func:`convergent.harness.prepare`)::

    python -I -S main.py INPUT_FD REPORT_FD HARNESS

where ``main.py`` only runs HARNESS, this file compiled by the host, and INPUT_FD holds the
run's key (a hex line) and then the payload. The host imports it
only for its constants; it runs as ``__main__`` only in the sandbox.

Who can forge what. The response and the tests (both emitter-supplied, both untrusted) run
in this process, in a worker thread. The verdict is a report that the *guard* writes to
REPORT_FD, authenticated with a keyed BLAKE2b MAC whose key (a per-run random nonce) is
read from INPUT_FD, with the compiled case, and closed before any untrusted code runs
(nothing of either stays readable: the tests' constants are the expected answers). The
key lives only in the closure of the guard, a ``sys.addaudithook`` hook: hooks cannot be
removed or listed, and the routes to a closure are refused: frames (``sys._getframe``,
``tb_frame``, ``gi_frame``, trace and profile functions, ``gc.garbage`` through
``DEBUG_SAVEALL``), the object graph (``gc`` referrers), raw memory (ctypes and the test
extension modules, ``/proc``, native code written by the program), new audit hooks. No
class of this module has methods (``object.__subclasses__()`` would hand them out, and
with them this module's globals). Signal handlers, which would receive frames, cannot be
installed outside the main thread.

The guard is also the judge. Each ``assert`` of the tests is rewritten (on the host) into a
call of ``sys.audit`` injected as a code constant, so that neither the response nor the
tests can reroute it; the guard checks the value honestly (an object that equals anything,
a comparison that is not a real ``bool``, a truth value decided by the program's own
``__bool__``), counts it, and ends the run at the first failure. Phase announcements count
only when they come from :func:`_worker`'s own code object. Whatever ends the process
before the guard writes its report (``os._exit``, a signal, a crash) leaves no report,
which the host reads as "exited before the tests finished".
"""

from __future__ import annotations

import builtins as _builtins_module

# Everything defined below resolves builtins in this private copy, never in the builtins
# module that the program may patch.
globals()["__builtins__"] = dict(_builtins_module.__dict__)

import _blake2  # noqa: E402
import _stat  # noqa: E402
import _thread  # noqa: E402
import marshal  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from types import (  # noqa: E402
    BuiltinFunctionType,
    CodeType,
    FunctionType,
    MethodDescriptorType,
    MethodType,
    ModuleType,
    WrapperDescriptorType,
)

# No typing at run time: importing it costs tens of milliseconds per verification.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    Bound = list[tuple[str, Any, str, Any]]

PROTOCOL = 1
PLACEHOLDER = "\0convergent.audit"  # replaced by sys.audit in the tests' code constants
EVENT_ASSERT = "convergent.assert"
EVENT_COMPARE = "convergent.compare"
EVENT_PHASE = "convergent.phase"
EVENT_RETURN = "convergent.return"
COMPARE_OPS = ("==", "!=", "<", "<=", ">", ">=", "is", "is not", "in", "not in")
PHASES = ("armed", "null", "null_done", "response", "response_done", "tests", "tests_done",
          "finish")
# Modules whose import is refused during the run: raw memory and interpreter internals,
# and a process spawner that raises no audit event.
DENIED_MODULES = frozenset({
    "ctypes", "_ctypes", "_ctypes_test", "_testcapi", "_testinternalcapi", "_testbuffer",
    "_testclinic", "_testimportmultiple", "_testmultiphase", "_xxsubinterpreters",
    "_xxtestfuzz", "_posixsubprocess", "xxlimited", "xxlimited_35", "xxsubtype"})
EXIT_NO_REPORT = 70
ASSERT_NOTHING_NULL = ("the tests assert nothing: they also pass a null solution (every "
                       "function of the response replaced by one returning None)")
ASSERT_NOTHING_REACHED = "the tests assert nothing: no assertion was reached"
EXITED = "exited before the tests finished"
# Callers allowed to take a frame: each reads only its caller's module name from it.
FRAME_READERS = frozenset({("collections/__init__.py", "namedtuple"),
                           ("enum.py", "_create_"), ("typing.py", "_caller")})
FRAME_ATTRS = frozenset({"tb_frame", "gi_frame", "cr_frame", "ag_frame"})
PROCESS_EVENTS = {
    "os.fork": "forked", "os.forkpty": "forked", "os.exec": "exec'd a program",
    "os.posix_spawn": "spawned a process", "os.spawn": "spawned a process",
    "os.system": "ran a shell command", "subprocess.Popen": "spawned a process",
    "os.kill": "sent a signal", "os.killpg": "sent a signal",
    "signal.pthread_kill": "sent a signal", "pty.spawn": "spawned a process",
    "resource.setrlimit": "changed its resource limits",
    "resource.prlimit": "changed its resource limits",
}
INTROSPECTION_EVENTS = {
    "sys._current_frames": "inspected the frames of running threads",
    "sys._current_exceptions": "inspected the frames of running threads",
    "gc.get_objects": "walked the garbage collector's objects (gc.get_objects)",
    "gc.get_referrers": "walked the garbage collector's referrers (gc.get_referrers)",
    "gc.get_referents": "walked the garbage collector's referents (gc.get_referents)",
    "sys.settrace": "installed a trace function", "sys.setprofile": "installed a profiler",
    "sys.addaudithook": "added an audit hook", "code.__new__": "built a code object",
    "function.__new__": "built a function from a code object",
}
WRITE_EVENTS = frozenset({
    "os.mkdir", "os.rmdir", "os.remove", "os.rename", "os.chmod", "os.chown", "os.utime",
    "os.truncate", "os.chflags", "os.lchflags", "os.mkfifo", "os.setxattr",
    "os.removexattr", "sqlite3.connect"})
LINK_EVENTS = frozenset({"os.link", "os.symlink", "os.mknod"})
READ_EVENTS = frozenset({"os.listdir", "os.scandir", "os.getxattr", "os.listxattr"})
WATCHED = frozenset({
    EVENT_ASSERT, EVENT_COMPARE, EVENT_PHASE, EVENT_RETURN, "sys._getframe", "object.__getattr__",
    "object.__setattr__", "object.__delattr__", "marshal.loads", "marshal.load", "compile",
    "import", "open", "os.chdir", *PROCESS_EVENTS, *INTROSPECTION_EVENTS, *WRITE_EVENTS,
    *LINK_EVENTS, *READ_EVENTS})
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
# Values whose comparisons and truth are builtin semantics (exact types only).
SCALARS = frozenset({int, float, complex, bool, str, bytes, type(None), range})
CONTAINERS = frozenset({list, tuple, set, frozenset, dict})
BUILTIN_BASES = (int, float, complex, str, bytes, tuple, list, dict, set, frozenset)
COMPARISON_METHODS = ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__")
TRUTH_METHODS = ("__bool__", "__len__")
CONTAINER_METHODS = ("__contains__", "__iter__", "__getitem__")
# What a builtin type's instance must keep of its type's own behaviour (a subclass may add
# methods, not override these): a float whose __sub__ answers 0.0 passes a tolerance test.
BEHAVIOUR_METHODS = (*COMPARISON_METHODS, *TRUTH_METHODS, *CONTAINER_METHODS, "__hash__",
                     "__str__", "__repr__", "__format__", "__int__", "__float__",
                     "__complex__", "__index__", "__round__", "__trunc__", "__floor__",
                     "__ceil__", "__abs__", "__neg__", "__pos__", "__invert__",
                     *(f"__{p}{op}__" for op in ("add", "sub", "mul", "truediv", "floordiv",
                                                  "mod", "pow", "divmod", "matmul", "and",
                                                  "or", "xor", "lshift", "rshift")
                       for p in ("", "r", "i")))
# How extension modules are created during the run: the originals of ``_imp``'s
# constructors live only in the suspended frame of ``keeper`` (reachable through
# ``gi_frame``, which the guard refuses); ``guarded`` replaces them in ``_imp``. Only
# standard-library extension files load (a program could write its own .so), never a
# denied module, and no loaded module is created twice (a fresh ``_imp`` would bring the
# unguarded originals back).
KEEPER_SOURCE = """\
def make(original, refuse, namespace, lock):
    def keeper():
        answer = None
        while True:
            name, origin, file = yield answer
            why = refuse(name, origin)
            if why is not None:
                answer = (False, ImportError(why))
                continue
            try:
                spec = namespace(name=name, origin=origin)
                answer = (True, original(spec) if file is None else original(spec, file))
            except BaseException as exc:
                answer = (False, exc)
    gen = keeper()
    next(gen)
    def guarded(spec, file=None):
        name, origin = spec.name, getattr(spec, "origin", None)
        with lock:
            ok, value = gen.send((name, origin, file))
        if ok:
            return value
        raise value
    return guarded
"""
# The wrapper around each function of the response that the tests call: the guard vets
# what it returns (compiled before the run; its code authenticates the event).
WRAPPER_SOURCE = """\
def wrap(function, audit, event, name):
    def wrapper(*args, **kwargs):
        result = function(*args, **kwargs)
        audit.__call__(event, result, name)
        return result
    return wrapper
"""
WALK_BUDGET = 2_000_000

_type_dict = type.__dict__["__dict__"].__get__
_type_mro = type.__dict__["__mro__"].__get__
_type_name = type.__dict__["__name__"].__get__
_type_qualname = type.__dict__["__qualname__"].__get__
_code_of = FunctionType.__dict__["__code__"].__get__
_module_dict = vars(ModuleType)["__dict__"].__get__
_type_flags = type.__dict__["__flags__"].__get__
HEAP_TYPE = 1 << 9
_exc_args = BaseException.__dict__["args"].__get__
_exit_code = SystemExit.__dict__["code"].__get__
_list_append = list.append
_list_pop = list.pop
_dict_get = dict.get
_ident = _thread.get_ident
_getframe = sys._getframe
_write = os.write
_exit = os._exit
_stat_path = os.stat
_getcwd = os.getcwd
_audit = sys.audit


def _tname(obj: Any) -> str:
    """The type's name, read past any metaclass (a program may define one)."""
    try:
        return str(_type_name(type(obj)))
    except BaseException:  # untrusted objects may raise anything
        return "object"


class _Dishonest(Exception):  # noqa: N818 - a verdict, not an error
    """Raised inside the guard's checks; never reaches the program. (The runtime defines
    no class with methods: ``object.__subclasses__()`` would hand out their functions, and
    with them this module's globals.)"""



def _a(value: Any) -> str:
    """``value`` named by its type, for messages."""
    return f"a value of type {_tname(value)}"


def _short(value: Any) -> str:
    """A short, deterministic repr: builtin values only, else the type's name."""
    try:
        kind = type(value)
        if kind in SCALARS:
            text = repr(value)
        elif kind in CONTAINERS and len(value) <= 20 and all(
                type(v) in SCALARS for v in (value.values() if kind is dict else value)):
            if kind is dict and not all(type(k) in SCALARS for k in value):
                return f"<a dict of {len(value)} items>"
            text = repr(value)
        else:
            return f"<{_tname(value)} object>"
    except BaseException:  # e.g. an int too long to print
        return f"<{_tname(value)} object>"
    return text if len(text) <= 80 else text[:77] + "..."


def _describe(exc: BaseException) -> tuple[str, str]:
    """("exit" | "error", "Name: message") for an exception, without running its code."""
    name = _tname(exc)
    kind = "exit" if isinstance(exc, SystemExit | KeyboardInterrupt | GeneratorExit) else "error"
    try:
        if isinstance(exc, SystemExit):
            code = _exit_code(exc)
            return kind, f"SystemExit({code!r})" if type(code) in SCALARS else "SystemExit(...)"
        args = _exc_args(exc)
        if len(args) == 1 and type(args[0]) is str and not isinstance(exc, KeyError):
            message = args[0]
        else:
            message = ", ".join(_short(a) for a in args)
    except BaseException:
        message = "<unprintable>"
    text = f"{name}: {message}" if message else name
    return kind, text if len(text) <= 300 else text[:297] + "..."


def _stdlib_code(code: CodeType, stdlib: str) -> bool:
    filename = code.co_filename
    return type(filename) is str and (filename.startswith(stdlib) or
                                      filename.startswith("<frozen "))


def _normalize(path: str, cwd: str) -> str | None:
    """Lexically absolute ``path``; None for a relative path that climbs with ``..`` (it
    may be relative to a dir fd the guard cannot see)."""
    parts: list[str] = []
    if not path.startswith("/"):
        if ".." in path.split("/"):
            return None
        path = cwd + "/" + path
    for part in path.split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part and part != ".":
            parts.append(part)
    return "/" + "/".join(parts)


def _within(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(root + "/") for root in roots)


def _make_guard(key: bytes, report_fd: int, workdir: str, worker_code: CodeType,
                tests_codes: dict[int, CodeType], arm_modules: dict[str, ModuleType],
                modules: dict[str, Any]) -> Any:
    """The audit hook that judges the run; its closure is the only holder of ``key``."""
    stdlib = sys._stdlib_dir + "/"  # type: ignore[attr-defined]
    read_roots = (workdir, sys._stdlib_dir, "/usr",  # type: ignore[attr-defined]
                  "/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")
    stdout, stderr = sys.stdout, sys.stderr
    finishing = _thread.allocate_lock()
    own: list[int | None] = [None]  # the thread whose next audit event is the guard's own
    state: dict[str, Any] = {"armed": False, "phase": 0, "null_failed": False,
                             "asserts": 0, "tests_failure": None}
    last_compare: dict[int, tuple[int, Any, Any]] = {}
    kinds: dict[tuple[int, tuple[str, ...]], tuple[type, bool]] = {}
    arm_types: dict[int, type] = {}  # the classes loaded when the guard arms

    def finish(passed: bool, reason: str) -> None:
        """Write the one report of this run and end the process."""
        finishing.acquire()  # a second finisher waits here until the first one exits
        try:  # whatever fails in here, the process ends: without a report, unverified
            for stream in (stdout, stderr):
                try:  # noqa: SIM105 - contextlib is Python code the program could patch
                    stream.flush()
                except BaseException:
                    pass
            clean = reason.replace("\r", " ").replace("\n", " ").replace("\t", " ")[:600]
            body = f"{1 if passed else 0}\t{state['asserts']}\t{clean}".encode(
                "utf-8", "backslashreplace")
            mac = _blake2.blake2b(body, key=key, digest_size=32).hexdigest().encode()
            _write(report_fd, body + b"\n" + mac + b"\n")
        finally:
            _exit(0)

    def refuse(what: str) -> None:
        finish(False, f"refused: the program {what}")

    def caller() -> CodeType:
        """The code that raised the current event (called from ``hook`` itself only)."""
        own[0] = _ident()
        try:
            frame = _getframe(2)  # 0: caller(), 1: hook(), 2: whoever raised the event
        finally:
            own[0] = None
        return frame.f_code

    def code_of(function: FunctionType) -> CodeType:
        own[0] = _ident()
        try:
            return _code_of(function)  # type: ignore[no-any-return]
        finally:
            own[0] = None

    def protected(klass: type) -> bool:
        """Whether the class is the standard library's (present at arming, or bound under
        its own name in a standard-library module)."""
        if arm_types.get(id(klass)) is klass:
            return True
        try:
            modname = _type_dict(klass).get("__module__")
            module = _dict_get(modules, modname) if type(modname) is str else None
            if not isinstance(module, ModuleType):
                return False
            namespace = _module_dict(module)
            filename = _dict_get(namespace, "__file__")
            if not (type(filename) is str and filename.startswith(stdlib)):
                return False
            found: Any = module
            for part in _type_qualname(klass).split("."):
                found = _dict_get(_module_dict(found) if isinstance(found, ModuleType)
                                  else _type_dict(found), part)
            return found is klass
        except BaseException:  # a hostile class is simply not protected
            return False

    def programs(kind: type, names: tuple[str, ...]) -> bool:
        """Whether the program's own code decides any of ``names`` for ``kind`` (C slots
        and standard-library functions do not count)."""
        cached = kinds.get((id(kind), names))
        if cached is not None and cached[0] is kind:
            return cached[1]
        answer, resolved = False, set()
        for klass in _type_mro(kind):
            namespace = _type_dict(klass)
            for name in names:
                if name in resolved or name not in namespace:
                    continue
                resolved.add(name)  # the first class in the MRO that defines it decides
                method = namespace[name]
                if method is None or type(method) in (WrapperDescriptorType,
                                                      MethodDescriptorType):
                    continue  # a C slot, or ``__hash__ = None`` (unhashable)
                if type(method) is FunctionType and _stdlib_code(code_of(method), stdlib):
                    continue
                answer = True
        kinds[(id(kind), names)] = (kind, answer)
        return answer

    def walk(value: Any, program: set[int], suspects: list[Any]) -> None:
        """Collect the classes in ``value`` whose comparisons are the program's, and their
        instances (to probe)."""
        stack, seen, budget = [value], set(), WALK_BUDGET
        collections = _dict_get(modules, "_collections")
        deque = _dict_get(_module_dict(collections), "deque") if isinstance(
            collections, ModuleType) else None
        while stack:
            budget -= 1
            if budget < 0:
                raise _Dishonest(f"a compared value is too large to check (more than "
                                 f"{WALK_BUDGET} parts)")
            item = stack.pop()
            kind = type(item)
            if kind in SCALARS or id(item) in seen:
                continue
            seen.add(id(item))
            if kind is dict or isinstance(item, dict):
                stack.extend(dict.keys(item))
                stack.extend(dict.values(item))
                if kind is dict:
                    continue
            elif kind in CONTAINERS:
                stack.extend(item)
                continue
            elif isinstance(item, list | tuple | set | frozenset):
                base: Any = next(b for b in (list, tuple, set, frozenset) if isinstance(item, b))
                stack.extend(base.__iter__(item))
            elif deque is not None and isinstance(item, deque):
                stack.extend(deque.__iter__(item))
            if programs(kind, COMPARISON_METHODS):
                if protected(kind):
                    raise _Dishonest(f"the standard library's {_type_qualname(kind)} compares "
                                     "through the program's code (it was patched)")
                program.add(id(kind))
                suspects.append(item)
                try:
                    attrs = object.__getattribute__(item, "__dict__")
                except BaseException:  # no __dict__ (or a hostile one)
                    continue
                if type(attrs) is dict:
                    stack.extend(attrs.values())

    def probe(item: Any, op: str) -> str | None:
        """Why ``item`` is not an honest value, judged against an unrelated object."""
        canary = object()
        checks: tuple[tuple[str, bool], ...] = (("==", False), ("!=", True))
        if op in ("<", "<=", ">", ">="):
            checks = ((op, False),)
        for check, honest in checks:
            try:
                answer = OPERATORS[check](item, canary)
            except BaseException:  # refusing to compare is honest
                continue
            if type(answer) is not bool:
                return f"{_a(item)} answers {check} with {_a(answer)}, not a bool"
            if answer is not honest:
                return (f"{_a(item)} says it is {check} an unrelated object: its {check} "
                        "does not compare honestly")
        return None

    def compare(op: str, left: Any, right: Any) -> tuple[Any, BaseException | None]:
        """The comparison itself; what it raises is the tests' own exception (returned, to
        be raised once the guard is done)."""
        try:
            return OPERATORS[op](left, right), None
        except BaseException as exc:
            return None, exc

    def judge_compare(op: str, left: Any, right: Any
                      ) -> tuple[Any, str | None, BaseException | None]:
        """The comparison's result, why its values are not honest (or None), and what the
        comparison itself raised (or None)."""
        if op == "is":
            return left is right, None, None
        if op == "is not":
            return left is not right, None, None
        if type(left) in SCALARS and type(right) in SCALARS:
            result, raised = compare(op, left, right)
            return result, None, raised
        membership = op in ("in", "not in")
        sides: tuple[set[int], set[int]] = (set(), set())
        try:
            custom_container = membership and programs(type(right), CONTAINER_METHODS)
            suspects: list[Any] = []
            walk(left, sides[0], suspects)
            walk(right, sides[1], suspects)
            for item in suspects[:64]:
                reason = probe(item, "==" if membership else op)
                if reason is not None:
                    return False, reason, None
            if custom_container and contains_anything(right):
                return False, f"{_a(right)} says it contains an unrelated object", None
        except _Dishonest as exc:
            return False, str(exc), None
        except BaseException as exc:  # a value that breaks the check fails it
            return False, f"checking the compared values raised {_describe(exc)[1]}", None
        result, raised = compare(op, left, right)
        if raised is not None:
            return None, None, raised
        if type(result) is not bool:
            return False, f"the comparison {op} returned {_a(result)}, not a bool", None
        related = result is (op not in ("!=", "not in"))
        if related and not custom_container and sides[0] != sides[1]:
            odd = next(iter(sides[0] ^ sides[1]))
            item = next((s for s in suspects if id(type(s)) == odd), None)
            return False, (f"{_a(item)} matches a value of another type through the program's "
                           "own comparison code (compared values must be builtin, "
                           "standard-library, or of the same class)"), None
        return result, None, None

    def contains_anything(container: Any) -> bool:
        try:
            return bool(object() in container)
        except BaseException:  # refusing is honest
            return False

    def vet(value: Any) -> str | None:
        """Why a value the response returns is not honest: an instance of a builtin type
        whose class overrides that type's behaviour with the program's code."""
        stack, seen, budget = [value], set(), WALK_BUDGET
        while stack:
            budget -= 1
            if budget < 0:
                return f"it is too large to check (more than {WALK_BUDGET} parts)"
            item = stack.pop()
            kind = type(item)
            if kind in SCALARS or id(item) in seen:
                continue
            seen.add(id(item))
            if kind is dict:
                stack.extend(dict.keys(item))
                stack.extend(dict.values(item))
                continue
            if kind in CONTAINERS:
                stack.extend(item)
                continue
            base: Any = next((b for b in BUILTIN_BASES if isinstance(item, b)), None)
            if base is not None and programs(kind, BEHAVIOUR_METHODS):
                return (f"{_a(item)} is a {_type_name(base)} whose class overrides "
                        f"{_type_name(base)} behaviour with the program's own code")
            if _type_flags(kind) & HEAP_TYPE and protected(kind) and programs(
                    kind, BEHAVIOUR_METHODS):
                return (f"the standard library's {_type_qualname(kind)} behaves through the "
                        "program's code (it was patched)")
            if base is dict:
                stack.extend(dict.keys(item))
                stack.extend(dict.values(item))
            elif base is not None and base not in SCALARS:
                stack.extend(base.__iter__(item))
            if _type_flags(kind) & HEAP_TYPE and not protected(kind):
                try:
                    attrs = object.__getattribute__(item, "__dict__")
                except BaseException:  # noqa: S112 - no __dict__ (or a hostile one)
                    continue
                if type(attrs) is dict:
                    stack.extend(attrs.values())
        return None

    def on_return(code: CodeType, args: tuple[Any, ...]) -> None:
        if id(code) not in tests_codes:
            refuse("raised a harness event (convergent.return) outside the tests")
        result, name = args
        try:
            reason = vet(result)
        except BaseException as exc:
            reason = f"checking it raised {_describe(exc)[1]}"
        if reason is not None:
            finish(False, f"{name}() returned a dishonest value: {reason}")

    def judge_truth(value: Any) -> tuple[bool, str | None]:
        kind = type(value)
        if kind in SCALARS or kind in CONTAINERS:
            return bool(value), None
        if programs(kind, TRUTH_METHODS):
            return False, (f"the truth of {_a(value)} is decided by the program's own "
                           "__bool__/__len__ (assert a comparison instead)")
        return bool(value), None

    def on_compare(code: CodeType, args: tuple[Any, ...]) -> BaseException | None:
        if id(code) not in tests_codes:
            refuse("raised a harness event (convergent.compare) outside the tests")
        op, lineno, box, left, right = args
        if op not in COMPARE_OPS or type(box) is not list:
            refuse("raised a malformed harness event")
        result, dishonest, raised = judge_compare(op, left, right)
        if dishonest is not None:
            finish(False, f"line {lineno}: dishonest value: {dishonest}")
        if raised is not None:
            return raised
        last_compare[_ident()] = (lineno, left, right)
        _list_append(box, result)
        return None

    def on_assert(code: CodeType, args: tuple[Any, ...]) -> BaseException | None:
        if id(code) not in tests_codes:
            refuse("raised a harness event (convergent.assert) outside the tests")
        lineno, text, value = args
        try:
            held, dishonest = judge_truth(value)
        except BaseException as exc:
            held, dishonest = False, f"its truth value raised {_describe(exc)[1]}"
        if dishonest is not None:
            finish(False, f"line {lineno}: dishonest value: {dishonest}")
        phase = PHASES[state["phase"] - 1]
        if phase == "tests":
            state["asserts"] += 1
        if held:
            return None
        message = f"AssertionError at tests line {lineno}: assert {text}"
        compared = last_compare.pop(_ident(), None)
        if compared is not None and compared[0] == lineno:
            message += f" (left: {_short(compared[1])}, right: {_short(compared[2])})"
        if phase == "tests":
            finish(False, message)
        state["null_failed"] = True
        return AssertionError(message)

    def on_phase(code: CodeType, args: tuple[Any, ...]) -> None:
        if code is not worker_code:
            refuse("raised a harness event (convergent.phase) it does not own")
        name, detail = args
        if state["phase"] >= len(PHASES) or PHASES[state["phase"]] != name:
            finish(False, f"the harness protocol was broken (phase {name!r} out of order)")
        state["phase"] += 1
        if name == "armed":
            arm_types.update((id(v), v) for m in arm_modules.values()
                             for v in list(m.__dict__.values()) if isinstance(v, type))
            state["armed"] = True
        elif name == "null_done" and detail is None and not state["null_failed"]:
            finish(False, ASSERT_NOTHING_NULL)
        elif name == "response_done" and detail is not None:
            kind, text = detail
            finish(False, f"{EXITED}: {text} raised by the response" if kind == "exit" else
                   f"the response raised {text} (before the tests ran)")
        elif name == "tests_done":
            state["tests_failure"] = detail
        elif name == "finish":
            if detail is not None:
                finish(False, f"the program {detail}")
            failure = state["tests_failure"]
            if failure is not None:
                kind, text = failure
                finish(False, f"{EXITED}: {text} raised during the tests" if kind == "exit"
                       else f"the tests raised {text}")
            if state["asserts"] == 0:
                finish(False, ASSERT_NOTHING_REACHED)
            finish(True, f"tests passed: {state['asserts']} assertion(s) held and the "
                   "tests fail a null solution")

    def check_path(path: Any, write: bool, what: str) -> str | None:
        """The path made absolute, refusing it where the program may not go."""
        if type(path) is int or path is None:
            return None  # an open fd (every dir fd the program can get is in its work dir)
        if type(path) is bytes:
            path = path.decode("utf-8", "surrogateescape")
        if type(path) is not str:
            refuse(f"{what} an unusual path object")
        absolute = _normalize(path, _getcwd())
        if absolute is None:
            refuse(f"{what} {path!r}, which climbs out of its directory")
            return None
        if write and not _within(absolute, (workdir,)):
            refuse(f"wrote outside its work dir ({what} {absolute})")
        if write and absolute.endswith((".pyc", ".so")):
            refuse(f"wrote compiled code ({absolute})")
        if not write and not _within(absolute, read_roots):
            refuse(f"read outside its sandbox ({what} {absolute})")
        return absolute

    def on_open(args: tuple[Any, ...]) -> None:
        path, _mode, flags = args
        write = type(flags) is int and bool(flags & WRITE_FLAGS)
        absolute = check_path(path, write, "opened")
        if write or absolute is None or _within(absolute, (workdir,)):
            return
        try:
            is_dir = _stat.S_ISDIR(_stat_path(absolute).st_mode)
        except OSError:
            return
        if is_dir:  # a dir fd outside would let a relative path escape (dir_fd)
            refuse(f"opened a directory outside its work dir ({absolute})")

    def on_import(name: Any) -> None:
        if type(name) is not str:
            return
        if name in DENIED_MODULES or name.split(".")[0] in DENIED_MODULES:
            refuse(f"imported {name} (raw memory or process access)")
        if name in arm_modules and name not in modules:
            refuse(f"re-imported {name} after removing it from sys.modules")

    def on_setattr(event: str, args: tuple[Any, ...]) -> None:
        obj, name = args[0], args[1]
        if isinstance(obj, FunctionType) and name == "__code__":
            refuse(f"replaced a function's code ({event})")
        if isinstance(obj, type) and protected(obj):
            refuse(f"changed the standard library's class {_type_qualname(obj)} ({event} "
                   f"{name})")

    def on_frame(code: CodeType, what: str) -> None:
        filename = code.co_filename
        if filename.startswith(stdlib) and (filename[len(stdlib):], code.co_name) in \
                FRAME_READERS:
            return
        if not _stdlib_code(code, stdlib):
            refuse(what)
        raise ValueError("frame inspection is refused during verification")

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event not in WATCHED and not event.startswith("ctypes."):
            return
        if own[0] is not None and own[0] == _ident():
            own[0] = None  # the guard's own frame or code lookup
            return
        if event in (EVENT_COMPARE, EVENT_ASSERT, EVENT_PHASE, EVENT_RETURN):
            # The guard's own failure (say, a RecursionError after the program lowered the
            # limit) ends the run: raised into tests, it could be swallowed there.
            try:
                code = caller()
                if event == EVENT_COMPARE:
                    raised = on_compare(code, args)
                elif event == EVENT_ASSERT:
                    raised = on_assert(code, args)
                else:
                    raised = None
                    (on_return if event == EVENT_RETURN else on_phase)(code, args)
            except BaseException as exc:
                finish(False, f"the harness could not judge a {event} event: "
                       f"{_describe(exc)[1]}")
            if raised is not None:
                raise raised
            return
        if not state["armed"]:
            if event == "import" and type(args[0]) is str and (
                    args[0] in DENIED_MODULES or args[0].split(".")[0] in DENIED_MODULES):
                raise ImportError(f"{args[0]} may not be loaded during verification")
            return
        if event.startswith("ctypes."):
            refuse(f"used ctypes ({event})")
        elif event in PROCESS_EVENTS:
            refuse(f"{PROCESS_EVENTS[event]} ({event})")
        elif event in INTROSPECTION_EVENTS:
            refuse(f"{INTROSPECTION_EVENTS[event]} ({event})")
        elif event == "sys._getframe":
            on_frame(caller(), "inspected the call stack (sys._getframe)")
        elif event == "object.__getattr__":
            obj, name = args
            if name in FRAME_ATTRS:
                on_frame(caller(), f"inspected a frame ({_tname(obj)}.{name})")
        elif event in ("object.__setattr__", "object.__delattr__"):
            on_setattr(event, args)
        elif event in ("marshal.loads", "marshal.load"):
            if caller().co_filename != "<frozen importlib._bootstrap_external>":
                refuse(f"loaded marshalled code ({event})")
        elif event == "compile":
            filename = args[1]
            if type(filename) is bytes:
                filename = filename.decode("utf-8", "surrogateescape")
            if type(filename) is str and (filename.startswith(stdlib) or filename.startswith(
                    "<frozen") or filename in ("<tests>", "<response>", "<harness>")):
                refuse(f"compiled code under a borrowed file name ({filename})")
        elif event == "import":
            on_import(args[0])
        elif event == "open":
            on_open(args)
        elif event in LINK_EVENTS:
            refuse(f"made a link ({event})")
        elif event == "os.chdir":
            check_path(args[0], True, "changed directory to")
        elif event in WRITE_EVENTS:
            if not (event == "sqlite3.connect" and args[0] in (":memory:", b":memory:", "")):
                check_path(args[0], True, event)
                if event == "os.rename":
                    check_path(args[1], True, event)
        elif event in READ_EVENTS:
            check_path(args[0] if args else None, False, event)

    return hook


OPERATORS: dict[str, Any] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
    "in": lambda a, b: a in b, "not in": lambda a, b: a not in b}


def _inject(code: CodeType, found: dict[int, CodeType]) -> CodeType:
    """``code`` with the placeholder constant replaced by ``sys.audit``, recursively;
    every resulting code object is recorded in ``found`` (they authenticate the tests)."""
    consts = tuple(_audit if type(c) is str and c == PLACEHOLDER else
                   _inject(c, found) if type(c) is CodeType else c for c in code.co_consts)
    fresh = code.replace(co_consts=consts)
    found[id(fresh)] = fresh
    return fresh


def _null_function() -> Any:
    """What replaces each function of the response in the null run (isolated globals)."""
    return eval("lambda *args, **kwargs: None", {"__builtins__": {}})


def _exec(code: CodeType | None, namespace: dict[str, Any]) -> tuple[str, str] | None:
    """Run ``code``; how it ended early, or None when it ran to the end."""
    if code is None:
        return None
    try:
        exec(code, namespace)  # this is the sandboxed program
    except BaseException as exc:  # every way out is a result
        return _describe(exc)
    return None


# The class attributes whose replacement changes behaviour (data attributes such as caches
# and flags change legitimately).
METHODISH = (FunctionType, BuiltinFunctionType, classmethod, staticmethod, property,
             WrapperDescriptorType, MethodDescriptorType)


def _snapshot(modules: dict[str, Any]) -> tuple[dict[str, Any], Bound]:
    """Builtins as they are, every function or class bound in a loaded module, and every
    attribute of the (patchable) classes those modules define: (where, namespace, key,
    value), the namespace a module dict or a class (its ``__dict__`` is read at the end)."""
    bound: Bound = []
    for name, module in list(modules.items()):
        if not isinstance(module, ModuleType):
            continue
        namespace = module.__dict__
        for key, value in list(namespace.items()):
            if isinstance(value, FunctionType | BuiltinFunctionType | type | MethodType):
                bound.append((name, namespace, key, value))
            if isinstance(value, type) and _type_flags(value) & HEAP_TYPE and _type_dict(
                    value).get("__module__") == name:
                where = f"{name}.{_type_qualname(value)}"
                bound.extend((where, value, k, v) for k, v in _type_dict(value).items()
                             if isinstance(v, METHODISH))
    return dict(_builtins_module.__dict__), bound


SYS_HOOKS = ("excepthook", "unraisablehook", "displayhook", "breakpointhook", "modules",
             "meta_path", "path_hooks")


def _tampered(builtins_before: dict[str, Any], bound: Bound,
              sys_before: dict[str, Any], meta_before: list[Any],
              arm_modules: dict[str, ModuleType], modules: dict[str, Any],
              tests_ns: dict[str, Any], defined: dict[str, Any] | None) -> str | None:
    """What the program changed that it must not, or None."""
    missing = object()
    now = _builtins_module.__dict__
    for key, value in builtins_before.items():
        if _dict_get(now, key, missing) is not value:
            return f"changed builtins.{key}"
    for key in now:
        if key not in builtins_before:
            return f"added builtins.{key}"
    sys_now = sys.__dict__
    for key in SYS_HOOKS:
        if _dict_get(sys_now, key, missing) is not sys_before[key]:
            return f"replaced sys.{key}"
    if list(sys.meta_path) != meta_before:
        return "changed sys.meta_path"
    for name, module in arm_modules.items():
        if _dict_get(modules, name, missing) is not module:
            return f"replaced sys.modules[{name!r}]"
    for name, namespace, key, value in bound:
        now_ns = namespace if type(namespace) is dict else _type_dict(namespace)
        if now_ns.get(key, missing) is not value:
            return f"changed {name}.{key}"
    if defined is not None:
        for key, value in defined.items():
            if isinstance(value, FunctionType | type) and _dict_get(
                    tests_ns, key, missing) is not value:
                return f"changed the tests' {key}"
    return None


def _wrapped(wrap: Any, function: FunctionType) -> Any:
    """``function`` as the tests see it: the guard vets each value it returns."""
    wrapper = wrap(function, _audit, EVENT_RETURN, str(function.__name__))
    for attr in ("__name__", "__qualname__", "__doc__", "__module__"):
        setattr(wrapper, attr, getattr(function, attr))
    wrapper.__wrapped__ = function
    return wrapper


def _codes(code: CodeType, found: dict[int, CodeType]) -> None:
    found[id(code)] = code
    for const in code.co_consts:
        if type(const) is CodeType:
            _codes(const, found)


def _worker(work: tuple[Any, ...]) -> None:
    """The run: the null solution, then the response and its tests. Its announcements are
    the only phase events the guard accepts (it checks this function's code object)."""
    (response, tests, call, null_names, builtins_before, bound, sys_before, meta_before,
     arm_modules, modules, wrap) = work
    try:
        _audit(EVENT_PHASE, "armed", None)
        null_ns: dict[str, Any] = {"__builtins__": dict(builtins_before), "__name__": "__main__"}
        null = _null_function()
        for name in null_names:
            null_ns[name] = null
        modules["__main__"] = ModuleType("__main__")
        _audit(EVENT_PHASE, "null", None)
        failure = _exec(tests, null_ns) or _exec(call, null_ns)
        _audit(EVENT_PHASE, "null_done", failure)
        module = ModuleType("__main__")
        module.__dict__["__builtins__"] = _builtins_module
        modules["__main__"] = module
        _audit(EVENT_PHASE, "response", None)
        failure = _exec(response, module.__dict__)
        _audit(EVENT_PHASE, "response_done", failure)
        tests_ns = dict(module.__dict__)
        tests_ns["__builtins__"] = dict(builtins_before)
        for key, value in list(tests_ns.items()):
            if type(value) is FunctionType and _code_of(value).co_filename == "<response>":
                tests_ns[key] = _wrapped(wrap, value)
        _audit(EVENT_PHASE, "tests", None)
        failure = _exec(tests, tests_ns)
        defined = None
        if failure is None and call is not None:
            defined = dict(tests_ns)
            failure = _exec(call, tests_ns)
        _audit(EVENT_PHASE, "tests_done", failure)
        tamper = _tampered(builtins_before, bound, sys_before, meta_before, arm_modules,
                           modules, tests_ns, defined)
        _audit(EVENT_PHASE, "finish", tamper)
    finally:
        _exit(EXIT_NO_REPORT)


def _close_gc() -> None:
    """No ``gc.DEBUG_SAVEALL``: it would put collected frames (a traceback's, the guard's)
    in the plain list ``gc.garbage``, past the guard's refusal of ``tb_frame``. ``gc`` is
    loaded now, so it can be neither re-imported nor created again (a fresh module would
    bring ``set_debug`` back)."""
    import gc

    del gc.set_debug


def _guard_imp(modules: dict[str, Any]) -> None:
    """Replace ``_imp``'s module constructors with guarded ones (see KEEPER_SOURCE)."""
    import _imp
    from types import SimpleNamespace

    stdlib = sys._stdlib_dir + "/"  # type: ignore[attr-defined]
    loaded = frozenset(modules)

    def refuse(name: Any, origin: Any, builtin: bool) -> str | None:
        if type(name) is not str:
            return "a module name must be a str"
        if name.rpartition(".")[2] in DENIED_MODULES or name.split(".")[0] in DENIED_MODULES:
            return f"{name} may not be loaded during verification"
        if name in loaded or name in modules:
            return f"{name} is loaded already and may not be created again"
        if not builtin and not (type(origin) is str and (_normalize(origin, "/") or "")
                                .startswith(stdlib)):
            return f"only the standard library's extension modules load ({origin!r})"
        return None

    namespace: dict[str, Any] = {"__builtins__": {
        "getattr": getattr, "next": next, "ImportError": ImportError,
        "BaseException": BaseException}}
    exec(compile(KEEPER_SOURCE, "<harness>", "exec"), namespace)
    make = namespace["make"]
    _imp.create_dynamic = make(_imp.create_dynamic, lambda n, o: refuse(n, o, False),
                               SimpleNamespace, _thread.allocate_lock())
    _imp.create_builtin = make(_imp.create_builtin, lambda n, o: refuse(n, o, True),
                               SimpleNamespace, _thread.allocate_lock())


def _main() -> None:
    input_fd, report_fd = int(sys.argv[1]), int(sys.argv[2])
    chunks = []
    while chunk := os.read(input_fd, 1 << 20):
        chunks.append(chunk)
    os.close(input_fd)
    hex_key, _, payload = b"".join(chunks).partition(b"\n")
    key = bytes.fromhex(hex_key.decode("ascii"))
    protocol, response, tests, call, null_names, preimports = marshal.loads(payload)
    del chunks, payload
    if protocol != PROTOCOL:
        raise SystemExit(f"harness protocol {protocol}, expected {PROTOCOL}")
    sys.dont_write_bytecode = True
    sys.argv[:] = ["main.py"]
    tests_codes: dict[int, CodeType] = {}
    tests = _inject(tests, tests_codes)
    call = _inject(call, tests_codes) if call is not None else None
    wrapper_code = compile(WRAPPER_SOURCE, "<tests>", "exec")
    _codes(wrapper_code, tests_codes)
    wrapper_ns: dict[str, Any] = {"__builtins__": {}}
    exec(wrapper_code, wrapper_ns)
    modules = sys.modules
    arm_modules: dict[str, ModuleType] = {}  # filled below, before the guard arms
    guard = _make_guard(key, report_fd, os.getcwd(), _worker.__code__, tests_codes,
                        arm_modules, modules)
    del key
    sys.addaudithook(guard)  # from here on, a denied module never loads
    del guard
    for name in preimports:
        try:
            __import__(name)
        except BaseException:  # the program will see the error
            continue
    _guard_imp(modules)
    _close_gc()
    # __main__ is the worker's to replace (the response runs as __main__).
    arm_modules.update((name, m) for name, m in modules.items()
                       if isinstance(m, ModuleType) and name != "__main__")
    builtins_before, bound = _snapshot(modules)
    sys_before = {name: getattr(sys, name) for name in SYS_HOOKS}
    meta_before = list(sys.meta_path)
    work = (response, tests, call, tuple(null_names), builtins_before, bound, sys_before,
            meta_before, arm_modules, modules, wrapper_ns["wrap"])
    # The untrusted code runs in a worker thread: signal handlers (which would receive this
    # thread's frames) can only be installed from the main thread, which only waits here.
    lock = _thread.allocate_lock()
    lock.acquire()
    _thread.start_new_thread(_worker, (work,))
    del work
    try:
        lock.acquire()
    finally:
        _exit(EXIT_NO_REPORT)


if __name__ == "__main__":
    _main()
