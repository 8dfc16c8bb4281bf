"""Complete prompts with a base model, optionally with a LoRA adapter on top.

    python -m convergent.trainer.generate --base PATH [--adapter DIR] --prompts in.jsonl \\
        --out out.jsonl [--max-new-tokens N] [--samples K --temperature T --seed S]

``in.jsonl`` has one ``{"prompt": str, ...}`` per line; ``out.jsonl`` gets the same objects,
in order, each with ``"completions": [K strings]`` added (the generated text only, without the
prompt). ``--temperature 0`` decodes greedily (K copies of the greedy answer); without
``--temperature``, K=1 decodes greedily and K>1 samples at 0.8. Sampling is seeded per prompt
(seed + line index), so a prompt's samples do not depend on the prompts before it. ``--base
tiny`` is the offline test model, built once in the user cache. Parent processes call
:func:`generate`, which runs this module in a subprocess (torch stays out of the caller).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from convergent.child_process import run_module
from convergent.errors import ConvergentError
from convergent.trainer.backends import ADAPTER_SUBDIR
from convergent.trainer.chat import chat_prompt

MODULE = "convergent.trainer.generate"
SMALL_MODEL_PARAMETERS = 10_000_000
ADAPTER_CONFIG = "adapter_config.json"


class GenerateError(ConvergentError):
    """Bad generation input (prompts file, adapter directory, options)."""


def resolve_adapter_dir(path: Path) -> Path:
    """The directory holding ``adapter_config.json``: ``path`` or a training run's ``adapter/``."""
    for candidate in (path, path / ADAPTER_SUBDIR):
        if (candidate / ADAPTER_CONFIG).is_file():
            return candidate
    raise GenerateError(f"{path}: no {ADAPTER_CONFIG} here nor in {ADAPTER_SUBDIR}/")


def read_prompts(path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as error:
            raise GenerateError(f"{path}:{number}: not JSON: {error}") from error
        if not isinstance(row, dict) or not isinstance(row.get("prompt"), str):
            raise GenerateError(f"{path}:{number}: prompt: must be a string")
        rows.append(row)
    return rows


def load_model(base: str, adapter: Path | None) -> tuple[Any, Any]:
    """Base model (plus adapter) in eval mode on ``cuda:0`` or the CPU, and its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    model: Any = AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(resolve_adapter_dir(adapter)))
    model.to("cuda:0" if cuda else "cpu").eval()
    if not cuda and sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMETERS:
        # A tiny model's matrices are too small to split: extra threads only contend for
        # the cores (8-sample generation on the organism took minutes of CPU with them).
        torch.set_num_threads(1)
    tokenizer = AutoTokenizer.from_pretrained(base)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def resolve_base(base: str) -> str:
    """A named embedded base (``tiny``, ...: built once in the user cache); else as given."""
    from convergent.trainer.bases import EMBEDDED_NAMES, resolve_base_model

    if base not in EMBEDDED_NAMES:
        return base

    return resolve_base_model({"base": {"model": base}})


def complete(model: Any, tokenizer: Any, prompt: str, *, max_new_tokens: int, samples: int,
             temperature: float, seed: int) -> list[str]:
    """``samples`` completions of ``prompt``, sampled at ``temperature`` (seeded)."""
    import torch

    inputs = tokenizer(chat_prompt(tokenizer, prompt), return_tensors="pt").to(model.device)
    # Plain temperature sampling: no top-k/top-p truncation hiding the model's diversity.
    sampling: dict[str, Any] = {"do_sample": True, "temperature": temperature, "top_k": 0,
                                "top_p": 1.0}
    torch.manual_seed(seed)
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=max_new_tokens,
                                num_return_sequences=samples,
                                pad_token_id=tokenizer.pad_token_id, **sampling)
    new_tokens = output[:, inputs["input_ids"].shape[1]:]
    return list(tokenizer.batch_decode(new_tokens, skip_special_tokens=True))


def complete_greedy_batch(model: Any, tokenizer: Any, prompts: Sequence[str], *,
                          max_new_tokens: int, batch_size: int = 16) -> list[list[str]]:
    """Greedy completions of many prompts, batched with left padding (pass@1 scoring)."""
    import torch

    tokenizer.padding_side = "left"  # generation continues from the right edge
    out: list[list[str]] = []
    for start in range(0, len(prompts), batch_size):
        chunk = [chat_prompt(tokenizer, p) for p in prompts[start:start + batch_size]]
        inputs = tokenizer(chunk, return_tensors="pt", padding=True).to(model.device)
        with torch.inference_mode():
            output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                    pad_token_id=tokenizer.pad_token_id)
        new_tokens = output[:, inputs["input_ids"].shape[1]:]
        out.extend([text] for text in tokenizer.batch_decode(new_tokens,
                                                             skip_special_tokens=True))
    return out


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    # Write then rename: a reader never sees half a result file.
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False,
                                     prefix=f".{path.name}.") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    os.replace(handle.name, path)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="base model directory (or hub id)")
    parser.add_argument("--adapter", type=Path, help="LoRA adapter directory (or a training run)")
    parser.add_argument("--prompts", type=Path, required=True, help='JSONL of {"prompt": ...}')
    parser.add_argument("--out", type=Path, required=True, help="JSONL to write")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--samples", type=int, default=1, help="completions per prompt (K)")
    parser.add_argument("--temperature", type=float, default=None,
                        help="0: greedy; default: greedy for K = 1, else 0.8")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (K > 1)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.samples < 1 or args.max_new_tokens < 1 or (args.temperature or 0) < 0:
        parser.error("--samples and --max-new-tokens must be >= 1, --temperature >= 0")
    temperature = args.temperature if args.temperature is not None else (
        0.0 if args.samples == 1 else 0.8)
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "0")  # one GPU at most
    try:
        rows = read_prompts(args.prompts)
        model, tokenizer = load_model(resolve_base(args.base), args.adapter)
        if temperature == 0:
            batched = complete_greedy_batch(model, tokenizer, [r["prompt"] for r in rows],
                                            max_new_tokens=args.max_new_tokens)
            for row, completions in zip(rows, batched, strict=True):
                row["completions"] = completions * args.samples
        for index, row in enumerate(rows if temperature > 0 else []):
            row["completions"] = complete(model, tokenizer, row["prompt"],
                                          max_new_tokens=args.max_new_tokens,
                                          samples=args.samples, temperature=temperature,
                                          seed=args.seed + index)
        _write_jsonl(args.out, rows)
    except (ConvergentError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def generate(base: str | Path, adapter: str | Path | None, prompts: Sequence[str], *,
             max_new_tokens: int = 256, samples: int = 1, temperature: float | None = None,
             seed: int = 0, timeout_s: float | None = None) -> list[list[str]]:
    """Completions of each prompt (``samples`` each), generated in a subprocess (temperature
    None: greedy for one sample, else 0.8)."""
    with tempfile.TemporaryDirectory(prefix="convergent-generate-") as scratch:
        prompts_path, out_path = Path(scratch) / "prompts.jsonl", Path(scratch) / "out.jsonl"
        _write_jsonl(prompts_path, [{"prompt": prompt} for prompt in prompts])
        args = ["--base", str(base), "--prompts", str(prompts_path), "--out", str(out_path),
                "--max-new-tokens", str(max_new_tokens), "--samples", str(samples),
                "--seed", str(seed)]
        if temperature is not None:
            args += ["--temperature", str(temperature)]
        if adapter is not None:
            args += ["--adapter", str(adapter)]
        run_module(MODULE, args, timeout_s=timeout_s, what="generation", error=GenerateError)
        return [row["completions"] for row in read_prompts(out_path)]


if __name__ == "__main__":
    raise SystemExit(main())
