"""Manifests: staged files grouped into loads, with deterministic names and the Redshift manifest JSON.

Pure. A manifest's name is a hash of its sorted file keys, so grouping the
same pending files again (after a crash before the load) gives the same
manifest objects, and the ledger can record a load by that name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import msgspec


class StagedFile(msgspec.Struct, frozen=True, order=True):
    """A staged object in the bucket and its size in bytes (compressed)."""

    key: str
    size: int


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    """One load: its name, the object keys of its manifest and file list, and its files (sorted by key)."""

    name: str
    key: str  # the Redshift manifest JSON
    files_key: str  # the file keys as CSV (one column), for COPY into the ledger
    files: tuple[StagedFile, ...]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


class _Entry(msgspec.Struct, frozen=True):
    url: str
    mandatory: bool = True


class _Document(msgspec.Struct, frozen=True):
    entries: list[_Entry]


def manifest_name(keys: Iterable[str]) -> str:
    """The name of a manifest of ``keys``: the first 32 hex digits of SHA-256 over the sorted keys."""
    digest = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()
    return digest[:32]


def make_manifest(prefix: str, files: Iterable[StagedFile]) -> Manifest:
    """A manifest of ``files`` stored under ``prefix``."""
    ordered = tuple(sorted(files))
    name = manifest_name(f.key for f in ordered)
    return Manifest(
        name=name, key=f"{prefix}{name}.manifest.json", files_key=f"{prefix}{name}.files.csv", files=ordered
    )


def group_files(
    files: Iterable[StagedFile], *, prefix: str, max_bytes: int, max_files: int
) -> list[Manifest]:
    """Pack files, in key order, into manifests of at most ``max_bytes`` and ``max_files``.

    A file larger than ``max_bytes`` gets a manifest of its own. Key order keeps
    a shard's files together and in position order.
    """
    groups: list[list[StagedFile]] = []
    size = 0
    for f in sorted(files):
        if not groups or len(groups[-1]) >= max_files or (groups[-1] and size + f.size > max_bytes):
            groups.append([])
            size = 0
        groups[-1].append(f)
        size += f.size
    return [make_manifest(prefix, g) for g in groups]


def manifest_json(bucket: str, manifest: Manifest) -> bytes:
    """The Redshift COPY manifest: every file ``mandatory``, so a missing file fails the load."""
    return msgspec.json.encode(_Document([_Entry(f"s3://{bucket}/{f.key}") for f in manifest.files]))


def files_csv(manifest: Manifest) -> bytes:
    """The manifest's file keys, one per line, as CSV (the ledger table's COPY source)."""
    return "".join(
        f'"{f.key.replace(chr(34), chr(34) * 2)}","{manifest.name}"\n' for f in manifest.files
    ).encode()


def parse_manifest(data: bytes) -> list[tuple[str, str]]:
    """``(bucket, key)`` of every entry of a manifest JSON."""
    doc = msgspec.json.decode(data, type=_Document)
    return [_split_url(e.url) for e in doc.entries]


def _split_url(url: str) -> tuple[str, str]:
    if not url.startswith("s3://") or "/" not in url[5:]:
        raise ValueError(f"not an s3://bucket/key URL: {url!r}")
    bucket, _, key = url[5:].partition("/")
    return bucket, key


def pending(staged: Sequence[StagedFile], loaded: set[str]) -> list[StagedFile]:
    """The staged files that no loaded manifest holds."""
    return [f for f in staged if f.key not in loaded]
