"""The ``unsloth`` backend: Unsloth's FastLanguageModel + LoRA + TRL's SFTTrainer.

On a GPU this is Unsloth's fast path; without one, Unsloth's own CPU fallback (stock
transformers + PEFT + TRL under Unsloth's defaults) trains the same LoRA. ``unsloth`` must be
imported before transformers and TRL, and it patches TRL for the whole process: run this
backend in its own process, never beside the ``peft`` one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from convergent.trainer.backends import check_target_modules, detect_runtime, fit, seed_everything
from convergent.trainer.hashing import base_weights_sha256
from convergent.trainer.spec import TrainSpec

NAME = "unsloth"


def train(spec: TrainSpec, out_dir: Path, *, started: float) -> dict[str, Any]:
    # First, before anything imports transformers or TRL (fit() and detect_runtime do).
    from unsloth import FastLanguageModel

    runtime = detect_runtime(spec)
    seed_everything(spec.seed, runtime)
    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=spec.base_model,
        max_seq_length=spec.max_seq_len,
        dtype=runtime.torch_dtype,
        # 16-bit LoRA: a 4-bit base could not be hashed against the checkpoint it came from.
        load_in_4bit=False,
    )
    check_target_modules(model, spec)
    base_before = base_weights_sha256(model)
    model = FastLanguageModel.get_peft_model(
        model,
        r=spec.lora_r,
        lora_alpha=spec.lora_alpha,
        lora_dropout=spec.lora_dropout,
        target_modules=list(spec.target_modules),
        bias="none",
        # Unsloth's offloaded checkpointing pays off on a GPU; on a CPU it only recomputes.
        use_gradient_checkpointing="unsloth" if runtime.cuda else False,
        random_state=spec.seed,
        max_seq_length=spec.max_seq_len,
    )
    return fit(model, tokenizer, spec, out_dir, backend=NAME, runtime=runtime,
               base_before=base_before, started=started)
