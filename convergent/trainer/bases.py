"""The base model a records repo names in ``[base] model``: a named embedded base, built or
converted once into the user cache, or a local checkpoint directory.

    from convergent.trainer.bases import resolve_base_model
    resolve_base_model({"base": {"model": "organism"}})   # -> ~/.cache/convergent/organism-...
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from convergent.child_process import run_module
from convergent.errors import ConvergentError
from convergent.layout import user_cache_dir


class BaseModelError(ConvergentError):
    """The configured base model cannot be built, converted or found."""


def resolve_base_model(config: Mapping[str, Any]) -> str:
    """``[base] model``: a named embedded base (:data:`EMBEDDED_BASES`: "tiny" for tests,
    "organism" the embedded default pretrained here, "smollm2-135m" the real-model path),
    built or converted once into the user cache; else a local directory (or a hub id)."""
    name = str(config["base"]["model"])
    if name == "organism":
        from convergent.trainer.organism import ensure_organism

        return str(ensure_organism())
    embedded = EMBEDDED_BASES.get(name)
    if embedded is None:
        return name
    module, folder, ready, what = embedded
    path = user_cache_dir() / folder
    if not ready(path):
        # Built in a subprocess: the orchestrating process never imports torch.
        run_module(module, [str(path)], timeout_s=1800, what=what, error=BaseModelError)
    return str(path)


def _tiny_ready(path: Path) -> bool:
    return (path / "tiny_model.json").exists()


def _smollm2_ready(path: Path) -> bool:
    from convergent.trainer.smollm2 import SmolLM2Missing, is_converted, locate_gguf

    try:
        locate_gguf()
    except SmolLM2Missing as error:
        raise BaseModelError(str(error)) from None
    return is_converted(path)


# name -> (builder module run as `python -m MODULE OUT_DIR`, cache folder, is-ready check, what)
EMBEDDED_BASES: dict[str, tuple[str, str, Callable[[Path], bool], str]] = {
    "tiny": ("convergent.trainer.tiny_model", "tiny-model", _tiny_ready,
             "building the tiny base model"),
    "smollm2-135m": ("convergent.trainer.smollm2", "smollm2-135m", _smollm2_ready,
                     "converting SmolLM2-135M-Instruct from its GGUF file"),
}
# Every name [base] model may take besides a path.
EMBEDDED_NAMES = (*EMBEDDED_BASES, "organism")
