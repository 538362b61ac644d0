"""Files in a folder under the data folder: the desktop's store and the default."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

from ..errors import DataDirUnwritable
from .base import safe_key


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

    async def write_stream(self, key: str, chunks: AsyncIterator[bytes] | Iterable[bytes]) -> int:
        dst = self.local_path(key)
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(dst.name + ".part")
        total = 0
        try:
            with tmp.open("wb") as f:
                if isinstance(chunks, AsyncIterator):
                    async for chunk in chunks:
                        total += f.write(chunk)
                else:
                    for chunk in chunks:
                        total += f.write(chunk)
            tmp.replace(dst)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return total

    def delete_prefix(self, prefix: str) -> None:
        path = self.local_path(prefix)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
