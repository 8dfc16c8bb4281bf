"""Content hashes of adapters, directories and frozen base weights.

No torch at import time: the registry and the gates hash adapters without the train extras.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ADAPTER_CONFIG = "adapter_config.json"
_CHUNK = 1 << 20


def _files(root: Path) -> Iterator[tuple[str, Path]]:
    """``(posix relative name, path)`` of every regular file under ``root``, sorted by name."""
    found = [(p.relative_to(root).as_posix(), p) for p in root.rglob("*") if p.is_file()]
    yield from sorted(found)


def _update_with_file(digest: Any, path: Path) -> None:
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)


def _update_with_entry(digest: Any, name: str, content_length: int) -> None:
    # Length-prefixed name and size, so no two different trees feed the same byte stream.
    encoded = name.encode("utf-8")
    digest.update(len(encoded).to_bytes(8, "big"))
    digest.update(encoded)
    digest.update(content_length.to_bytes(8, "big"))


def dir_sha256(root: Path, *, canonical: dict[str, bytes] | None = None) -> str:
    """sha256 over the sorted relative file names and bytes of every file under ``root``.

    ``canonical`` maps a relative name to the bytes to hash in place of that file's own
    (used for files whose serialization is not stable, like ``adapter_config.json``).
    """
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a directory")
    canonical = canonical or {}
    digest = hashlib.sha256()
    for name, path in _files(root):
        if name in canonical:
            _update_with_entry(digest, name, len(canonical[name]))
            digest.update(canonical[name])
        else:
            _update_with_entry(digest, name, path.stat().st_size)
            _update_with_file(digest, path)
    return digest.hexdigest()


def _sort_lists(value: Any) -> Any:
    """Sort every list of strings, recursively: PEFT writes ``target_modules`` from a set."""
    if isinstance(value, dict):
        return {key: _sort_lists(item) for key, item in value.items()}
    if isinstance(value, list):
        items = [_sort_lists(item) for item in value]
        return sorted(items) if all(isinstance(item, str) for item in items) else items
    return value


def canonical_adapter_config(config_bytes: bytes) -> bytes:
    """The canonical form of an ``adapter_config.json``: sorted keys and string lists, compact."""
    config = _sort_lists(json.loads(config_bytes))
    return json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def adapter_sha256(adapter_dir: Path) -> str:
    """Content address of a saved adapter: :func:`dir_sha256` with its config canonicalized.

    Two identical trainings give the same hash even though PEFT lists ``target_modules``
    in a hash-seed-dependent order.
    """
    adapter_dir = Path(adapter_dir)
    config_path = adapter_dir / ADAPTER_CONFIG
    canonical = {}
    if config_path.is_file():
        canonical[ADAPTER_CONFIG] = canonical_adapter_config(config_path.read_bytes())
    return dir_sha256(adapter_dir, canonical=canonical)


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
        _update_with_entry(digest, header, tensor.numel() * tensor.element_size())
        # Reinterpreting as bytes works for every dtype (numpy has no bfloat16).
        flat = tensor.to("cpu").contiguous().reshape(-1).view(torch.uint8)
        digest.update(flat.numpy().tobytes())
    return digest.hexdigest()
