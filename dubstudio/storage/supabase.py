"""Supabase Storage: one bucket holds the uploads and the outputs; workers fetch to a local staging folder.

Everything goes through supabase-py's storage client (storage3), but for `fetch`, which streams the
object to disk with the same HTTP call as `download` (`GET /storage/v1/object/{bucket}/{key}`):
`download` returns the whole file as bytes, and an input may be hours of video.

Errors come back as ours: NotFound for a missing object, StorageError (with the setting to check) for
everything else: a missing bucket, a refused key, an unreachable server.

Keys are the app's own (`uploads/<id>/voice.wav`, `jobs/<id>/...`): `safe_key` plus a character set
Supabase accepts (ASCII letters, digits and `_ - . + = @ , ( )` and spaces); never a user's file name.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

import httpx
from storage3 import SyncStorageClient
from storage3.exceptions import StorageApiError
from storage3.types import CreateSignedUploadUrlOptions, URLOptions
from storage3.utils import StorageException

from ..errors import BadInput, DubError, NotFound, StorageError
from .base import safe_key
from .signed import sniff, stream_to_file, write_chunks

# Supabase keeps a signed upload URL valid for two hours; it cannot be changed per URL.
UPLOAD_URL_LIFETIME = 7200
# Objects removed per request (Supabase's limit is 1000) and listed per page.
BATCH = 1000
NO_LIMIT = 1 << 62

_KEY_PART = re.compile(r"[A-Za-z0-9_\-.+=@,() ]{1,255}")
_MISSING_OBJECT = {"not_found", "NoSuchKey", "InternalError"}  # InternalError: a 404 without a parsable body


class SignedUpload(NamedTuple):
    url: str          # absolute: the client PUTs the file's bytes here
    token: str        # the same token as in the URL's query
    expires_at: int   # Unix seconds


def storage_key(key: str) -> str:
    """`safe_key` plus what Supabase Storage accepts; BadInput otherwise."""
    key = safe_key(key)
    if not all(_KEY_PART.fullmatch(part) for part in key.split("/")):
        raise BadInput(f"Unsafe storage name {key!r}.", hint="Use ASCII letters, digits, '-', '_' and '.'.")
    return key


class SupabaseStorage:
    """One Supabase Storage bucket. `key` is the service-role (or secret) key: the server's key, never
    a user's; `staging_dir` is where fetched objects and files being written wait."""

    def __init__(self, url: str, key: str, bucket: str, staging_dir: Path, *, timeout: float = 60.0,
                 http: httpx.Client | None = None, clock: Callable[[], float] = time.time) -> None:
        self.url = url.rstrip("/")
        self.bucket = bucket
        self.staging_dir = staging_dir
        self._clock = clock
        self._http = http or httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0), follow_redirects=True)
        self._headers = {"apikey": key, "Authorization": f"Bearer {key}"}
        self._client = SyncStorageClient(url=f"{self.url}/storage/v1/", headers=self._headers, http_client=self._http)
        self._files = self._client.from_(bucket)

    def close(self) -> None:
        self._http.close()

    # -- direct uploads and downloads -------------------------------------------------------------------

    def create_signed_upload_url(self, key: str, *, upsert: bool = False) -> SignedUpload:
        """A URL the client PUTs the file to (raw bytes with their Content-Type, or multipart)."""
        key = storage_key(key)
        with self._errors("create an upload URL", key):
            options = CreateSignedUploadUrlOptions(upsert="true") if upsert else None
            signed = self._files.create_signed_upload_url(key, options)
        return SignedUpload(url=signed["signed_url"], token=signed["token"],
                            expires_at=int(self._clock()) + UPLOAD_URL_LIFETIME)

    def signed_download_url(self, key: str, expires_in: int, *, download_as: str | None = None) -> str:
        """A URL anyone holding it can GET until it expires (Supabase's are not single-use: keep
        `expires_in` short). `download_as` makes browsers save it under that name."""
        key = storage_key(key)
        with self._errors("create a download URL", key):
            options: URLOptions = {"download": download_as} if download_as else {}
            signed = self._files.create_signed_url(key, int(expires_in), options)
        url = signed["signedURL"]
        if not url:
            raise StorageError(f"Supabase Storage gave no download URL for {key!r}.", hint=self._where())
        return url

    # -- objects --------------------------------------------------------------------------------------

    def local_path(self, key: str) -> Path:
        """Where `key` is staged locally (fetched by `fetch`, or written before `upload`)."""
        return self.staging_dir / storage_key(key)

    def exists(self, key: str) -> bool:
        key = storage_key(key)
        with self._errors("check", key):
            return bool(self._files.exists(key))

    def read(self, key: str) -> bytes:
        """A small object's bytes, in memory (the editor's JSON files); NotFound when it is not there."""
        key = storage_key(key)
        with self._errors("download", key):
            return bytes(self._files.download(key))

    def size(self, key: str) -> int:
        """The object's size in bytes (NotFound when it is not there): check an upload before fetching."""
        key = storage_key(key)
        with self._errors("read the details of", key):
            info = self._files.info(key)
        value = info.get("size", (info.get("metadata") or {}).get("size"))
        if not isinstance(value, int):
            raise StorageError(f"Supabase Storage gave no size for {key!r}.", hint=self._where())
        return value

    def fetch(self, key: str, *, sha256: str | None = None, max_bytes: int = NO_LIMIT) -> Path:
        """Download `key` to its staging path, streamed, atomically; refuses a content whose SHA-256 is
        not `sha256` (BadInput) and, past `max_bytes`, stops downloading (BadInput). Returns the path;
        `discard(key)` removes it (or use `fetched`)."""
        key = storage_key(key)
        dst = self.local_path(key)
        url = f"{self.url}/storage/v1/object/{quote(self.bucket, safe='')}/{quote(key, safe='/')}"
        with self._errors("download", key), self._http.stream("GET", url, headers=self._headers) as response:
            if response.status_code >= 400:
                response.read()
                raise self._api_error(response)
            write_chunks(response.iter_bytes(1 << 20), dst, max_bytes, expected_sha256=sha256, allow_empty=True)
        return dst

    @contextmanager
    def fetched(self, key: str, *, sha256: str | None = None, max_bytes: int = NO_LIMIT) -> Iterator[Path]:
        """`fetch`, and the staging copy removed when the block ends."""
        path = self.fetch(key, sha256=sha256, max_bytes=max_bytes)
        try:
            yield path
        finally:
            self.discard(key)

    def discard(self, key: str) -> None:
        """Remove the staging copy of `key` (a file or a folder); the stored object stays."""
        path = self.local_path(key)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)

    def upload(self, key: str, path: Path, *, content_type: str | None = None) -> None:
        """Store the file at `path` under `key` (replacing it), streamed from disk."""
        key = storage_key(key)
        ctype = content_type or sniff(path) or "application/octet-stream"
        with self._errors("upload", key):
            self._files.upload(key, path, {"content-type": ctype, "upsert": "true"})

    async def write_stream(self, key: str, chunks: AsyncIterator[bytes] | Iterable[bytes]) -> int:
        """The Storage protocol's write: stream to the staging path, then upload. Returns bytes written."""
        written = await stream_to_file(chunks, self.local_path(key), NO_LIMIT, allow_empty=True)
        await asyncio.to_thread(self.upload, key, written.path)
        return written.bytes

    def delete_prefix(self, prefix: str) -> None:
        """Remove the object `prefix` and everything under the folder `prefix`, and their staging copies."""
        prefix = storage_key(prefix)
        keys = [prefix, *self._walk(prefix)]
        for start in range(0, len(keys), BATCH):
            with self._errors("delete", prefix):
                self._files.remove(keys[start:start + BATCH])
        self.discard(prefix)

    def list_keys(self, prefix: str) -> list[str]:
        """Every object key under the folder `prefix`."""
        return self._walk(storage_key(prefix))

    def _walk(self, folder: str) -> list[str]:
        out: list[str] = []
        pending = [folder]
        while pending:
            current = pending.pop()
            offset = 0
            while True:
                with self._errors("list", current):
                    page = self._files.list(current, {"limit": BATCH, "offset": offset})
                for entry in page:
                    name = entry.get("name")
                    if not isinstance(name, str) or not name:
                        continue
                    child = f"{current}/{name}"
                    if entry.get("id") is not None:
                        out.append(child)
                    else:  # a folder
                        pending.append(child)
                if len(page) < BATCH:
                    break
                offset += BATCH
        return out

    # -- errors ---------------------------------------------------------------------------------------

    def _where(self) -> str:
        return (f"Check DUBSTUDIO_SUPABASE_URL ({self.url}), DUBSTUDIO_SUPABASE_BUCKET ({self.bucket!r}) and "
                "DUBSTUDIO_SUPABASE_KEY.")

    def _api_error(self, response: httpx.Response) -> StorageApiError:
        try:
            body = response.json()
            return StorageApiError(str(body.get("message", "")), str(body.get("error", "")),
                                   body.get("statusCode", response.status_code))
        except (ValueError, AttributeError):
            return StorageApiError(response.text[:200], "InternalError", response.status_code)

    def _map(self, exc: Exception, what: str, key: str) -> DubError:
        if isinstance(exc, StorageApiError):
            status, code, message = str(exc.status), str(exc.code), str(exc.message)
            if status == "404" and code in _MISSING_OBJECT:
                return NotFound(f"No stored file {key!r}.", hint="Upload it first.")
            if status == "404" or "bucket" in code.lower():
                return StorageError(f"The storage bucket {self.bucket!r} does not exist in Supabase.",
                                    hint="Create it (private), or set DUBSTUDIO_SUPABASE_BUCKET to one that does.")
            if status in ("401", "403") or code.lower() in ("unauthorized", "invalidjwt", "invalid_jwt"):
                return StorageError("Supabase Storage refused the service key.",
                                    hint="Set DUBSTUDIO_SUPABASE_KEY to the project's service-role "
                                         "(or secret) key, and check its bucket policies.")
            if status == "413":
                return BadInput(f"The file {key!r} is larger than the bucket {self.bucket!r} accepts.",
                                hint="Raise the bucket's file size limit in Supabase.")
            return StorageError(f"Supabase Storage could not {what} {key!r} in bucket {self.bucket!r} "
                                f"({status} {code}: {message[:200]}).", hint=self._where())
        if isinstance(exc, httpx.HTTPError):
            return StorageError(f"Supabase Storage at {self.url} could not be reached to {what} {key!r} "
                                f"({type(exc).__name__}).", hint="Check DUBSTUDIO_SUPABASE_URL and the network.")
        return StorageError(f"Supabase Storage could not {what} {key!r} in bucket {self.bucket!r} ({exc}).",
                            hint=self._where())

    @contextmanager
    def _errors(self, what: str, key: str) -> Iterator[None]:
        try:
            yield
        except DubError:
            raise
        except (StorageApiError, StorageException, httpx.HTTPError, ValueError) as exc:
            raise self._map(exc, what, key) from exc
