"""Training backends and the steps they share.

A backend module exposes ``train(spec, out_dir, *, started) -> dict``: it loads the base, wraps
it with LoRA its own way, then hands over to :func:`fit`, which trains with TRL's SFTTrainer,
proves the base stayed frozen and writes the adapter and the report.

Nothing heavy is imported at module level: ``unsloth`` must be imported before transformers
and TRL in the training process, and only the chosen backend knows whether it needs it.
"""

from __future__ import annotations

import importlib
import json
import resource
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from convergent.adapter_hash import adapter_sha256
from convergent.errors import ConvergentError
from convergent.trainer.chat import chat_example
from convergent.trainer.hashing import base_parameter_name, base_weights_sha256
from convergent.trainer.spec import SpecError, TrainSpec

BACKENDS = ("unsloth", "peft")
ADAPTER_SUBDIR = "adapter"
RESOLVED_CONFIG = "resolved_config.json"
TRAIN_REPORT = "train_report.json"
_TRAINER_SCRATCH = "_trainer"
_VERSIONED = ("torch", "transformers", "peft", "trl", "datasets", "unsloth", "unsloth_zoo")


class TrainingError(ConvergentError):
    """Training ran but broke a promise (base changed, base trainable, no progress)."""


@dataclass(frozen=True)
class Runtime:
    """Where and how this process trains."""

    device: str  # "cpu" or "cuda:0"
    precision: str  # "fp32", "bf16" or "fp16"

    @property
    def cuda(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def torch_dtype(self) -> Any:
        import torch

        return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[
            self.precision
        ]


def run_backend(name: str, spec: TrainSpec, out_dir: Path, *, started: float) -> dict[str, Any]:
    """Train with backend ``name`` into ``out_dir``; return the train report."""
    if name not in BACKENDS:
        raise SpecError("backend", f"must be one of {', '.join(BACKENDS)}, not {name!r}")
    module = importlib.import_module(f"{__name__}.{name}_backend")
    train: Callable[..., dict[str, Any]] = module.train
    return train(spec, out_dir, started=started)


def detect_runtime(spec: TrainSpec) -> Runtime:
    """One GPU at most: ``cuda:0`` when CUDA is usable, else the CPU."""
    import torch

    cuda = torch.cuda.is_available()
    precision = spec.precision
    if precision == "auto":
        precision = "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"
    if precision == "fp16" and not cuda:
        raise SpecError("precision", "fp16 needs a GPU; use fp32 or bf16 on a CPU")
    return Runtime(device="cuda:0" if cuda else "cpu", precision=precision)


def seed_everything(seed: int, runtime: Runtime) -> None:
    """Seed every RNG; on a CPU also force deterministic kernels (bitwise-repeatable runs)."""
    from transformers import enable_full_determinism, set_seed

    if runtime.cuda:
        # Deterministic CUDA kernels are slower and some (Unsloth's Triton ones) have none:
        # GPU runs are seeded but only CPU runs are promised to be bitwise repeatable.
        set_seed(seed)
    else:
        enable_full_determinism(seed)


def check_target_modules(model: Any, spec: TrainSpec) -> None:
    """Refuse target modules the model does not have, before any training starts."""
    leaf_names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [name for name in spec.target_modules if name not in leaf_names]
    if missing:
        raise SpecError("target_modules", f"not in the model: {', '.join(missing)}")


def assert_only_lora_trainable(model: Any) -> int:
    """Fail unless every trainable parameter is a LoRA one; return how many values train."""
    trainable = 0
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if base_parameter_name(name) is not None:
            raise TrainingError(f"base parameter {name} is trainable: LoRA only, base frozen")
        trainable += param.numel()
    if not trainable:
        raise TrainingError("no trainable LoRA parameter: check target_modules")
    return trainable


def load_examples(path: str, tokenizer: Any) -> Any:
    """The JSONL dataset as a ``datasets.Dataset`` of prompt/completion pairs, in file order,
    rendered through the chat template for an instruct model (as generation prompts it)."""
    from datasets import Dataset

    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            rows.append(chat_example(tokenizer, json.loads(line)))
    return Dataset.from_list(rows)


def sft_config(spec: TrainSpec, runtime: Runtime, scratch: Path) -> Any:
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(scratch),
        max_steps=spec.max_steps,
        per_device_train_batch_size=spec.batch_size,
        gradient_accumulation_steps=1,
        learning_rate=spec.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=0,
        optim="adamw_torch",
        seed=spec.seed,
        data_seed=spec.seed,
        max_length=spec.max_seq_len,
        packing=False,
        # Explicit, because TRL resolves an unset bf16 to "not fp16", i.e. bf16 on a CPU.
        bf16=runtime.precision == "bf16",
        fp16=runtime.precision == "fp16",
        use_cpu=not runtime.cuda,
        # Backends enable checkpointing on the model themselves (TRL's default is on).
        gradient_checkpointing=False,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,  # ProgressLines prints one line a step, readable through a pipe
        dataloader_num_workers=0,
        include_num_input_tokens_seen="non_padding",
    )


def progress_callback(backend: str) -> Any:
    """A TrainerCallback that prints one line a step to stderr (built lazily: transformers)."""
    from transformers import TrainerCallback

    class ProgressLines(TrainerCallback):  # type: ignore[misc]
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **_: Any) -> None:
            if logs and "loss" in logs:
                print(f"[{backend}] step {state.global_step}/{state.max_steps} "
                      f"loss {logs['loss']:.4f} lr {logs.get('learning_rate', 0.0):.2e}",
                      file=sys.stderr, flush=True)

    return ProgressLines()


def _peak_memory(runtime: Runtime) -> tuple[int, str]:
    if runtime.cuda:
        import torch

        return int(torch.cuda.max_memory_allocated(0)), "cuda_max_allocated"
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "process_max_rss"


def _versions() -> dict[str, str]:
    found = {}
    for name in _VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _losses(log_history: list[dict[str, Any]]) -> list[float]:
    return [float(entry["loss"]) for entry in log_history if "loss" in entry]


def fit(model: Any, tokenizer: Any, spec: TrainSpec, out_dir: Path, *, backend: str,
        runtime: Runtime, base_before: str, started: float,
        trainer_class: Any = None) -> dict[str, Any]:
    """Train the LoRA-wrapped ``model``, save the adapter into ``out_dir``; return the report.

    ``trainer_class`` defaults to TRL's ``SFTTrainer`` (as the backend's imports left it).
    """
    from transformers import PrinterCallback
    from trl import SFTTrainer

    trainable = assert_only_lora_trainable(model)
    examples = load_examples(spec.dataset, tokenizer)
    scratch = out_dir / _TRAINER_SCRATCH
    trainer = (trainer_class or SFTTrainer)(model=model, args=sft_config(spec, runtime, scratch),
                         train_dataset=examples, processing_class=tokenizer,
                         callbacks=[progress_callback(backend)])
    trainer.remove_callback(PrinterCallback)
    print(f"[{backend}] training {spec.max_steps} steps on {len(examples)} examples, "
          f"{trainable} LoRA parameters, {runtime.device} {runtime.precision}",
          file=sys.stderr, flush=True)
    train_started = time.perf_counter()
    result = trainer.train()
    train_s = time.perf_counter() - train_started
    shutil.rmtree(scratch, ignore_errors=True)

    base_after = base_weights_sha256(model)
    if base_after != base_before:
        raise TrainingError(f"base weights changed during training: {base_before} -> {base_after}")
    adapter_dir = out_dir / ADAPTER_SUBDIR
    model.save_pretrained(str(adapter_dir))
    (out_dir / RESOLVED_CONFIG).write_text(spec.replace(backend=backend).to_json(), "utf-8")

    tokens = int(trainer.state.num_input_tokens_seen)
    peak, peak_kind = _peak_memory(runtime)
    losses = _losses(trainer.state.log_history)
    report = {
        "backend": backend,
        "device": runtime.device,
        "precision": runtime.precision,
        "seed": spec.seed,
        "steps": int(trainer.state.global_step),
        "loss": losses[-1] if losses else None,
        "mean_loss": float(result.training_loss),
        "losses": losses,
        "examples": len(examples),
        "trainable_parameters": trainable,
        "total_parameters": sum(p.numel() for p in model.parameters()),
        "base_sha256_before": base_before,
        "base_sha256_after": base_after,
        "adapter_dir": ADAPTER_SUBDIR,
        "adapter_sha256": adapter_sha256(adapter_dir),
        "train_tokens": tokens,
        "tokens_per_s": tokens / train_s if train_s > 0 else None,
        "train_s": train_s,
        "wall_s": time.perf_counter() - started,
        "peak_memory_bytes": peak,
        "peak_memory_kind": peak_kind,
        "versions": _versions(),
    }
    (out_dir / TRAIN_REPORT).write_text(json.dumps(report, sort_keys=True, indent=2) + "\n",
                                        "utf-8")
    return report
