"""A job's files in whichever store is active: the data folder (local mode) or a Supabase bucket.

Keys are the same in both (`jobs/<id>/input/source.mp4`, `jobs/<id>/es/dub.wav`) and the local copy of
a key is always `<storage_dir>/<key>`: in Supabase mode the data folder's `storage/` is the staging
folder. So the pipeline's work folder is laid out alike in both modes, and a worker anywhere can run a
job from the bucket and the database alone.

* `fetch(key)`: a local copy to read (downloaded in Supabase mode, SHA-256 and size checked);
  `release(key)` drops a downloaded copy again (nothing in local mode: the file is the store).
* `publish(key)`: the local file becomes the stored one (uploaded in Supabase mode; nothing in local).
* `exists(key)`, `delete_prefix(prefix)`: in the store of record (and, for a delete, the local copies).
* `read_json(key)`, `write_json(key, data)`: the editor's small files, from and to the store of record,
  so that a server and a worker on different machines see the same lines and edits; `pull(keys)` and
  `push(keys)` bring a worker's copies of them up to date with the store, and the store with its copies.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import mimetypes
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BadInput, NotFound
from .local import MAX_FILE_BYTES, LocalStorage

if TYPE_CHECKING:  # supabase-py loads in a tenth of a second: only where Supabase mode is on
    from .supabase import SupabaseStorage

# Where mimetypes guesses a type browsers handle badly (or not at all).
_TYPES = {".wav": "audio/wav", ".srt": "application/x-subrip", ".vtt": "text/vtt", ".m4a": "audio/mp4"}


def content_type(name: str) -> str | None:
    suffix = Path(name).suffix.lower()
    return _TYPES.get(suffix) or mimetypes.guess_type(name)[0]


class JobFiles:
    def __init__(self, local: LocalStorage, remote: SupabaseStorage | None = None) -> None:
        self.local = local
        self.remote = remote

    def local_path(self, key: str) -> Path:
        """Where `key` is read and written on this machine (a staging copy in Supabase mode)."""
        return self.remote.local_path(key) if self.remote else self.local.local_path(key)

    def fetch(self, key: str, *, sha256: str | None = None, max_bytes: int = MAX_FILE_BYTES) -> Path:
        """A local copy of `key`, checked against `sha256` (BadInput with `expected_sha256` and `sha256`
        in its details when it differs) and `max_bytes`; NotFound when it is not stored."""
        if self.remote is not None:
            return self.remote.fetch(key, sha256=sha256, max_bytes=max_bytes)
        path = self.local.local_path(key)
        if not path.is_file():
            raise NotFound(f"No stored file {key!r}.", hint="Upload it first.")
        if path.stat().st_size > max_bytes:
            raise BadInput(f"The file {key!r} is larger than the limit.", details={"max_bytes": max_bytes})
        if sha256 is not None:
            with path.open("rb") as f:
                actual = hashlib.file_digest(f, "sha256").hexdigest()
            if not hmac.compare_digest(actual, sha256.strip().lower()):
                raise BadInput("The upload does not match its checksum.", hint="Send the file again.",
                               details={"expected_sha256": sha256, "sha256": actual})
        return path

    def release(self, key: str) -> None:
        """Drop the local copy `fetch` downloaded; the stored file stays (local mode: nothing to do)."""
        if self.remote is not None:
            self.remote.discard(key)

    def publish(self, key: str) -> None:
        """Make the local file at `local_path(key)` the stored `key` (uploaded, replacing it, in Supabase
        mode; already so in local mode)."""
        if self.remote is not None:
            self.remote.upload(key, self.local_path(key), content_type=content_type(key))

    def exists(self, key: str) -> bool:
        return self.remote.exists(key) if self.remote else self.local.exists(key)

    def read_json(self, key: str) -> Any:
        """The stored JSON of `key`, None when there is none (read into memory: a run that is writing the
        local copy is never disturbed)."""
        try:
            data = self.remote.read(key) if self.remote else self.local.local_path(key).read_bytes()
        except (NotFound, FileNotFoundError):
            return None
        return json.loads(data)

    def write_json(self, key: str, data: Any) -> None:
        """Write `key` locally (atomically) and store it."""
        path = self.local_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        tmp.replace(path)
        self.publish(key)

    def pull(self, keys: Iterable[str]) -> None:
        """Supabase mode: the stored copies of these small files over the local ones, where stored."""
        for key in keys if self.remote is not None else ():
            with contextlib.suppress(NotFound):
                self.fetch(key)

    def push(self, keys: Iterable[str]) -> None:
        """Supabase mode: store those of these files that exist locally."""
        for key in keys if self.remote is not None else ():
            if self.local_path(key).is_file():
                self.publish(key)

    def delete_prefix(self, prefix: str) -> None:
        """Remove `prefix` (a file or a folder) from the store and its local copies."""
        if self.remote is not None:
            self.remote.delete_prefix(prefix)  # also removes the staging copies under it
        self.local.delete_prefix(prefix)
