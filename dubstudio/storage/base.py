"""What the app needs of a file store. Keys are relative, slash-separated names like `jobs/<id>/x.wav`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Protocol

from ..errors import BadInput

MAX_PART_BYTES = 255  # what common file systems allow for one name


def safe_key(*parts: str) -> str:
    """Join key parts, refusing anything that could escape the store's root or that a file system
    would refuse: '..', control characters, ':' (a Windows drive or NTFS stream), over-long names."""
    out: list[str] = []
    for part in parts:
        for piece in part.replace("\\", "/").split("/"):
            if piece in ("", "."):
                continue
            if piece == ".." or ":" in piece or any(ord(c) < 32 for c in piece) \
                    or len(piece.encode()) > MAX_PART_BYTES:
                raise BadInput(f"Unsafe storage name {part[:80]!r}.", hint="Use a plain, short file name.")
            out.append(piece)
    if not out:
        raise BadInput("Empty storage name.", hint="Use a plain file name.")
    return "/".join(out)


class Storage(Protocol):
    def local_path(self, key: str) -> Path:
        """A local path for reading and writing `key` (a staging copy for remote stores)."""
        ...

    async def write_stream(self, key: str, chunks: AsyncIterator[bytes] | Iterable[bytes]) -> int:
        """Write `key` from chunks, atomically (never a half file under the key). Returns bytes written."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete_prefix(self, prefix: str) -> None: ...
