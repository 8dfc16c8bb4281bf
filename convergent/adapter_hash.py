"""Content addresses of adapters: one hash, over a folder on disk or a folder in Git.

The registry names an adapter by this hash (``data/convergence/adapters/<sha256>/``) and the
``adapters`` gate recomputes it from the committed blobs, so both sides must hash the very
same byte stream: :func:`files_sha256` is that stream, fed from disk by :func:`dir_files`
or from a Git tree (or the index) by :func:`tree_files`. No torch here: the gates hash
adapters without the train extras.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git

ADAPTER_CONFIG = "adapter_config.json"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileSource:
    """One file to hash: its size and a way to read its bytes in chunks."""

    size: int
    chunks: Callable[[], Iterator[bytes]]

    @classmethod
    def of_bytes(cls, data: bytes) -> FileSource:
        return cls(len(data), lambda: iter((data,)))


def update_with_entry(digest: Any, name: str, content_length: int) -> None:
    """Length-prefixed name and size, so no two different trees feed the same byte stream."""
    encoded = name.encode("utf-8")
    digest.update(len(encoded).to_bytes(8, "big"))
    digest.update(encoded)
    digest.update(content_length.to_bytes(8, "big"))


def files_sha256(files: Mapping[str, FileSource]) -> str:
    """sha256 over the sorted relative names, sizes and bytes of ``files``."""
    digest = hashlib.sha256()
    for name in sorted(files):
        source = files[name]
        update_with_entry(digest, name, source.size)
        for chunk in source.chunks():
            digest.update(chunk)
    return digest.hexdigest()


def _read_chunks(path: Path) -> Callable[[], Iterator[bytes]]:
    def chunks() -> Iterator[bytes]:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                yield chunk

    return chunks


def dir_files(root: Path) -> dict[str, FileSource]:
    """Every regular file under ``root``, by its POSIX name relative to ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a directory")
    return {p.relative_to(root).as_posix(): FileSource(p.stat().st_size, _read_chunks(p))
            for p in root.rglob("*") if p.is_file()}


def tree_files(repo: git.Repo, rev: str | None, folder: str) -> dict[str, FileSource]:
    """Every file under ``folder`` at ``rev`` (None: the index), by its name relative to it."""
    prefix = folder.rstrip("/") + "/"
    if rev is None:
        out = repo.git.ls_files("-s", "--", prefix)
        shas = {row.split("\t", 1)[1]: row.split()[1] for row in out.splitlines()}
    else:
        out = repo.git.ls_tree("-r", rev, "--", prefix)
        shas = {row.split("\t", 1)[1]: row.split()[2] for row in out.splitlines()}
    files = {}
    for path, sha in shas.items():
        info = repo.odb.info(bytes.fromhex(sha))

        def chunks(sha: str = sha) -> Iterator[bytes]:
            stream = repo.odb.stream(bytes.fromhex(sha))
            while chunk := stream.read(_CHUNK):
                yield chunk

        files[path[len(prefix):]] = FileSource(int(info.size), chunks)
    return files


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


def adapter_files_sha256(files: Mapping[str, FileSource]) -> str:
    """Content address of an adapter's files: :func:`files_sha256` with its config canonical.

    Two identical trainings give the same hash even though PEFT lists ``target_modules``
    in a hash-seed-dependent order.
    """
    files = dict(files)
    config = files.get(ADAPTER_CONFIG)
    if config is not None:
        raw = b"".join(config.chunks())
        files[ADAPTER_CONFIG] = FileSource.of_bytes(canonical_adapter_config(raw))
    return files_sha256(files)


def adapter_sha256(adapter_dir: Path) -> str:
    """Content address of a saved adapter folder on disk."""
    return adapter_files_sha256(dir_files(Path(adapter_dir)))


def dir_sha256(root: Path, *, canonical: dict[str, bytes] | None = None) -> str:
    """sha256 over the sorted relative file names and bytes of every file under ``root``.

    ``canonical`` maps a relative name to the bytes to hash in place of that file's own.
    """
    files = dir_files(Path(root))
    for name, data in (canonical or {}).items():
        if name in files:
            files[name] = FileSource.of_bytes(data)
    return files_sha256(files)
