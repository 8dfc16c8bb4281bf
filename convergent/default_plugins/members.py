"""The built-in member ``base``: the repo's configured base model (``[base] model``).

Generation runs ``python -m convergent.trainer.generate`` in a child process of its own
session (:func:`convergent.child_process.run_module`: killed with its children on a
timeout, an error or when we die), so torch never loads in the CLI or gate process.
Greedy at temperature 0, seeded sampling above it.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from convergent.child_process import run_module
from convergent.hookspecs import hookimpl
from convergent.members import BASE, Generate, MemberError

GENERATE_MODULE = "convergent.trainer.generate"


def base_generate(model: str, *, max_new_tokens: int, timeout_s: float) -> Generate:
    """``generate`` of a Hugging Face checkpoint (a local directory, or ``tiny``)."""

    def generate(prompts: list[str], n: int, temperature: float, seed: int
                 ) -> list[list[str]]:
        with tempfile.TemporaryDirectory(prefix="convergent-member-") as scratch:
            prompts_path, out_path = Path(scratch) / "prompts.jsonl", Path(scratch) / "out.jsonl"
            prompts_path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts),
                                    "utf-8")
            args = ["--base", model, "--prompts", str(prompts_path), "--out", str(out_path),
                    "--max-new-tokens", str(max_new_tokens), "--samples", str(n),
                    "--temperature", str(temperature), "--seed", str(seed)]
            run_module(GENERATE_MODULE, args, timeout_s=timeout_s,
                       what=f"member {BASE!r}: generation", error=MemberError, echo=False,
                       timeout_setting="[members] timeout_s")
            rows = [json.loads(line) for line in out_path.read_text("utf-8").splitlines()]
        return [list(row["completions"]) for row in rows]

    return generate


@hookimpl(tryfirst=True)
def register_members(register: Callable[[str, Generate], None], config: Mapping[str, Any]
                     ) -> None:
    settings = config.get("members", {})
    register(BASE, base_generate(str(config["base"]["model"]),
                                 max_new_tokens=int(settings.get("max_new_tokens", 96)),
                                 timeout_s=float(settings.get("timeout_s", 900.0))))
