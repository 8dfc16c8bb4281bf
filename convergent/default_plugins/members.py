"""The built-in member ``base``: the repo's configured base model (``[base] model``).

Generation runs ``python -m convergent.trainer.generate`` in a child process of its own
session (killed with its children on a timeout or an error), so torch never loads in the
CLI or gate process. Greedy at temperature 0, seeded sampling above it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from convergent.hookspecs import hookimpl
from convergent.members import BASE, Generate, MemberError

GENERATE_MODULE = "convergent.trainer.generate"
CHILD_MODULE = "convergent.trainer.child"
OUTPUT_TAIL = 2000


def base_generate(model: str, *, max_new_tokens: int, timeout_s: float) -> Generate:
    """``generate`` of a Hugging Face checkpoint (a local directory, or ``tiny``)."""

    def generate(prompts: list[str], n: int, temperature: float, seed: int
                 ) -> list[list[str]]:
        with tempfile.TemporaryDirectory(prefix="convergent-member-") as scratch:
            prompts_path, out_path = Path(scratch) / "prompts.jsonl", Path(scratch) / "out.jsonl"
            prompts_path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts),
                                    "utf-8")
            command = [sys.executable, "-m", CHILD_MODULE, GENERATE_MODULE, "--base", model,
                       "--prompts", str(prompts_path), "--out", str(out_path),
                       "--max-new-tokens", str(max_new_tokens), "--samples", str(n),
                       "--temperature", str(temperature), "--seed", str(seed)]
            _run(command, timeout_s)
            rows = [json.loads(line) for line in out_path.read_text("utf-8").splitlines()]
        return [list(row["completions"]) for row in rows]

    return generate


def _run(command: list[str], timeout_s: float) -> None:
    env = {**os.environ, "PYTHONHASHSEED": "0", "TOKENIZERS_PARALLELISM": "false"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env=env, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout_s)
    except BaseException as exc:
        # A timeout, Ctrl-C or an error here: the child has its own session; take it down.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if isinstance(exc, subprocess.TimeoutExpired):
            raise MemberError(f"member {BASE!r}: generation did not finish within "
                              f"{timeout_s}s ([members] timeout_s)") from None
        raise
    if process.returncode != 0:
        tail = output.decode("utf-8", "replace")[-OUTPUT_TAIL:]
        raise MemberError(f"member {BASE!r}: generation failed (exit {process.returncode})\n"
                          f"{tail}")


@hookimpl(tryfirst=True)
def register_members(register: Callable[[str, Generate], None], config: Mapping[str, Any]
                     ) -> None:
    settings = config.get("members", {})
    register(BASE, base_generate(str(config["base"]["model"]),
                                 max_new_tokens=int(settings.get("max_new_tokens", 96)),
                                 timeout_s=float(settings.get("timeout_s", 900.0))))
