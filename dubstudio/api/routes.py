"""/api/v1: health and jobs (local mode: the file comes in the request, as multipart)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile

from .. import __version__, actions, languages
from ..errors import NotFound
from .deps import CurrentUser, ServicesDep, SessionDep
from .schemas import EditLines, ErrorBody, Estimate, EventList, Health, JobList, JobOut, RetryRequest, SegmentList

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 404, 422, 500, 507)}

router = APIRouter(prefix="/api/v1", responses=ERRORS)


@router.get("/health", response_model=Health, tags=["health"])
async def health() -> dict[str, Any]:
    return {"status": "ok", "version": __version__}


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(1 << 20):
        yield chunk


@router.post("/jobs", response_model=JobOut, status_code=201, tags=["jobs"])
async def create_job(user: CurrentUser, svc: ServicesDep, session: SessionDep,
                     file: Annotated[UploadFile, File(description="The audio or video to dub.")],
                     target_languages: Annotated[str, Form(description="Comma-separated codes, e.g. `es,fr`.")],
                     source_language: Annotated[str, Form()] = "en",
                     background: Annotated[UploadFile | None, File(description="A background track: `file` is "
                                                                   "then the voice track (stems).")] = None,
                     stt: Annotated[str | None, Form(description="Speech-to-text engine for this job.")] = None,
                     translator: Annotated[str | None, Form(description="Translator for this job.")] = None,
                     tts: Annotated[str | None, Form(description="Voice engine for this job.")] = None,
                     ) -> dict[str, Any]:
    options = {k: v for k, v in {"stt": stt, "translator": translator, "tts": tts}.items() if v}
    bg = (background.filename or "background", _chunks(background)) if background is not None else None
    job = await actions.create_job(svc.settings, session, svc.storage, user, file.filename or "upload",
                                   _chunks(file), source_language, target_languages, options, background=bg)
    svc.queue.enqueue(job.id)
    return actions.job_view(await actions.get_job(session, user, job.id), detail=True)


@router.get("/estimate", response_model=Estimate, tags=["jobs"])
async def estimate(user: CurrentUser, svc: ServicesDep,
                   duration: Annotated[float, Query(gt=0, description="Seconds of media.")],
                   target_languages: Annotated[str, Query(description="Comma-separated codes, e.g. `es,fr`.")],
                   ) -> dict[str, Any]:
    """What a job should cost with the configured engines, before it starts."""
    return actions.estimate(svc.settings, duration, languages.parse_list(target_languages))


@router.get("/jobs", response_model=JobList, tags=["jobs"])
async def list_jobs(user: CurrentUser, session: SessionDep, limit: Annotated[int, Query(ge=1, le=200)] = 50,
                    offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    jobs = await actions.list_jobs(session, user, limit, offset)
    return {"jobs": [actions.job_view(j) for j in jobs], "limit": limit, "offset": offset}


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
    return {"segments": await actions.language_lines(svc.settings, session, user, job_id, language)}


@router.patch("/jobs/{job_id}/languages/{language}/segments", response_model=JobOut, tags=["editor"])
async def edit_segments(job_id: str, language: str, body: EditLines, user: CurrentUser, svc: ServicesDep,
                        session: SessionDep) -> dict[str, Any]:
    """Translations typed by hand (by segment id); the language is made again, only changed lines spoken."""
    await actions.edit_lines(svc.settings, session, user, job_id, language, body.translations, body.texts)
    svc.queue.enqueue(job_id)
    return actions.job_view(await actions.get_job(session, user, job_id), detail=True)


@router.post("/jobs/{job_id}/retry", response_model=JobOut, tags=["jobs"])
async def retry(job_id: str, user: CurrentUser, svc: ServicesDep, session: SessionDep,
                body: RetryRequest | None = None) -> dict[str, Any]:
    """Run a stopped job again, or one language of it; finished work is reused."""
    await actions.retry(session, user, job_id, body.language if body else None)
    svc.queue.enqueue(job_id)
    return actions.job_view(await actions.get_job(session, user, job_id), detail=True)


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
async def unknown(rest: str) -> None:
    raise NotFound(f"No API route /api/v1/{rest}.", hint="See /docs for the routes.")
