"""The ``peft`` backend: plain transformers + PEFT LoRA + TRL's SFTTrainer (CPU or one GPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from convergent.trainer.backends import (
    Runtime,
    check_target_modules,
    detect_runtime,
    fit,
    seed_everything,
)
from convergent.trainer.hashing import base_weights_sha256
from convergent.trainer.spec import TrainSpec

NAME = "peft"


def load_base(spec: TrainSpec, runtime: Runtime) -> tuple[Any, Any]:
    """The frozen base model on ``runtime.device`` and its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model: Any = AutoModelForCausalLM.from_pretrained(spec.base_model, dtype=runtime.torch_dtype)
    model.to(runtime.device)
    tokenizer = AutoTokenizer.from_pretrained(spec.base_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def wrap_with_lora(model: Any, spec: TrainSpec) -> Any:
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=spec.lora_r,
        lora_alpha=spec.lora_alpha,
        lora_dropout=spec.lora_dropout,
        target_modules=list(spec.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    # get_peft_model freezes every base parameter; fit() checks that it did.
    return get_peft_model(model, config)


def model_loss_sft_trainer() -> Any:
    """TRL's SFTTrainer, computing the loss with the model's own forward instead of TRL's.

    TRL 1.x always computes the SFT loss through a fused LM head whose kernel is Triton-only
    (CUDA/XPU), so plain TRL cannot train on a CPU. The model's own loss is the same quantity
    (mean NLL over the completion tokens, ``num_items_in_batch`` aware); only TRL's extra
    metrics (entropy, token accuracy) are not logged.
    """
    from transformers import Trainer
    from trl import SFTTrainer

    class ModelLossSFTTrainer(SFTTrainer):  # type: ignore[misc]
        def compute_loss(self, model: Any, inputs: Any, return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            return Trainer.compute_loss(self, model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)

    return ModelLossSFTTrainer


def train(spec: TrainSpec, out_dir: Path, *, started: float) -> dict[str, Any]:
    runtime = detect_runtime(spec)
    seed_everything(spec.seed, runtime)
    model, tokenizer = load_base(spec, runtime)
    check_target_modules(model, spec)
    base_before = base_weights_sha256(model)
    # Re-seed right before LoRA init so the adapter's start does not depend on loading.
    seed_everything(spec.seed, runtime)
    model = wrap_with_lora(model, spec)
    return fit(model, tokenizer, spec, out_dir, backend=NAME, runtime=runtime,
               base_before=base_before, started=started,
               trainer_class=None if runtime.cuda else model_loss_sft_trainer())
