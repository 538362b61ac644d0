"""Files in a folder under the data folder: the desktop's store and the default."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

from ..errors import DataDirUnwritable
from .base import safe_key
from .signed import stream_to_file

MAX_FILE_BYTES = 64 * 1024**3  # far past any real upload; the disk, not memory, is what it guards


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def ensure_writable(self) -> None:
        """Fail early, with the fix, when the folder cannot be created or written."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise DataDirUnwritable(
                f"The data folder {self.root} cannot be written ({exc.strerror or exc}).",
                hint="Set DUBSTUDIO_DATA_DIR to a folder you can write, or fix its permissions.",
            ) from exc

    def local_path(self, key: str) -> Path:
        return self.root / safe_key(key)

    def exists(self, key: str) -> bool:
        return self.local_path(key).exists()

    async def write_stream(self, key: str, chunks: AsyncIterator[bytes] | Iterable[bytes],
                           max_bytes: int = MAX_FILE_BYTES) -> int:
        dst = self.local_path(key)
        dst.parent.mkdir(parents=True, exist_ok=True)
        # Emptiness is the media check's to report, with the file's own name.
        return (await stream_to_file(chunks, dst, max_bytes, allow_empty=True)).bytes

    def delete_prefix(self, prefix: str) -> None:
        path = self.local_path(prefix)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
