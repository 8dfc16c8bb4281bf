"""Train one LoRA adapter with one backend, in this process.

    python -m convergent.trainer.train --spec spec.json

``spec.json`` is a :class:`convergent.trainer.spec.TrainSpec` as JSON. The run writes into
``<output_dir>.partial/`` and renames it to ``<output_dir>`` only when everything succeeded, so
a run killed mid-training never leaves a complete-looking adapter directory. On success::

    <output_dir>/adapter/              the LoRA adapter (PEFT save_pretrained), content-addressed
    <output_dir>/resolved_config.json  the spec, with the backend resolved
    <output_dir>/train_report.json     backend, steps, losses, base hash before/after, tokens/s,
                                       wall time, peak memory

Exit status: 0 trained, 1 spec refused or training failed (reason on stderr), 2 usage error.
Parent processes call :func:`run_training`, which runs this module in a subprocess: importing
``unsloth`` patches TRL for the whole process, so a backend never shares a process.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import functools
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from convergent.errors import ConvergentError
from convergent.trainer.backends import BACKENDS, TRAIN_REPORT, TrainingError, run_backend
from convergent.trainer.spec import SpecError, TrainSpec

MODULE = "convergent.trainer.train"
CHILD = "convergent.trainer.child"
PARTIAL_SUFFIX = ".partial"
_TAIL_BYTES = 8192


def partial_dir(output_dir: Path) -> Path:
    """Where a run writes before it is complete: ``<output_dir>.partial``."""
    return output_dir.with_name(output_dir.name + PARTIAL_SUFFIX)


def refuse_existing_output(output_dir: Path) -> None:
    if output_dir.exists():
        raise SpecError("output_dir", f"{output_dir} already exists; adapters are never "
                        "overwritten")


def train_in_process(spec: TrainSpec, *, started: float | None = None) -> dict[str, Any]:
    """Train ``spec`` here (one backend per process!) and publish ``output_dir`` atomically."""
    started = time.perf_counter() if started is None else started
    backend = detect_backend(spec.backend)
    out = Path(spec.output_dir)
    refuse_existing_output(out)
    staging = partial_dir(out)
    # Leftovers of a killed run: ours by name, never complete, safe to drop.
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        report = run_backend(backend, spec.replace(backend=backend), staging, started=started)
        os.rename(staging, out)  # atomic on one filesystem: the adapter appears whole or not
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return report


def main(argv: Sequence[str] | None = None) -> int:
    started = time.perf_counter()
    parser = argparse.ArgumentParser(prog="python -m convergent.trainer.train",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, required=True, help="TrainSpec JSON file")
    args = parser.parse_args(argv)
    # One GPU at most: hide the others before torch is imported.
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "0")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        spec = TrainSpec.load(args.spec)
        report = train_in_process(spec, started=started)
    except (ConvergentError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps({key: report[key] for key in ("backend", "steps", "loss", "adapter_sha256")}))
    return 0


@functools.cache
def cuda_available() -> bool:
    """Whether torch sees a CUDA device, asked in a subprocess (this process stays torch-free)."""
    probe = "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 3)"
    try:
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=120,
                                preexec_fn=dies_with_this_process())
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def detect_backend(forced: str | None) -> str:
    """``forced`` when given; otherwise ``"unsloth"`` with a CUDA GPU and unsloth installed.

    Never imports unsloth (nor torch) here: unsloth patches TRL process-wide on import.
    """
    if forced not in (None, "auto"):
        if forced not in BACKENDS:
            raise SpecError("backend", f"must be one of auto, {', '.join(BACKENDS)}")
        return forced
    if importlib.util.find_spec("unsloth") is None:
        return "peft"
    return "unsloth" if cuda_available() else "peft"


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
               error: type[ConvergentError] = TrainingError) -> None:
    """Run ``python -m module args`` in a new session, echoing its output to our stderr.

    The child and its own children never outlive us: their process group is killed on a
    timeout, an error, Ctrl-C, SIGTERM or SIGHUP, and when we die any other way (even by
    SIGKILL) the kernel tells the child, which kills its group (:mod:`convergent.trainer.
    child`).
    Raises ``error`` with the tail of the child's output when it fails or times out.
    """
    env = dict(os.environ)
    # Stable set order in the child (PEFT serializes target_modules from a set).
    env.setdefault("PYTHONHASHSEED", "0")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    # convergent.trainer.child takes its whole process group down when we die.
    command = [sys.executable, "-m", CHILD, module, *args]
    with _terminate_raises():
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   env=env, start_new_session=True,
                                   preexec_fn=dies_with_this_process(signal.SIGTERM))
        tail: deque[bytes] = deque()
        pump = threading.Thread(target=_pump, args=(process, tail), daemon=True)
        pump.start()
        try:
            code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_session(process, pump)
            raise error(f"{what} timed out after {timeout_s}s\n{_text(tail)}") from None
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


def _pump(process: subprocess.Popen[bytes], tail: deque[bytes]) -> None:
    assert process.stdout is not None
    kept = 0
    # os.read returns what is there: progress lines show up as they are printed.
    while chunk := os.read(process.stdout.fileno(), 4096):
        sys.stderr.buffer.write(chunk)
        sys.stderr.flush()
        tail.append(chunk)
        kept += len(chunk)
        while kept - len(tail[0]) > _TAIL_BYTES:
            kept -= len(tail.popleft())


def _text(tail: deque[bytes]) -> str:
    return b"".join(tail).decode("utf-8", "replace")[-_TAIL_BYTES:]


def run_training(spec: TrainSpec, *, timeout_s: float | None = None) -> dict[str, Any]:
    """Train ``spec`` in a subprocess (``python -m convergent.trainer.train``); return its report.

    The backend is resolved here first (see :func:`detect_backend`), so the report, the saved
    config and a later regeneration all name the backend that really ran.
    """
    refuse_existing_output(Path(spec.output_dir))
    spec = spec.replace(backend=detect_backend(spec.backend))
    with tempfile.TemporaryDirectory(prefix="convergent-train-") as scratch:
        spec_path = Path(scratch) / "spec.json"
        spec_path.write_text(spec.to_json(), encoding="utf-8")
        run_module(MODULE, ["--spec", str(spec_path)], timeout_s=timeout_s,
                   what=f"training ({spec.backend})")
    report: dict[str, Any] = json.loads(
        (Path(spec.output_dir) / TRAIN_REPORT).read_text(encoding="utf-8"))
    return report


if __name__ == "__main__":
    raise SystemExit(main())
