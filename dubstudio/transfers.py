"""Direct uploads and single-use downloads: the use cases behind `POST /uploads`, a job made from
uploads, `POST /jobs/{id}/downloads` and the files the app serves itself at signed URLs.

The client never sends a file through the JSON API: it asks for an upload URL per file and sends the
bytes there, to the app itself (local storage: a URL signed by the app, streamed to disk as it comes)
or straight to the Supabase bucket (a Supabase signed upload URL). Downloads are always app-signed URLs
with a nonce spent on first use (a `UsedNonce` row), so each works once; in Supabase mode the app then
redirects to a short-lived Supabase URL.
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete as sql_delete
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from .config import Settings
from .db.models import UPLOAD_KINDS, Artifact, Job, Upload, UsedNonce, new_id, utcnow
from .errors import AuthError, BadInput, Conflict, NotFound, NotMedia
from .pipeline.layout import sha256_file
from .storage.signed import MEDIA_TYPES, Signer, display_name, sniff, stream_to_file, upload_key

if TYPE_CHECKING:
    from .services import Services

FILES_PREFIX = "/api/v1/files/"
SECRET_FILE = "url_signing_secret"
REDIRECT_TTL = 60  # seconds a Supabase URL the app redirects to stays valid


@functools.cache
def _file_secret(data_dir: Path) -> bytes:
    """The signing secret kept in the data folder (0600), made on first use."""
    path = data_dir / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
        except FileExistsError:  # another process made it first: use theirs
            pass
    return path.read_text().strip().encode()


def signer(settings: Settings) -> Signer:
    configured = settings.secret("url_signing_secret")
    return Signer(configured.encode() if configured else _file_secret(settings.data_dir))


# -- uploads -------------------------------------------------------------------------------------------


async def create_uploads(svc: Services, session: AsyncSession, user_id: str, files: list[dict[str, Any]],
                         base_url: str) -> list[dict[str, Any]]:
    """Record one pending upload per file and give each its signed URL (absolute), method, headers and
    expiry. Nothing is checked but what the client declares; the bytes are checked when they arrive."""
    if not files:
        raise BadInput("No files to upload.", hint='Send {"files": [{"kind": "source", "filename": ..., '
                       '"size": ...}]}.')
    settings = svc.settings
    for f in files:
        if f["kind"] not in UPLOAD_KINDS:
            raise BadInput(f"Unknown upload kind {f['kind']!r}.", hint=f"Use one of {', '.join(UPLOAD_KINDS)}.")
        if f["size"] > settings.max_upload_bytes:
            raise BadInput(f"{display_name(f['filename'])} is {f['size']:,} bytes, over the limit of "
                           f"{settings.max_upload_bytes:,}.", hint="Send a shorter or more compressed file.")
    out = []
    expires = utcnow() + timedelta(seconds=settings.upload_url_ttl)
    for f in files:
        upload_id = new_id()
        key = upload_key(upload_id, f["kind"], f["filename"])
        session.add(Upload(id=upload_id, user_id=user_id, kind=f["kind"], filename=display_name(f["filename"]),
                           content_type=f.get("content_type") or "application/octet-stream", size=f["size"],
                           path=key, status="pending", expires_at=expires))
        if svc.remote is not None:
            target = await asyncio.to_thread(svc.remote.create_signed_upload_url, key)
            url, method, expires_at = target.url, "PUT", target.expires_at
        else:
            signed = signer(settings).signed_url("PUT", FILES_PREFIX + key, settings.upload_url_ttl)
            url, method, expires_at = base_url.rstrip("/") + signed.url, "PUT", signed.expires_at
        out.append({"id": upload_id, "kind": f["kind"], "url": url, "method": method,
                    "headers": {"Content-Type": "application/octet-stream"},
                    "expires_at": datetime.fromtimestamp(expires_at, UTC).isoformat()})
    await session.commit()
    return out


async def receive_upload(svc: Services, session: AsyncSession, key: str, query: dict[str, str],
                         chunks: AsyncIterator[bytes]) -> Upload:
    """The bytes of one pending upload at its app-signed URL (local storage): streamed to disk, hashed
    as they come, refused past the declared size; then checked to be media by their content."""
    signer(svc.settings).verify_query("PUT", FILES_PREFIX + key, query)
    parts = key.split("/")
    upload = await session.get(Upload, parts[1]) if len(parts) == 3 and parts[0] == "uploads" else None
    if upload is None or upload.path != key:
        raise NotFound("No such upload.", hint="Ask POST /api/v1/uploads for a new URL.")
    if upload.status != "pending":
        raise Conflict(f"This upload is already {upload.status}.", hint="Ask POST /api/v1/uploads for a new URL.")
    await session.commit()  # no transaction (nor pooled connection) held while the bytes come in
    path = svc.storage.local_path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = await stream_to_file(chunks, path, upload.size)
    if written.bytes != upload.size:
        path.unlink(missing_ok=True)
        raise BadInput(f"Received {written.bytes:,} bytes; {upload.size:,} were announced.",
                       hint="Send the whole file, or ask for a new URL with its real size.")
    media_type = await asyncio.to_thread(sniff, path)
    if media_type not in MEDIA_TYPES:
        path.unlink(missing_ok=True)
        raise NotMedia(f"{upload.filename} is not an audio or video file we can read.",
                       hint="Send a WAV, MP3, FLAC, M4A, MP4, MOV, MKV or WebM file.")
    upload.sha256, upload.content_type, upload.status = written.sha256, media_type, "uploaded"
    await session.commit()
    return upload


async def checked_upload(svc: Services, session: AsyncSession, user_id: str, upload_id: str,
                          kinds: tuple[str, ...]) -> Upload:
    upload = await session.get(Upload, upload_id)
    if upload is None or upload.user_id != user_id:
        raise NotFound(f"No upload {upload_id!r}.", hint="Use an id POST /api/v1/uploads returned.")
    if upload.kind not in kinds:
        raise BadInput(f"Upload {upload_id!r} is a {upload.kind} file.", hint=f"Give a {' or '.join(kinds)} here.")
    if upload.status == "pending" and svc.remote is not None and await asyncio.to_thread(svc.remote.exists,
                                                                                          upload.path):
        upload.status = "uploaded"  # sent straight to the bucket: the app learns of it now
    if upload.status != "uploaded":
        raise Conflict(f"Upload {upload_id!r} is {upload.status}.",
                       hint="Send its bytes to the upload URL first." if upload.status == "pending"
                       else "Upload the file again.")
    return upload


def _verify_media(settings: Settings, path: Path, upload: Upload) -> tuple[str, str, float | None]:
    """(sha256, media type, duration) of a stored upload, refused unless it is usable media within the
    limits."""
    from .pipeline import ingest  # the pipeline loads where media is handled: a server that only lists stays light

    digest = sha256_file(path)
    if upload.sha256 and digest != upload.sha256:
        raise BadInput(f"{upload.filename} changed after it was uploaded (checksum mismatch).",
                       hint="Upload the file again.")
    media_type = sniff(path)
    if media_type not in MEDIA_TYPES:
        raise NotMedia(f"{upload.filename} is not an audio or video file we can read.",
                       hint="Send a WAV, MP3, FLAC, M4A, MP4, MOV, MKV or WebM file.")
    info = ingest.check_input(path, settings.max_duration, upload.filename)  # decodable, has sound, not too long
    return digest, media_type, info.duration


async def verify_upload(svc: Services, upload: Upload) -> tuple[str, float | None]:
    """Check an upload's content before a job uses it; (sha256, duration)."""
    if svc.remote is None:
        path = svc.storage.local_path(upload.path)
        digest, media_type, duration = await asyncio.to_thread(_verify_media, svc.settings, path, upload)
    else:
        with svc.remote.fetched(upload.path, max_bytes=svc.settings.max_upload_bytes) as path:
            digest, media_type, duration = await asyncio.to_thread(_verify_media, svc.settings, path, upload)
    upload.sha256, upload.content_type = digest, media_type
    return digest, duration


# -- downloads -----------------------------------------------------------------------------------------


def create_download(settings: Settings, job: Job, language: str | None, kind: str, base_url: str) -> dict[str, Any]:
    """A single-use signed URL for one of a job's deliverables (the caller's job: see actions.get_job)."""
    found = [a for a in job.artifacts if a.kind == kind and a.language == language]
    if not found:
        have = sorted({f"{a.language or '-'}:{a.kind}" for a in job.artifacts})
        raise NotFound(f"Job {job.id!r} has no {kind!r} file{f' for {language}' if language else ''}.",
                       hint=f"Its files (language:kind): {', '.join(have) or 'none yet'}.")
    artifact = found[0]
    signed = signer(settings).signed_url("GET", FILES_PREFIX + artifact.path, settings.download_url_ttl)
    return {"url": base_url.rstrip("/") + signed.url, "method": "GET",
            "expires_at": datetime.fromtimestamp(signed.expires_at, UTC).isoformat(),
            "language": language, "kind": kind, "filename": Path(artifact.path).name,
            "bytes": artifact.bytes, "sha256": artifact.sha256}


async def spend_download(svc: Services, session: AsyncSession, key: str, query: dict[str, str]) -> Artifact:
    """Check a download URL and spend its nonce (the first use wins, a second is refused); the artifact."""
    expires = signer(svc.settings).verify_query("GET", FILES_PREFIX + key, query)
    artifact = (await session.execute(select(Artifact).where(Artifact.path == key).limit(1))).scalar_one_or_none()
    if artifact is None:
        raise NotFound("This file is gone.", hint="Its job was deleted or made again; ask for a new link.")
    now = utcnow()
    await session.execute(sql_delete(UsedNonce).where(UsedNonce.expires_at < now))  # expired: forgotten
    session.add(UsedNonce(nonce=query["nonce"], expires_at=datetime.fromtimestamp(expires, UTC)))
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise AuthError("This link was already used.", hint="Ask the API for a new one.") from None
    return artifact
