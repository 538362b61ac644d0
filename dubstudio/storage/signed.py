"""Direct uploads and downloads served by the app itself (local mode), and the checks every upload gets.

* `Signer`: URLs signed with HMAC-SHA256 over the method, the path, the expiry and a nonce. A URL
  verifies only for the method and path it was made for, until it expires; single use is enforced
  through the nonce by a `NonceStore` (a callback `used(nonce, expires_at) -> bool` that records the
  nonce and says whether it had been used already). `MemoryNonces` is one for a single process.
* `stream_to_file`: write an upload chunk by chunk to a temporary file beside its destination and
  rename it into place, hashing as it goes and refusing it past a size limit; never the whole file in
  memory, never a half file under the destination's name.
* `sniff`: the media type from the first bytes of a file, so that validation trusts neither the file
  name nor the declared content type.
* `upload_key`: the storage key of an upload, built from ids only (the user's file name never becomes
  part of a path).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlencode

from ..errors import AuthError, BadInput, EmptyFile
from .base import safe_key

# -- signed URLs ------------------------------------------------------------------------------------------

_NONCE = re.compile(r"[A-Za-z0-9_-]{16,128}")
_SIG = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes, URL-safe base64 without padding


class NonceStore(Protocol):
    def used(self, nonce: str, expires_at: int) -> bool:
        """Record `nonce` as used (it may be forgotten after `expires_at`); True if it already was.
        Must be atomic: of two concurrent calls with one nonce, exactly one returns False."""
        ...


class MemoryNonces:
    """Used nonces of one process, forgotten once their URL has expired."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def used(self, nonce: str, expires_at: int) -> bool:
        with self._lock:
            now = self._clock()
            if len(self._seen) > 1024:
                self._seen = {n: e for n, e in self._seen.items() if e >= now}
            if nonce in self._seen:
                return True
            self._seen[nonce] = expires_at
            return False


@dataclass(frozen=True)
class SignedURL:
    url: str          # path and query, relative to the app's base URL
    method: str
    expires_at: int   # Unix seconds
    nonce: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class Signer:
    """HMAC-SHA256 signatures for app-served URLs. The secret must stay on the server and be shared by
    every server process that verifies (at least 32 random bytes)."""

    def __init__(self, secret: bytes, clock: Callable[[], float] = time.time) -> None:
        if len(secret) < 32:
            raise ValueError("The URL signing secret must be at least 32 bytes.")
        self._secret = secret
        self._clock = clock

    @staticmethod
    def _message(method: str, path: str, expires_at: int, nonce: str) -> bytes:
        method = method.upper()
        if not re.fullmatch(r"[A-Z]{3,7}", method):
            raise ValueError(f"Not an HTTP method: {method!r}")
        if not path.startswith("/") or any(c in path for c in "\n\r\0?#"):
            raise ValueError(f"Not a URL path: {path!r}")
        if not _NONCE.fullmatch(nonce):
            raise ValueError("A nonce is 16-128 URL-safe characters.")
        return f"dubstudio-url-v1\n{method}\n{path}\n{int(expires_at)}\n{nonce}".encode()

    def sign(self, method: str, path: str, expires_at: int, nonce: str) -> str:
        """The URL-safe signature of one (method, path, expiry, nonce)."""
        mac = hmac.new(self._secret, self._message(method, path, expires_at, nonce), hashlib.sha256)
        return _b64(mac.digest())

    def verify(self, method: str, path: str, expires_at: int | str, nonce: str, signature: str,
               used: Callable[[str, int], bool] | None = None) -> None:
        """Refuse (AuthError) a URL that was changed, has expired, or (with `used`, a NonceStore's
        `used` method) was used before. The nonce is spent only once everything else checked out."""
        try:
            expiry = int(expires_at)
            ok = bool(_SIG.fullmatch(signature)) and hmac.compare_digest(
                self.sign(method, path, expiry, nonce), signature)
        except (ValueError, TypeError):
            ok = False
        if not ok:
            raise AuthError("This link is not valid.", hint="Ask the API for a new one.")
        if self._clock() > expiry:
            raise AuthError("This link has expired.", hint="Ask the API for a new one.")
        if used is not None and used(nonce, expiry):
            raise AuthError("This link was already used.", hint="Ask the API for a new one.")

    def signed_url(self, method: str, path: str, ttl: float, *, query: Mapping[str, str] | None = None) -> SignedURL:
        """A fresh URL (path and query) for `method` on `path`, valid for `ttl` seconds. Extra `query`
        parameters are not signed: only use them for things the route checks itself."""
        expires_at = int(self._clock() + ttl)
        nonce = secrets.token_urlsafe(18)
        params = {**(query or {}), "expires": str(expires_at), "nonce": nonce,
                  "signature": self.sign(method, path, expires_at, nonce)}
        return SignedURL(url=f"{path}?{urlencode(params)}", method=method.upper(), expires_at=expires_at, nonce=nonce)

    def verify_query(self, method: str, path: str, query: Mapping[str, str],
                     used: Callable[[str, int], bool] | None = None) -> int:
        """`verify` with the parameters of a URL made by `signed_url` (e.g. `request.query_params`);
        returns the expiry."""
        expires, nonce, signature = (query.get(k, "") for k in ("expires", "nonce", "signature"))
        self.verify(method, path, expires, nonce, signature, used)
        return int(expires)


# -- streaming an upload to disk ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Written:
    path: Path
    bytes: int
    sha256: str


def _size(n: int) -> str:
    """1 bytes, 10 KB, 1.5 GB: a limit as people read it."""
    if n < 1024:
        return f"{n} bytes"
    value = float(n)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            break
    return f"{value:.1f}".removesuffix(".0") + f" {unit}"


class _Sink:
    """A temporary file beside `dst` that becomes `dst` only once complete and checked."""

    def __init__(self, dst: Path, max_bytes: int) -> None:
        dst.parent.mkdir(parents=True, exist_ok=True)
        self.dst, self.max_bytes = dst, max_bytes
        self.fd, name = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name[:64]}.", suffix=".part")
        self.tmp = Path(name)
        self.digest = hashlib.sha256()
        self.total = 0

    def take(self, chunk: bytes) -> None:
        if self.total + len(chunk) > self.max_bytes:
            raise BadInput(f"The upload is larger than the limit of {_size(self.max_bytes)}.",
                           hint="Send a smaller file, or raise the limit.", details={"max_bytes": self.max_bytes})
        self.digest.update(chunk)
        self.total += len(chunk)
        _write_all(self.fd, chunk)

    def finish(self, expected_sha256: str | None, allow_empty: bool) -> Written:
        os.fsync(self.fd)
        os.close(self.fd)
        self.fd = -1
        if self.total == 0 and not allow_empty:
            raise EmptyFile("The upload is empty.", hint="Send the file's bytes.")
        sha = self.digest.hexdigest()
        if expected_sha256 is not None and not hmac.compare_digest(sha, expected_sha256.strip().lower()):
            raise BadInput("The upload does not match its checksum.", hint="Send the file again.",
                           details={"expected_sha256": expected_sha256, "sha256": sha})
        os.replace(self.tmp, self.dst)
        return Written(path=self.dst, bytes=self.total, sha256=sha)

    def abort(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self.tmp.unlink(missing_ok=True)


async def stream_to_file(chunks: AsyncIterator[bytes] | Iterable[bytes], dst: Path, max_bytes: int, *,
                         expected_sha256: str | None = None, allow_empty: bool = False) -> Written:
    """Write `chunks` to `dst` atomically: into a temporary file beside it, renamed over `dst` only when
    complete. Refuses (BadInput) past `max_bytes` (as soon as the limit is crossed, not after reading
    everything), an empty upload (EmptyFile) unless allowed, and a content whose SHA-256 differs from
    `expected_sha256`; a refused or interrupted upload leaves nothing behind and an older `dst` as it
    was. The file is never held in memory: one chunk at a time."""
    if not isinstance(chunks, AsyncIterator):
        return write_chunks(chunks, dst, max_bytes, expected_sha256=expected_sha256, allow_empty=allow_empty)
    sink = _Sink(dst, max_bytes)
    try:
        async for chunk in chunks:
            sink.take(bytes(chunk))
        return sink.finish(expected_sha256, allow_empty)
    except BaseException:
        sink.abort()
        raise


def write_chunks(chunks: Iterable[bytes], dst: Path, max_bytes: int, *, expected_sha256: str | None = None,
                 allow_empty: bool = False) -> Written:
    """`stream_to_file` for synchronous code (a worker thread, a download)."""
    sink = _Sink(dst, max_bytes)
    try:
        for chunk in chunks:
            sink.take(bytes(chunk))
        return sink.finish(expected_sha256, allow_empty)
    except BaseException:
        sink.abort()
        raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# -- what is in a file -------------------------------------------------------------------------------------

AUDIO_TYPES = frozenset({"audio/wav", "audio/mpeg", "audio/aac", "audio/flac", "audio/ogg", "audio/mp4",
                         "audio/aiff"})
VIDEO_TYPES = frozenset({"video/mp4", "video/quicktime", "video/x-matroska", "video/webm", "video/ogg",
                         "video/3gpp"})
MEDIA_TYPES = AUDIO_TYPES | VIDEO_TYPES

_QT_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}
_IMAGE_BRANDS = {b"heic": "image/heic", b"heix": "image/heic", b"mif1": "image/heif", b"msf1": "image/heif",
                 b"avif": "image/avif", b"avis": "image/avif"}


def _mpeg_frame(head: bytes, at: int) -> str | None:
    """audio/mpeg or audio/aac for a plausible MPEG audio / ADTS frame header at `at`."""
    if len(head) < at + 4 or head[at] != 0xFF or head[at + 1] & 0xE0 != 0xE0:
        return None
    b1, b2 = head[at + 1], head[at + 2]
    version, layer = (b1 >> 3) & 3, (b1 >> 1) & 3
    if layer == 0:  # ADTS: 12 sync bits, layer 00, a valid sampling index
        return "audio/aac" if b1 & 0xF0 == 0xF0 and (b2 >> 2) & 0xF < 13 else None
    if version == 1 or (b2 >> 4) in (0, 15) or (b2 >> 2) & 3 == 3:
        return None  # reserved version, free/bad bitrate, reserved sample rate
    return "audio/mpeg"


def sniff(path: Path) -> str | None:
    """The media type of `path` from its content (magic bytes), or None when it is not a container we
    know. Images that share a container (HEIC/AVIF in ISO-BMFF) give their image type."""
    with path.open("rb") as f:
        head = f.read(4096)
        size = os.fstat(f.fileno()).st_size
    if len(head) < 4:
        return None
    if head[:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "audio/aiff"
    if head[:4] == b"fLaC":
        return "audio/flac"
    if head[:4] == b"OggS":
        return "video/ogg" if b"\x80theora" in head else "audio/ogg"
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: the DocType says which
        doc = head[:64]
        return "video/webm" if b"webm" in doc else "video/x-matroska"
    if head[:3] == b"ID3" and len(head) >= 10 and head[3] in (2, 3, 4) and max(head[6:10]) < 0x80:
        # an ID3v2 tag, then the audio it labels
        tag_end = 10 + ((head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F))
        with path.open("rb") as f:
            f.seek(tag_end)
            after = f.read(8)
        if after[:4] == b"fLaC":
            return "audio/flac"
        return _mpeg_frame(after, 0) or ("audio/mpeg" if tag_end < size else None)
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _IMAGE_BRANDS:
            return _IMAGE_BRANDS[brand]
        if brand in _AUDIO_BRANDS:
            return "audio/mp4"
        if brand == b"qt  ":
            return "video/quicktime"
        if brand[:2] == b"3g":
            return "video/3gpp"
        return "video/mp4"
    if len(head) >= 8 and head[4:8] in _QT_ATOMS:
        atom = int.from_bytes(head[:4], "big")
        if atom in (0, 1) or 8 <= atom <= size:
            return "video/quicktime"
    return _mpeg_frame(head, 0)


# -- upload names ------------------------------------------------------------------------------------------

_KNOWN_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".mp3", ".wav", ".m4a", ".aac", ".flac",
                             ".ogg", ".oga", ".opus", ".aif", ".aiff"})
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def upload_key(upload_id: str, kind: str, filename: str = "") -> str:
    """The storage key of one uploaded file: `uploads/<upload_id>/<kind><suffix>`. Only ids go into it,
    plus the file name's suffix when it is a known media suffix; the name itself is kept in the record
    (trimmed) for display, never used as a path."""
    if not _ID.fullmatch(upload_id) or not _ID.fullmatch(kind):
        raise BadInput("Not a valid upload id or kind.", hint="Use the ids the API returned.")
    suffix = os.path.splitext(filename.replace("\\", "/").rsplit("/", 1)[-1])[1].lower()
    return safe_key("uploads", upload_id, kind + (suffix if suffix in _KNOWN_SUFFIXES else ""))


def display_name(filename: str, limit: int = 255) -> str:
    """A file name fit to show and store in a record: the last path part, control and format characters
    dropped, at most `limit` characters (the end, which holds the suffix, is kept)."""
    import unicodedata

    name = unicodedata.normalize("NFC", filename.replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    return name[-limit:] or "upload"
