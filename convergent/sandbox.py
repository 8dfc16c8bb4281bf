"""Run untrusted Python (an agent's answer plus its tests) within limits; say how it ended.

Every run is a fresh interpreter (``python -I -S``) in a fresh working directory, with a
scrubbed environment, a wall-clock timeout that kills the whole process group, and
rlimits on CPU time, address space, file size, open files and processes.

When bubblewrap (``bwrap``) works here, the run is also cut off from the network and
from the file system: new user/pid/net/ipc/uts namespaces, a read-only root holding only
``/usr``, the ``/lib*`` dirs and the interpreter's prefix (no ``/proc``), and one size-capped
tmpfs, ``/work``, as the only writable place. The records repo, the home dir and the
caller's cwd are never mounted. Without bwrap only the rlimits apply, and :func:`isolation`
says so (a :class:`SandboxWarning` is issued once per process).

Fork bombs: ``RLIMIT_NPROC`` is set inside the sandbox's own user namespace, where it
counts only that sandbox's processes; killing bwrap tears down its pid namespace and every
process in it. The kernel never applies the limit to real root, so when we are root the
program runs as the real ``nobody`` uid (see :func:`_nobody_userns`).

What a run means (did the tests pass?) is :mod:`convergent.harness`'s to say; this module
only runs a program within limits and says how it ended.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BWRAP = "bwrap"
RLIMITS_ONLY = "rlimits-only"
NOBODY = 65534
TAIL_BYTES = 4000
SANDBOX_WORKDIR = "/work"
# How long a killed sandbox may take to tear down its pid namespace.
TEARDOWN_S = 5.0
# Only what the interpreter needs; symlinked ones (merged /usr) are mirrored as symlinks.
SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/bin")

# Runs first inside the sandbox: maybe drop from root to nobody (see _nobody_userns), set
# every rlimit, then exec the program in a clean interpreter. Limits set here, after bwrap
# made the user namespace, count processes per sandbox rather than per host user.
LAUNCHER = """\
import os, resource, sys
become, cpu, mem, fsize, nofile, nproc = (int(x) for x in sys.argv[1:7])
if become >= 0:
    os.setgroups([])
    os.setgid(become)
    os.setuid(become)
for res, soft, hard in ((resource.RLIMIT_CPU, cpu, cpu + 1), (resource.RLIMIT_AS, mem, mem),
                        (resource.RLIMIT_FSIZE, fsize, fsize),
                        (resource.RLIMIT_NOFILE, nofile, nofile),
                        (resource.RLIMIT_NPROC, nproc, nproc)):
    resource.setrlimit(res, (soft, hard))
os.execv(sys.executable, [sys.executable, "-I", "-S", *sys.argv[7:]])
"""

# Enters a new user namespace, says so, and holds it until its stdin closes, so that
# root can write a uid map with more than one line (unshare(1) cannot, without newuidmap).
USERNS_HOLDER = """\
import ctypes, sys
if ctypes.CDLL(None, use_errno=True).unshare(0x10000000) != 0:  # CLONE_NEWUSER
    sys.exit(1)
sys.stdout.buffer.write(b"u")
sys.stdout.flush()
sys.stdin.read()
"""


class SandboxWarning(UserWarning):
    """The sandbox runs with weaker isolation than bubblewrap gives."""


@dataclass(frozen=True)
class SandboxLimits:
    """What one run may use. ``max_file_mb`` caps each file and the whole work dir."""

    timeout_s: float = 10.0
    memory_mb: int = 512
    cpu_s: int = 10
    max_processes: int = 64
    max_file_mb: int = 16
    max_open_files: int = 256

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SandboxLimits:
        """The ``[sandbox]`` table of a records repo's config."""
        table = config.get("sandbox", {})
        defaults = cls()
        return cls(
            timeout_s=float(table.get("timeout_s", defaults.timeout_s)),
            memory_mb=int(table.get("memory_mb", defaults.memory_mb)),
            cpu_s=int(table.get("cpu_s", defaults.cpu_s)),
            max_processes=int(table.get("max_processes", defaults.max_processes)),
            max_file_mb=int(table.get("max_file_mb", defaults.max_file_mb)),
        )


@dataclass(frozen=True)
class SandboxResult:
    """The outcome of one run. ``reason`` says why it did not pass ("" when ``ok``)."""

    ok: bool
    returncode: int | None
    timed_out: bool
    stdout: str
    stderr: str
    wall_s: float
    isolation: str
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SandboxResult:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Isolation:
    """How runs are isolated here: ``kind`` is "bwrap" or "rlimits-only"; ``note`` says
    what that means (and, for rlimits-only, why bwrap is not used)."""

    kind: str
    note: str
    # Root: bwrap joins a user namespace we make, and the program runs as nobody.
    as_nobody: bool = False


# --- bubblewrap command line -------------------------------------------------------------


def interpreter() -> str:
    """The real interpreter behind this one (a venv's python is only a link into it)."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def _interpreter_dirs() -> list[str]:
    """Dirs holding the interpreter and its stdlib that the system dirs do not cover."""
    candidates = {os.path.realpath(sys.base_prefix), os.path.dirname(interpreter())}
    covered = tuple(d + "/" for d in SYSTEM_DIRS)
    kept = sorted(d for d in candidates if not (d + "/").startswith(covered))
    # Drop a dir nested in another one we bind anyway.
    return [d for d in kept if not any(d != o and d.startswith(o + "/") for o in kept)]


def _bind_args() -> list[str]:
    """Read-only binds of what the interpreter needs, nothing else (no home, no cwd)."""
    args: list[str] = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in _interpreter_dirs():
        # bwrap makes a mount point's parents 0700; nobody must be able to walk them
        # (a pyenv interpreter lives under /root).
        for parent in reversed(Path(path).parents[:-1]):
            args += ["--perms", "0755", "--dir", str(parent)]
        args += ["--ro-bind", path, path]
    return args


def _namespace_args(userns_fd: int | None) -> list[str]:
    """Every namespace but the user one is bwrap's; the user one is ours when we are root
    (see :func:`_nobody_userns`), else bwrap's own, closed to nesting."""
    shared = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
              "--unshare-cgroup-try"]
    if userns_fd is None:
        return [*shared, "--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
    # Root inside our namespace, with just what the launcher needs to become nobody.
    return [*shared, "--userns", str(userns_fd), "--uid", "0", "--gid", "0",
            "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]


def _bwrap_command(limits: SandboxLimits, file_fds: Mapping[str, int], userns_fd: int | None,
                   info_fd: int, spec: RunSpec) -> list[str]:
    main = f"{SANDBOX_WORKDIR}/main.py"
    files: list[str] = []
    for name, fd in file_fds.items():
        files += ["--file", str(fd), f"{SANDBOX_WORKDIR}/{name}"]
    return [
        shutil.which(BWRAP) or BWRAP,
        *_namespace_args(userns_fd), "--die-with-parent", "--new-session",
        "--info-fd", str(info_fd),
        *_bind_args(),
        "--dev", "/dev",
        # The only writable place; world-writable since the program may run as nobody.
        "--perms", "1777", "--size", str(limits.max_file_mb * 1024 * 1024),
        "--tmpfs", SANDBOX_WORKDIR,
        *files,
        "--remount-ro", "/",
        "--chdir", SANDBOX_WORKDIR,
        "--clearenv", *_env_args(SANDBOX_WORKDIR),
        *_launch(limits, main, become=NOBODY if userns_fd is not None else -1, args=spec.args),
    ]


@contextlib.contextmanager
def _nobody_userns() -> Iterator[int]:
    """A fresh user namespace mapping root and nobody to themselves, as an fd for
    ``bwrap --userns``.

    The kernel never applies RLIMIT_NPROC to real root, not even inside a user namespace
    that bwrap makes (it maps the sandbox uid onto ours). In this one, the launcher can
    drop to the real ``nobody`` uid after bwrap set up the mounts, and then the process
    limit holds.
    """
    holder = subprocess.Popen(
        [interpreter(), "-I", "-S", "-c", USERNS_HOLDER], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, env={})
    assert holder.stdin is not None and holder.stdout is not None
    try:
        if holder.stdout.read(1) != b"u":
            raise OSError("could not create a user namespace (unshare failed)")
        for name in ("uid_map", "gid_map"):
            Path(f"/proc/{holder.pid}/{name}").write_text(f"0 0 1\n{NOBODY} {NOBODY} 1\n")
        fd = os.open(f"/proc/{holder.pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        holder.stdin.close()
        holder.stdout.close()
        holder.wait()
    try:
        yield fd
    finally:
        os.close(fd)


def _env(workdir: str) -> dict[str, str]:
    """The whole environment a program sees: nothing of the caller's (no tokens, no
    PYTHONPATH, no HOME pointing at real files)."""
    return {"PATH": "/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "LC_ALL": "C.UTF-8"}


def _env_args(workdir: str) -> list[str]:
    args: list[str] = []
    for key, value in _env(workdir).items():
        args += ["--setenv", key, value]
    return args


def _launch(limits: SandboxLimits, main: str, become: int = -1,
            args: Sequence[str] = ()) -> list[str]:
    mib = 1024 * 1024
    return [interpreter(), "-I", "-S", "-c", LAUNCHER, str(become), str(limits.cpu_s),
            str(limits.memory_mb * mib), str(limits.max_file_mb * mib),
            str(limits.max_open_files), str(limits.max_processes), main, *args]


# --- running -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSpec:
    """What a run gets besides its program: files beside ``main.py`` in its work dir, its
    command-line arguments, and fds it inherits (same numbers inside)."""

    files: Mapping[str, bytes] = field(default_factory=dict)
    args: Sequence[str] = ()
    pass_fds: Sequence[int] = ()


def run_python(program: str, *, limits: SandboxLimits, spec: RunSpec | None = None,
               iso: Isolation | None = None) -> SandboxResult:
    """Run ``program`` once in the sandbox; ``ok`` iff it exits 0 within the limits."""
    return _run(program, limits, iso or isolation(), spec or RunSpec())


def _run(program: str, limits: SandboxLimits, iso: Isolation,
         spec: RunSpec | None = None) -> SandboxResult:
    spec = spec or RunSpec()
    with tempfile.TemporaryDirectory(prefix="convergent-sandbox-") as tmp:
        host = Path(tmp)
        (host / "main.py").write_text(program, encoding="utf-8")
        for name, data in spec.files.items():
            (host / name).write_bytes(data)
        out_path, err_path = host / "stdout", host / "stderr"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            returncode, timed_out, wall = _spawn(host, limits, iso, out.fileno(), err.fileno(),
                                                 spec)
        stdout, stderr = _tail(out_path), _tail(err_path)
    ok = returncode == 0 and not timed_out
    reason = "" if ok else _why(returncode, timed_out, stderr, limits, iso)
    return SandboxResult(ok, returncode, timed_out, stdout, stderr, round(wall, 3), iso.kind,
                         reason)


def _spawn(host: Path, limits: SandboxLimits, iso: Isolation, out: int, err: int,
           spec: RunSpec) -> tuple[int | None, bool, float]:
    with contextlib.ExitStack() as stack:
        info_r = -1
        if iso.kind == BWRAP:
            file_fds: dict[str, int] = {}
            for name in ("main.py", *spec.files):
                file_fds[name] = os.open(host / name, os.O_RDONLY | os.O_CLOEXEC)
                stack.callback(os.close, file_fds[name])
            userns_fd = stack.enter_context(_nobody_userns()) if iso.as_nobody else None
            info_r, info_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
            stack.callback(os.close, info_r)
            argv = _bwrap_command(limits, file_fds, userns_fd, info_w, spec)
            env = _env(SANDBOX_WORKDIR)
            fds = [*file_fds.values(), info_w, *spec.pass_fds] + (
                [] if userns_fd is None else [userns_fd])
        else:
            argv = _launch(limits, str(host / "main.py"), args=spec.args)
            env, fds = _env(str(host)), list(spec.pass_fds)
        start = time.monotonic()
        # start_new_session: the run gets its own process group, so a timeout kills it
        # and everything it forked without touching us.
        try:
            proc = subprocess.Popen(argv, cwd=host, env=env, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=err, start_new_session=True,
                                    pass_fds=fds)
        finally:
            if info_r >= 0:
                os.close(info_w)
        timed_out = _wait(proc, limits.timeout_s, info_r)
        return proc.returncode, timed_out, time.monotonic() - start


def _exited_within(proc: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """Whether the process ends within ``timeout_s``. A pidfd wakes us the moment it does;
    ``Popen.wait(timeout)`` polls with sleeps doubling up to 50 ms, which would add tens
    of milliseconds to every run."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        try:
            proc.wait(timeout=timeout_s)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        poller = select.poll()  # not select(): fds above 1024 are fine
        poller.register(pidfd, select.POLLIN)
        ready = bool(poller.poll(max(0, int(timeout_s * 1000))))
    finally:
        os.close(pidfd)
    if ready:
        proc.wait()
    return ready


def _wait(proc: subprocess.Popen[bytes], timeout_s: float, info_fd: int) -> bool:
    """Wait up to ``timeout_s``, then kill the run; True when it had to be killed."""
    timed_out = not _exited_within(proc, timeout_s)
    if timed_out:
        # Kill the sandbox's pid 1 first: the kernel kills every process of its pid
        # namespace and pid 1 only finishes dying once they are all gone, so bwrap
        # returns after the teardown (killing bwrap itself would leave it asynchronous).
        init_pid = _sandbox_init_pid(info_fd) if info_fd >= 0 else None
        if init_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(init_pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=TEARDOWN_S)
    # And the whole process group, so that nothing the program left behind (without
    # bwrap: background children) outlives the run.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return timed_out


def _sandbox_init_pid(info_fd: int) -> int | None:
    """The host pid of the sandbox's pid 1, from bwrap's ``--info-fd`` JSON."""
    try:
        info, _ = json.JSONDecoder().raw_decode(os.read(info_fd, 65536).decode())
        return int(info["child-pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _tail(path: Path) -> str:
    with open(path, "rb") as fh:
        fh.seek(max(0, path.stat().st_size - TAIL_BYTES))
        return fh.read().decode("utf-8", errors="replace")


def _why(returncode: int | None, timed_out: bool, stderr: str, limits: SandboxLimits,
         iso: Isolation) -> str:
    if timed_out:
        return f"timed out after {limits.timeout_s:g} s (wall clock)"
    assert returncode is not None
    # bwrap reports a child killed by signal N as exit 128+N.
    signum = -returncode if returncode < 0 else (
        returncode - 128 if iso.kind == BWRAP and returncode > 128 else 0)
    if signum == signal.SIGXCPU or signum == signal.SIGKILL:
        return f"killed by {signal.Signals(signum).name} (CPU limit {limits.cpu_s} s)"
    if signum > 0:
        return f"killed by signal {signum}"
    last = next((ln for ln in reversed(stderr.strip().splitlines()) if ln.strip()), "")
    return f"exit status {returncode}" + (f": {last.strip()}" if last else "")


# --- choosing the isolation --------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def isolation() -> Isolation:
    """How runs are isolated on this machine, probed once per process."""
    iso = _probe()
    if iso.kind != BWRAP:
        warnings.warn(iso.note, SandboxWarning, stacklevel=2)
    return iso


def _probe() -> Isolation:
    weaker = ("only rlimits apply: the network and the file system are NOT cut off "
              "(install Debian's `bubblewrap` for full isolation)")
    if shutil.which(BWRAP) is None:
        return Isolation(RLIMITS_ONLY, f"bwrap not found on PATH; {weaker}")
    as_nobody = os.geteuid() == 0
    candidate = Isolation(BWRAP, "bwrap: no network, read-only system dirs, tmpfs /work"
                          + (", run as nobody" if as_nobody else ""), as_nobody)
    try:
        probe = _run("print('ok')", SandboxLimits(timeout_s=10.0), candidate)
    except OSError as exc:
        return Isolation(RLIMITS_ONLY, f"bwrap is installed but unusable here ({exc}); {weaker}")
    if probe.ok and probe.stdout.strip() == "ok":
        return candidate
    return Isolation(RLIMITS_ONLY, f"bwrap is installed but failed here ({probe.reason}; "
                     f"{probe.stderr.strip()[-300:]}); {weaker}")
