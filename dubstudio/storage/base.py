"""What the app needs of a file store. Keys are relative, slash-separated names like `jobs/<id>/x.wav`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Protocol

from ..errors import BadInput


def safe_key(*parts: str) -> str:
    """Join key parts, refusing anything that could escape the store's root."""
    out: list[str] = []
    for part in parts:
        for piece in part.replace("\\", "/").split("/"):
            if piece in ("", "."):
                continue
            if piece == ".." or "\0" in piece:
                raise BadInput(f"Unsafe storage name {part!r}.", hint="Use a plain file name.")
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
