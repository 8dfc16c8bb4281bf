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
import functools
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from convergent.child_process import dies_with_this_process, run_module
from convergent.errors import ConvergentError
from convergent.trainer.backends import BACKENDS, TRAIN_REPORT, TrainingError, run_backend
from convergent.trainer.spec import SpecError, TrainSpec

MODULE = "convergent.trainer.train"
PARTIAL_SUFFIX = ".partial"


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
                   what=f"training ({spec.backend})", error=TrainingError)
    report: dict[str, Any] = json.loads(
        (Path(spec.output_dir) / TRAIN_REPORT).read_text(encoding="utf-8"))
    return report


if __name__ == "__main__":
    raise SystemExit(main())
