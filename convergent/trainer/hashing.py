"""Hashes of frozen base weights; adapter hashes live in :mod:`convergent.adapter_hash`.

No torch at import time: the registry and the gates hash adapters without the train extras.
"""

from __future__ import annotations

import hashlib
from typing import Any

from convergent.adapter_hash import update_with_entry


def base_parameter_name(name: str) -> str | None:
    """The plain-model name of a state-dict entry, or ``None`` for an adapter (LoRA) entry.

    PEFT renames a wrapped layer's weight ``...q_proj.base_layer.weight`` under
    ``base_model.model.``; mapping back lets one hash compare a model before and after wrapping.
    """
    if "lora_" in name or "modules_to_save" in name:
        return None
    name = name.removeprefix("base_model.model.")
    return name.replace(".base_layer.", ".")


def base_weights_sha256(model: Any) -> str:
    """sha256 over the names, dtypes, shapes and bytes of the base (non-adapter) state dict.

    Works on a plain ``PreTrainedModel`` and on the same model wrapped by PEFT, with the
    same result as long as the frozen weights did not change.
    """
    import torch

    entries: dict[str, Any] = {}
    for name, tensor in model.state_dict().items():
        base_name = base_parameter_name(name)
        if base_name is not None:
            entries[base_name] = tensor
    digest = hashlib.sha256()
    for name in sorted(entries):
        tensor = entries[name].detach()
        header = f"{name}|{tensor.dtype}|{tuple(tensor.shape)}"
        update_with_entry(digest, header, tensor.numel() * tensor.element_size())
        # Reinterpreting as bytes works for every dtype (numpy has no bfloat16).
        flat = tensor.to("cpu").contiguous().reshape(-1).view(torch.uint8)
        digest.update(flat.numpy().tobytes())
    return digest.hexdigest()
