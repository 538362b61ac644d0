"""/api/v1: health and jobs (local mode: the file comes in the request, as multipart)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile as StarletteUpload

from .. import __version__, actions, languages, transfers
from ..db.models import Job
from ..errors import NotFound
from ..services import Services
from . import files
from .deps import CurrentUser, ServicesDep, SessionDep
from .schemas import (
    DownloadOut,
    DownloadRequest,
    EditLines,
    ErrorBody,
    Estimate,
    EventList,
    Health,
    JobFromUploads,
    JobList,
    JobOut,
    JobStatus,
    RegenerateLine,
    RegenerateOut,
    RetryRequest,
    SegmentList,
    UploadsOut,
    UploadsRequest,
)

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 404, 409, 422, 500, 502, 507)}

router = APIRouter(prefix="/api/v1", responses=ERRORS)


@router.get("/health", response_model=Health, tags=["health"])
async def health() -> dict[str, Any]:
    return {"status": "ok", "version": __version__}


async def _chunks(upload: StarletteUpload) -> AsyncIterator[bytes]:
    while chunk := await upload.read(1 << 20):
        yield chunk


JOB_FORM = {"type": "object", "required": ["file", "target_languages"], "properties": {
    "file": {"type": "string", "format": "binary", "description": "The audio or video to dub."},
    "background": {"type": "string", "format": "binary",
                   "description": "A background track: `file` is then the voice track (stems)."},
    "target_languages": {"type": "string", "description": "Comma-separated codes, e.g. `es,fr`."},
    "source_language": {"type": "string", "default": "en"},
    "stt": {"type": "string"}, "translator": {"type": "string"}, "tts": {"type": "string"}}}


@router.post("/jobs", response_model=JobOut, status_code=201, tags=["jobs"], openapi_extra={"requestBody": {
    "required": True, "content": {
        "application/json": {"schema": JobFromUploads.model_json_schema()},
        "multipart/form-data": {"schema": JOB_FORM}}}})
async def create_job(request: Request, user: CurrentUser, svc: ServicesDep, session: SessionDep) -> dict[str, Any]:
    """A job from uploads (JSON: the direct-upload flow, for large files and the web frontend), or with
    the file in this request (multipart: the desktop and scripts). Validated, then queued."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        job = await _job_from_form(request, user, svc, session)
    else:
        try:
            body = JobFromUploads.model_validate_json(await request.body())
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False, include_context=False)) from None
        options = {k: v for k, v in {"stt": body.stt, "translator": body.translator, "tts": body.tts}.items() if v}
        uploads = {str(kind): upload_id for kind, upload_id in body.uploads.items()}
        job = await actions.create_job_from_uploads(svc, session, user, uploads, body.source_language,
                                                    body.target_languages, options)
    svc.queue.enqueue(job.id)
    return actions.job_view(await actions.get_job(session, user, job.id), detail=True)


async def _job_from_form(request: Request, user: str, svc: Services, session: AsyncSession) -> Job:
    form = await request.form(max_files=2, max_fields=10)
    file, background = form.get("file"), form.get("background")
    if not isinstance(file, StarletteUpload):
        raise RequestValidationError([{"loc": ("body", "file"), "msg": "Field required", "type": "missing"}])
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    if not fields.get("target_languages"):
        raise RequestValidationError([{"loc": ("body", "target_languages"), "msg": "Field required",
                                       "type": "missing"}])
    options = {k: fields[k] for k in ("stt", "translator", "tts") if fields.get(k)}
    bg = ((background.filename or "background", _chunks(background))
          if isinstance(background, StarletteUpload) else None)
    job = await actions.create_job(svc.settings, session, svc.storage, user, file.filename or "upload",
                                   _chunks(file), fields.get("source_language", "en"), fields["target_languages"],
                                   options, background=bg)
    for key in (job.source_path, job.background_path):  # in Supabase mode, workers read inputs from the bucket
        if key:
            await asyncio.to_thread(svc.files.publish, key)
    return job


@router.post("/uploads", response_model=UploadsOut, status_code=201, tags=["uploads"])
async def create_uploads(body: UploadsRequest, request: Request, user: CurrentUser, svc: ServicesDep,
                         session: SessionDep) -> dict[str, Any]:
    """Step 1 of the direct-upload flow: an upload id and a signed URL per file. Send each file's bytes
    to its URL (step 2), then create the job from the ids (`POST /jobs` with JSON)."""
    files = [f.model_dump() for f in body.files]
    return {"uploads": await transfers.create_uploads(svc, session, user, files, str(request.base_url))}


@router.get("/estimate", response_model=Estimate, tags=["jobs"])
async def estimate(user: CurrentUser, svc: ServicesDep,
                   duration: Annotated[float, Query(gt=0, description="Seconds of media.")],
                   target_languages: Annotated[str, Query(description="Comma-separated codes, e.g. `es,fr`.")],
                   ) -> dict[str, Any]:
    """What a job should cost with the configured engines, before it starts."""
    return actions.estimate(svc.settings, duration, languages.parse_list(target_languages))


@router.get("/jobs", response_model=JobList, tags=["jobs"])
async def list_jobs(user: CurrentUser, svc: ServicesDep, limit: Annotated[int, Query(ge=1, le=200)] = 50,
                    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
                    status: Annotated[JobStatus | None, Query(description="Only jobs in this state.")] = None,
                    created_since: Annotated[datetime | None, Query(description="Only jobs created at or after "
                                                                    "this time (ISO 8601).")] = None,
                    ) -> Response:
    """The caller's jobs, newest first, a page at a time (deleted ones only when asked by `status`)."""
    jobs = await svc.db.read(actions.list_job_views, user, limit + 1, offset, status=status,
                             created_since=created_since)
    more = len(jobs) > limit
    # Encoded at once: these dicts are already the schema's shape (the busiest read skips revalidation).
    return Response(orjson.dumps({"jobs": jobs[:limit], "limit": limit, "offset": offset,
                                  "next_offset": offset + limit if more else None}), media_type="application/json")


@router.get("/jobs/{job_id}", response_model=JobOut, tags=["jobs"])
async def get_job(job_id: str, user: CurrentUser, session: SessionDep) -> dict[str, Any]:
    return actions.job_view(await actions.get_job(session, user, job_id), detail=True)


@router.get("/jobs/{job_id}/events", response_model=EventList, tags=["jobs"])
async def job_events(job_id: str, user: CurrentUser, session: SessionDep,
                     after: Annotated[int, Query(ge=0, description="Only events with a larger id.")] = 0,
                     limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> dict[str, Any]:
    events = await actions.job_events(session, user, job_id, after, limit)
    return {"events": [actions.event_view(e) for e in events]}


@router.get("/jobs/{job_id}/languages/{language}/segments", response_model=SegmentList, tags=["editor"])
async def segments(job_id: str, language: str, user: CurrentUser, svc: ServicesDep,
                   session: SessionDep) -> dict[str, Any]:
    """Every line of a language: source text and times, its translation, and where the dub placed it."""
    return {"segments": await actions.language_lines(svc.settings, session, user, job_id, language, svc.files)}


@router.patch("/jobs/{job_id}/languages/{language}/segments", response_model=JobOut, tags=["editor"])
async def edit_segments(job_id: str, language: str, body: EditLines, user: CurrentUser, svc: ServicesDep,
                        session: SessionDep) -> dict[str, Any]:
    """Translations typed by hand (by segment id); the language is made again, only changed lines spoken."""
    await actions.edit_lines(svc.settings, session, user, job_id, language, body.translations, body.texts,
                             body.speakers, body.voices, files=svc.files)
    svc.queue.enqueue(job_id)
    return actions.job_view(await actions.get_job(session, user, job_id), detail=True)


@router.post("/jobs/{job_id}/languages/{language}/segments/{segment_id}/regenerate", response_model=RegenerateOut,
             tags=["editor"])
async def regenerate(job_id: str, language: str, segment_id: str, body: RegenerateLine, user: CurrentUser,
                     svc: ServicesDep, session: SessionDep) -> dict[str, Any]:
    """Speak one line again with a new translation: when the language is finished, only that line is
    spoken and its stretch of the master remade before this answers (heard within seconds); the language's
    other files are made again behind it."""
    made = await actions.regenerate_line(svc.settings, session, svc.queue.engines, user, job_id, language,
                                         segment_id, body.translation, files=svc.files)
    svc.queue.enqueue(job_id)
    job = actions.job_view(await actions.get_job(session, user, job_id), detail=True)
    return {"job": job, "preview": None if made is None else {"segment_id": made.segment_id, "start": made.start,
                                                             "end": made.end, "row": made.row}}


@router.post("/jobs/{job_id}/languages/{language}/render", response_model=JobOut, tags=["editor"])
async def render(job_id: str, language: str, user: CurrentUser, svc: ServicesDep, session: SessionDep,
                 ) -> dict[str, Any]:
    """Make a language again (after a change of settings, say); what did not change is reused, not paid again."""
    await actions.render_language(session, user, job_id, language)
    svc.queue.enqueue(job_id)
    return actions.job_view(await actions.get_job(session, user, job_id), detail=True)


@router.post("/jobs/{job_id}/retry", response_model=JobOut, tags=["jobs"])
async def retry(job_id: str, user: CurrentUser, svc: ServicesDep, session: SessionDep,
                body: RetryRequest | None = None) -> dict[str, Any]:
    """Run a stopped job again, or one language of it; finished work is reused."""
    await actions.retry(session, user, job_id, body.language if body else None)
    svc.queue.enqueue(job_id)
    return actions.job_view(await actions.get_job(session, user, job_id), detail=True)


@router.post("/jobs/{job_id}/cancel", response_model=JobOut, tags=["jobs"])
async def cancel(job_id: str, user: CurrentUser, session: SessionDep) -> dict[str, Any]:
    """Stop a queued, running or waiting job; what it made is kept, and retry goes on from there."""
    await actions.cancel(session, user, job_id)
    return actions.job_view(await actions.get_job(session, user, job_id), detail=True)


@router.delete("/jobs/{job_id}", response_model=JobOut, tags=["jobs"])
async def delete_job(job_id: str, user: CurrentUser, svc: ServicesDep, session: SessionDep) -> dict[str, Any]:
    """Delete now: the job's files and uploads are removed from storage at once; its record says deleted."""
    return actions.job_view(await actions.delete(svc, session, user, job_id), detail=True)


@router.post("/jobs/{job_id}/downloads", response_model=DownloadOut, status_code=201, tags=["jobs"])
async def create_download(job_id: str, body: DownloadRequest, request: Request, user: CurrentUser,
                          svc: ServicesDep, session: SessionDep) -> dict[str, Any]:
    """A single-use signed URL for one deliverable: it works once, until it expires."""
    job = await actions.get_job(session, user, job_id)
    return transfers.create_download(svc.settings, job, body.language, body.kind, str(request.base_url))


router.include_router(files.router)  # before the catch-all below


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
async def unknown(rest: str) -> None:
    raise NotFound(f"No API route /api/v1/{rest}.", hint="See /docs for the routes.")
