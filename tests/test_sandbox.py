"""The execution sandbox: hostile programs fail within the limits and the host is unharmed."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import textwrap
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from convergent import sandbox
from convergent.sandbox import SandboxLimits, SandboxResult, isolation, run_python

LIMITS = SandboxLimits(timeout_s=2.0, cpu_s=1, memory_mb=256, max_processes=16, max_file_mb=4)
# Time a killed run may take beyond its limit (the kill, the pid namespace teardown).
SLACK_S = 2.0

needs_bwrap = pytest.mark.skipif(isolation().kind != sandbox.BWRAP,
                                 reason=f"needs bubblewrap: {isolation().note}")


def run(program: str, limits: SandboxLimits = LIMITS) -> SandboxResult:
    return run_python(textwrap.dedent(program), limits=limits)


def assert_failed_within_limits(result: SandboxResult) -> None:
    assert not result.ok, result
    assert result.reason
    assert result.wall_s < LIMITS.timeout_s + SLACK_S


def test_bwrap_is_used_when_installed() -> None:
    # Installed but unusable would silently weaken every verification: say so loudly.
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    assert isolation().kind == sandbox.BWRAP, isolation().note


def test_passing_program_passes() -> None:
    result = run("print(sum(range(10)))")
    assert result.ok and result.returncode == 0 and not result.timed_out
    assert result.stdout.strip() == "45"
    assert result.isolation == isolation().kind


def test_failing_program_says_why() -> None:
    result = run("assert 1 + 1 == 3, 'bad sum'")
    assert not result.ok and result.returncode == 1
    assert "AssertionError: bad sum" in result.reason


def test_environment_is_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVERGENT_TEST_TOKEN", "hunter2")
    result = run("""
        import os
        assert "CONVERGENT_TEST_TOKEN" not in os.environ
        assert not any("hunter2" in v for v in os.environ.values())
    """)
    assert result.ok, result


def test_infinite_loop_is_stopped() -> None:
    result = run("while True:\n    pass\n")
    assert_failed_within_limits(result)
    assert "CPU limit" in result.reason or result.timed_out


def test_sleeping_forever_times_out() -> None:
    result = run("import time\ntime.sleep(60)\n")
    assert_failed_within_limits(result)
    assert result.timed_out and "timed out" in result.reason


def test_memory_bomb_is_stopped() -> None:
    result = run("""
        hoard = []
        while True:
            hoard.append(bytearray(16 * 1024 * 1024))
    """)
    assert_failed_within_limits(result)
    assert "MemoryError" in result.reason


def test_huge_file_is_refused() -> None:
    result = run("open('big.bin', 'wb').write(b'x' * (64 * 1024 * 1024))\n")
    assert_failed_within_limits(result)


@needs_bwrap
def test_fork_bomb_is_contained() -> None:
    marker = "bomb" + uuid.uuid4().hex[:8]  # fits the 15-byte process name
    result = run(f"""
        import ctypes, os
        ctypes.CDLL(None).prctl(15, {marker.encode()!r})  # PR_SET_NAME, inherited by forks
        while True:
            try:
                os.fork()
            except OSError:
                pass
    """)
    assert_failed_within_limits(result)
    # The host is unharmed: we can still fork, and nothing of the bomb survived.
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: subprocess.run(["true"]).returncode, range(32)))
    assert codes == [0] * 32
    assert not _processes_named(marker)


def _processes_named(name: str) -> list[str]:
    found = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == name:
                found.append(comm.parent.name)
        except OSError:
            continue  # exited while we looked
    return found


@needs_bwrap
@pytest.mark.parametrize("where", ["tmp_path", "/tmp", "home"])
def test_write_outside_its_dir_fails(where: str, tmp_path: Path) -> None:
    base = {"tmp_path": tmp_path, "/tmp": Path("/tmp"), "home": Path.home()}[where]
    target = base / f"convergent-escape-{uuid.uuid4().hex}"
    try:
        result = run(f"open({str(target)!r}, 'w').write('escaped')\n")
        assert_failed_within_limits(result)
        assert not target.exists()
    finally:
        target.unlink(missing_ok=True)


@needs_bwrap
def test_records_repo_is_out_of_reach(tmp_path: Path) -> None:
    repo = tmp_path / "records"
    (repo / "data").mkdir(parents=True)
    secret = repo / "data" / "secret.txt"
    secret.write_text("s3cret-value")
    result = run(f"print(open({str(secret)!r}).read())\n")
    assert_failed_within_limits(result)
    assert "s3cret-value" not in result.stdout + result.stderr


@needs_bwrap
def test_network_is_cut_off() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        result = run(f"""
            import socket
            socket.create_connection(("127.0.0.1", {port}), timeout=1).sendall(b"hi")
        """)
        assert_failed_within_limits(result)
        listener.settimeout(0.2)
        with pytest.raises(TimeoutError):
            listener.accept()


def test_rlimits_only_still_applies_the_limits() -> None:
    weaker = sandbox.Isolation(sandbox.RLIMITS_ONLY, "test")
    assert sandbox._run("print('ok')", LIMITS, weaker).ok
    bomb = sandbox._run("x = bytearray(1 << 30)", LIMITS, weaker)
    assert not bomb.ok and "MemoryError" in bomb.reason
    assert bomb.isolation == sandbox.RLIMITS_ONLY


def test_missing_bwrap_is_stated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox.shutil, "which", lambda _name: None)
    weaker = sandbox._probe()
    assert weaker.kind == sandbox.RLIMITS_ONLY
    assert "bwrap not found" in weaker.note and "NOT cut off" in weaker.note


def test_sandbox_runs_the_base_interpreter() -> None:
    # The program must not see our venv's site-packages (it runs with -I -S).
    result = run("import sys\nprint(sys.flags.isolated, sys.flags.no_site)\n")
    assert result.stdout.split() == ["1", "1"]
    assert sys.version_info[:2] == tuple(
        int(x) for x in run("import sys; print(*sys.version_info[:2])").stdout.split())
