"""No orphans: what `run_module` starts (training, generation) dies with its parent.

A parent process runs a module through :func:`convergent.child_process.run_module`; that
module starts a child of its own, then sleeps. The parent is killed (SIGKILL: nothing of
it runs; SIGTERM: it cleans up) and neither the module's process nor its child survives.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

psutil = pytest.importorskip("psutil")

SLEEPER = """\
import os, subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(os.getpid(), grandchild.pid, flush=True)
time.sleep(600)
"""
PARENT = """\
from convergent.child_process import run_module
run_module("orphan_sleeper", [], timeout_s=None, what="sleeping")
"""


def _alive(pids: list[int], timeout_s: float = 20.0) -> list[int]:
    """Which of ``pids`` still run after ``timeout_s`` (zombies count as dead)."""
    deadline = time.monotonic() + timeout_s
    while True:
        alive = []
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


@pytest.mark.parametrize(("sig", "exit_code"), [(signal.SIGKILL, -signal.SIGKILL),
                                                (signal.SIGTERM, 128 + signal.SIGTERM)])
def test_a_killed_parent_leaves_no_process_behind(tmp_path: Path, sig: int, exit_code: int
                                                   ) -> None:
    (tmp_path / "orphan_sleeper.py").write_text(SLEEPER)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]))
    parent = subprocess.Popen([sys.executable, "-c", PARENT], env=env, stderr=subprocess.PIPE,
                              text=True)
    try:
        assert parent.stderr is not None
        line = parent.stderr.readline()  # run_module echoes the child's output to stderr
        child, grandchild = (int(x) for x in line.split())
        assert _alive([child, grandchild], timeout_s=0) == [child, grandchild]
        os.kill(parent.pid, sig)
        assert parent.wait(timeout=30) == exit_code
        assert _alive([child, grandchild]) == []
    finally:
        parent.kill()
        parent.wait()


def test_a_quiet_child_keeps_its_output_for_the_error_and_names_its_timeout_setting(
        tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # How the built-in member `base` runs generation: quiet, its own error type, the setting
    # that bounds it named on a timeout.
    from convergent.child_process import run_module
    from convergent.errors import ConvergentError
    from convergent.members import MemberError

    (tmp_path / "noisy_failer.py").write_text("print('about to fail', flush=True)\n"
                                              "raise SystemExit(3)\n")
    (tmp_path / "slow_sleeper.py").write_text("import time\ntime.sleep(600)\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]))
    quiet = {"what": "member 'base': generation", "error": MemberError, "echo": False,
             "timeout_setting": "[members] timeout_s"}
    with pytest.raises(MemberError, match=r"^member 'base': generation failed \(exit 3\)\n"
                                          r"about to fail\n$"):
        run_module("noisy_failer", [], timeout_s=60, **quiet)  # type: ignore[arg-type]
    assert "about to fail" not in capfd.readouterr().err
    with pytest.raises(MemberError, match=r"^member 'base': generation timed out after 1.0s "
                                          r"\(\[members\] timeout_s\)"):
        run_module("slow_sleeper", [], timeout_s=1.0, **quiet)  # type: ignore[arg-type]
    with pytest.raises(ConvergentError) as echoed:
        run_module("noisy_failer", [], timeout_s=60, what="echoed")
    assert "echoed failed (exit 3)" in str(echoed.value)
    assert "about to fail" in capfd.readouterr().err
