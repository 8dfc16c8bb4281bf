"""The training spec: everything one LoRA training run needs, validated before any work starts.

A spec travels as JSON from the cycle (parent process) to ``python -m convergent.trainer.train``
(child process) and is saved beside the adapter as ``resolved_config.json``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from convergent.errors import ConvergentError

BACKEND_CHOICES = ("auto", "unsloth", "peft")
PRECISION_CHOICES = ("auto", "fp32", "bf16", "fp16")
DEFAULT_TARGET_MODULES = (
    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
)
# A Hugging Face model id: "name" or "owner/name".
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


class SpecError(ConvergentError):
    """A spec field is invalid. ``field`` names it."""

    def __init__(self, field_name: str, message: str) -> None:
        self.field = field_name
        self.message = message
        super().__init__(f"{field_name}: {message}")


def _help(text: str, **kwargs: Any) -> Any:
    return field(metadata={"help": text}, **kwargs)


@dataclass(frozen=True)
class TrainSpec:
    """One LoRA training run. Field help is in each field's ``metadata["help"]``."""

    base_model: str = _help("local directory of the base model (or a hub id on a networked box)")
    dataset: str = _help('JSONL training data, one {"prompt": str, "completion": str} per line')
    output_dir: str = _help("where the adapter is written; must not exist yet")
    backend: str = _help("'unsloth', 'peft', or 'auto' (unsloth when a GPU and unsloth are "
                         "present)", default="auto")
    seed: int = _help("seed of LoRA init, data order and dropout", default=0)
    lora_r: int = _help("LoRA rank", default=8)
    lora_alpha: int = _help("LoRA scaling numerator (scale = alpha / r)", default=16)
    lora_dropout: float = _help("dropout on the LoRA input, in [0, 1)", default=0.0)
    target_modules: tuple[str, ...] = _help("module names that get a LoRA adapter",
                                            default=DEFAULT_TARGET_MODULES)
    max_steps: int = _help("optimizer steps to train", default=30)
    learning_rate: float = _help("peak learning rate (AdamW, linear decay)", default=2e-4)
    batch_size: int = _help("examples per optimizer step", default=4)
    max_seq_len: int = _help("examples are truncated to this many tokens", default=512)
    precision: str = _help("'auto' (bf16 on a GPU that has it, else fp32), 'fp32', 'bf16', "
                           "'fp16'", default="auto")

    def __post_init__(self) -> None:
        # Accept a JSON list for target_modules but keep the frozen dataclass hashable.
        if isinstance(self.target_modules, list):
            object.__setattr__(self, "target_modules", tuple(self.target_modules))
        validate(self)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys), the form saved as ``resolved_config.json``."""
        data = asdict(self)
        data["target_modules"] = list(self.target_modules)
        return json.dumps(data, sort_keys=True, indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainSpec:
        """Build a spec from a mapping; unknown or missing fields are refused by name."""
        known = {f.name: f for f in fields(cls)}
        for name in data:
            if name not in known:
                raise SpecError(str(name), "unknown field")
        for name, spec_field in known.items():
            if name not in data and spec_field.default is MISSING:
                raise SpecError(name, "missing")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> TrainSpec:
        try:
            data = json.loads(text)
        except ValueError as error:
            raise SpecError("spec", f"not JSON: {error}") from error
        if not isinstance(data, dict):
            raise SpecError("spec", "must be a JSON object")
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: Path) -> TrainSpec:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def replace(self, **changes: Any) -> TrainSpec:
        """A copy with ``changes`` applied (and validated again)."""
        return TrainSpec.from_dict({**asdict(self), **changes})


def field_help() -> dict[str, str]:
    """``{field name: help text}``, in declaration order (for CLIs and docs)."""
    return {f.name: f.metadata["help"] for f in fields(TrainSpec)}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _positive_int(value: Any) -> str | None:
    return None if _is_int(value) and value > 0 else "must be a positive integer"


def _positive_number(value: Any) -> str | None:
    return None if _is_number(value) and value > 0 else "must be a positive finite number"


def _choice(choices: tuple[str, ...]) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return check


def _seed(value: Any) -> str | None:
    return None if _is_int(value) and 0 <= value < 2**32 else "must be an integer in [0, 2**32)"


def _dropout(value: Any) -> str | None:
    return None if _is_number(value) and 0 <= value < 1 else "must be a number in [0, 1)"


def _module_names(value: Any) -> str | None:
    if not isinstance(value, tuple) or not value:
        return "must be a non-empty list of module names"
    if not all(isinstance(name, str) and name.isidentifier() for name in value):
        return "every entry must be a module name (an identifier)"
    if len(set(value)) != len(value):
        return "has duplicates"
    return None


def _base_model(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    path = Path(value).expanduser()
    if path.is_dir():
        return None if (path / "config.json").is_file() else f"{value}: no config.json there"
    if path.exists() or not _HUB_ID.match(value):
        return f"{value}: not a model directory"
    return None


def _output_dir(value: Any) -> str | None:
    return None if isinstance(value, str) and value else "must be a non-empty path"


def _dataset(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return "must be a non-empty path"
    try:
        lines = Path(value).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        return f"{value}: cannot read: {error}"
    rows = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        problem = _dataset_row_problem(line)
        if problem:
            return f"{value}:{number}: {problem}"
        rows += 1
    return None if rows else f"{value}: no examples"


def _dataset_row_problem(line: str) -> str | None:
    try:
        row = json.loads(line)
    except ValueError:
        return "not JSON"
    if not isinstance(row, dict):
        return "not a JSON object"
    for key in ("prompt", "completion"):
        if not isinstance(row.get(key), str) or not row[key]:
            return f"{key}: must be a non-empty string"
    return None


_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "base_model": _base_model,
    "dataset": _dataset,
    "output_dir": _output_dir,
    "backend": _choice(BACKEND_CHOICES),
    "seed": _seed,
    "lora_r": _positive_int,
    "lora_alpha": _positive_int,
    "lora_dropout": _dropout,
    "target_modules": _module_names,
    "max_steps": _positive_int,
    "learning_rate": _positive_number,
    "batch_size": _positive_int,
    "max_seq_len": _positive_int,
    "precision": _choice(PRECISION_CHOICES),
}


def validate(spec: TrainSpec) -> None:
    """Raise :class:`SpecError` naming the first invalid field (cheap checks first)."""
    # The dataset check reads the file: run it last so a typo elsewhere is reported at once.
    for name in sorted(_CHECKS, key=lambda n: n == "dataset"):
        problem = _CHECKS[name](getattr(spec, name))
        if problem:
            raise SpecError(name, problem)
