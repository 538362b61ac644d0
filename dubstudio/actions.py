"""Use cases: what the API, the UI and the CLI call. Each checks its input before anything is written."""

from __future__ import annotations

import asyncio
import functools
import logging
import operator
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, String, bindparam, select, type_coerce, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from . import languages, transfers
from .config import Settings
from .db.models import Job, JobEvent, LanguageTask, Upload, utcnow
from .domain import Transcript
from .errors import BadInput, Conflict, DubError, NotFound
from .pipeline.layout import EDITS, SOURCE_EDITS, SPEAKER_EDITS, sha256_file
from .storage.active import JobFiles
from .storage.local import LocalStorage
from .tasks import job_voices
from .vendors import registry
from .vendors.base import Engines

if TYPE_CHECKING:
    from .pipeline.media import MediaInfo
    from .pipeline.preview import Preview
    from .pipeline.run import JobSpec
    from .services import Services

log = logging.getLogger(__name__)


SPEAKER = re.compile(r"[A-Za-z0-9_-]{1,32}")  # what a speaker may be called (also a voice's key)


def _suffix(filename: str) -> str:
    m = re.search(r"\.([A-Za-z0-9]{1,8})$", filename)
    return f".{m[1].lower()}" if m else ""


def check_job_request(settings: Settings, source_language: str, targets: str | list[str],
                      options: dict[str, Any] | None = None) -> tuple[str, list[str]]:
    """Languages known and the engines (the job's choice over the settings) configured: refused before
    any upload is stored."""
    src = "auto" if source_language.strip().lower() == "auto" else languages.check(source_language)
    dst = languages.parse_list(targets)
    if src in dst:
        raise BadInput(f"The source language {src!r} is also a target.", hint="Remove it from the targets.")
    registry.translator(registry.for_job(settings, options or {}))  # raises with the fix
    return src, dst


Chunks = AsyncIterator[bytes] | Iterable[bytes]


async def _store(settings: Settings, storage: LocalStorage, key: str, filename: str,
                 chunks: Chunks) -> tuple[Path, MediaInfo]:
    """Write an upload under `key` and check it is media we can use (off the event loop)."""
    from .pipeline import ingest  # the pipeline loads where media is handled: a server that only lists stays light

    await storage.write_stream(key, chunks)
    path = storage.local_path(key)
    return path, await asyncio.to_thread(ingest.check_input, path, settings.max_duration, filename)


async def create_job(settings: Settings, session: AsyncSession, storage: LocalStorage, user_id: str,
                     filename: str, chunks: Chunks, source_language: str = "en",
                     targets: str | list[str] = "es", options: dict[str, Any] | None = None,
                     background: tuple[str, Chunks] | None = None) -> Job:
    """Store the file (and a background track: stems) under a new job, check they are usable media and
    record the job; the caller queues it. A refused file leaves nothing behind."""
    src, dst = check_job_request(settings, source_language, targets, options)
    job_id = uuid.uuid4().hex
    key = f"jobs/{job_id}/input/source{_suffix(filename)}"
    try:
        path, info = await _store(settings, storage, key, filename, chunks)
        bg_key = None
        if background is not None:
            bg_key = f"jobs/{job_id}/input/background{_suffix(background[0])}"
            await _store(settings, storage, bg_key, background[0], background[1])
        digest = await asyncio.to_thread(sha256_file, path)
        job = Job(id=job_id, user_id=user_id, status="queued", source_language=src,
                  source_filename=filename[-255:] or "upload", source_path=key, background_path=bg_key,
                  source_sha256=digest, duration=info.duration, options=options or {}, progress=0.0,
                  languages=[LanguageTask(language=lang, status="queued", progress=0.0) for lang in dst])
        session.add(job)
        session.add(JobEvent(job_id=job_id, kind="created", message=f"dub {filename} into {', '.join(dst)}"))
        await session.commit()
    except BaseException:
        await session.rollback()
        storage.delete_prefix(f"jobs/{job_id}")
        raise
    return job


async def create_job_from_uploads(svc: Services, session: AsyncSession, user_id: str, uploads: dict[str, str],
                                  source_language: str = "en", targets: str | list[str] = "es",
                                  options: dict[str, Any] | None = None) -> Job:
    """A job from files sent to upload URLs (`uploads`: ids by kind: a `source`, or a `voice` with an
    optional `background` for stems). Each is checked before the job is recorded: the caller's, sent,
    unchanged since (sha256), media by its content, within the duration limit."""
    src, dst = check_job_request(svc.settings, source_language, targets, options)
    extra = sorted(set(uploads) - {"source", "voice", "background"})
    if extra or ("source" in uploads) == ("voice" in uploads) or ("background" in uploads and "voice" not in uploads):
        raise BadInput("A job needs one `source` upload, or a `voice` upload with an optional `background`.",
                       hint='E.g. {"uploads": {"voice": "<id>", "background": "<id>"}}.')
    main = await transfers.checked_upload(svc, session, user_id, uploads.get("source") or uploads["voice"],
                                          ("source", "voice"))
    bg = (await transfers.checked_upload(svc, session, user_id, uploads["background"], ("background",))
          if "background" in uploads else None)
    await session.commit()  # nothing held open while the files are hashed and probed
    digest, duration = await transfers.verify_upload(svc, main)
    if bg is not None:
        await transfers.verify_upload(svc, bg)
    job = Job(id=uuid.uuid4().hex, user_id=user_id, status="queued", source_language=src,
              source_filename=main.filename, source_path=main.path, background_path=bg.path if bg else None,
              source_sha256=digest, duration=duration, options={**(options or {}), "uploads": uploads},
              progress=0.0, languages=[LanguageTask(language=lang, status="queued", progress=0.0) for lang in dst])
    for upload in (main, bg):
        if upload is not None:
            upload.status = "consumed"
    session.add(job)
    session.add(JobEvent(job_id=job.id, kind="created", message=f"dub {main.filename} into {', '.join(dst)}"))
    await session.commit()
    return job


def list_job_views(conn: Connection, user_id: str, limit: int = 50, offset: int = 0, *,
                   status: str | None = None, created_since: datetime | None = None) -> list[dict[str, Any]]:
    """The user's jobs in `job_view`'s shape, newest first; deleted ones only when asked for by `status`.
    The API's busiest read: through `Database.read`, two plain queries built once, no ORM objects."""
    page, languages_of = _list_statements(status is not None, created_since is not None)
    since = created_since if created_since is None or created_since.tzinfo else created_since.replace(tzinfo=UTC)
    params = {"user": user_id, "status": status, "since": since, "limit": limit, "offset": offset}
    rows = conn.execute(page, params).all()
    by_job: dict[str, list[Any]] = {r[0]: [] for r in rows}
    if rows:
        for t in conn.execute(languages_of, params).all():  # one fetch, not one per row
            by_job[t[0]].append(t)
    return [_shape(r, by_job[r[0]]) for r in rows]


@functools.cache
def _list_statements(by_status: bool, by_date: bool) -> tuple[Select[Any], Select[Any]]:
    """A page of jobs (filtered as asked) and their languages, with the same parameters. Built per call,
    they cost a quarter of the list; the languages select the page's ids again (cheaper than an IN list
    of ids, which is compiled anew each time)."""
    jobs, tasks = Job.__table__, LanguageTask.__table__
    # Times as the driver gives them (SQLite's text, asyncpg's datetime) for `_iso`: parsing SQLite's
    # text into a datetime only to format it again was a tenth of the list's time.
    columns = [type_coerce(jobs.c[name], String).label(name) if name in ("created_at", "finished_at")
               else jobs.c[name] for name in _JOB_FIELDS]
    page = select(*columns).where(
        jobs.c.user_id == bindparam("user"),
        jobs.c.status == bindparam("status") if by_status else jobs.c.status != "deleted")
    if by_date:
        page = page.where(jobs.c.created_at >= bindparam("since", type_=Job.created_at.type))
    page = (page.order_by(jobs.c.created_at.desc(), jobs.c.id.desc())
            .limit(bindparam("limit")).offset(bindparam("offset")))
    languages_of = (select(*(tasks.c[name] for name in _TASK_FIELDS))
                    .where(tasks.c.job_id.in_(page.with_only_columns(jobs.c.id))).order_by(tasks.c.language))
    return page, languages_of


async def get_job(session: AsyncSession, user_id: str, job_id: str) -> Job:
    """The caller's job, or NotFound (never a hint that another user's job exists)."""
    q = (select(Job).where(Job.id == job_id, Job.user_id == user_id)
         .options(selectinload(Job.languages), selectinload(Job.artifacts)))
    job = (await session.execute(q)).scalar_one_or_none()
    if job is None:
        raise NotFound(f"No job {job_id!r}.", hint="List your jobs with GET /api/v1/jobs.")
    return job


def estimate(settings: Settings, duration: float, targets: list[str]) -> dict[str, Any]:
    from .pipeline import costs

    return costs.estimate(duration, targets, *registry.names(settings), settings.prices)


def job_view(job: Job, *, detail: bool = False) -> dict[str, Any]:
    """The JSON shape of a job, shared by the API and the UI."""
    out = _shape(_job_fields(job), [_task_fields(t) for t in job.languages])
    if detail:
        out["artifacts"] = [{"language": a.language, "kind": a.kind, "path": a.path, "sha256": a.sha256,
                             "bytes": a.bytes} for a in job.artifacts]
    return out


# What `_shape` reads, in this order: a list loads only these columns; a record's are read in one call.
_JOB_FIELDS = ("id", "status", "stage", "progress", "source_language", "source_filename", "duration", "created_at",
               "finished_at", "error_code", "error_message", "cost_total")
_TASK_FIELDS = ("job_id", "language", "status", "stage", "progress", "cost_total", "error_code", "error_message")
_job_fields, _task_fields = operator.attrgetter(*_JOB_FIELDS), operator.attrgetter(*_TASK_FIELDS)


def _shape(job: Sequence[Any], tasks: Iterable[Sequence[Any]]) -> dict[str, Any]:
    """A job's view from its `_JOB_FIELDS` and its languages' `_TASK_FIELDS`, by position (a row's values
    unpacked cost a third of reading them by name, and this runs for every job of every list)."""
    (job_id, status, stage, progress, source_language, source_filename, duration, created_at, finished_at,
     error_code, error_message, cost_total) = job
    return {
        "id": job_id, "status": status, "stage": stage, "progress": round(progress, 4),
        "source_language": source_language, "source_filename": source_filename, "duration": duration,
        "created_at": _iso(created_at), "finished_at": _iso(finished_at) if finished_at else None,
        "error": {"code": error_code, "message": error_message} if error_code else None,
        "cost": {"currency": "USD", "total": round(cost_total, 6)},
        "languages": {language: {"status": t_status, "stage": t_stage, "progress": round(t_progress, 4),
                                 "cost": round(t_cost, 6),
                                 "error": {"code": t_code, "message": t_message} if t_code else None}
                      for _, language, t_status, t_stage, t_progress, t_cost, t_code, t_message in tasks},
    }


def _iso(value: datetime | str) -> str:
    """ISO 8601 in UTC with microseconds, from a datetime or from SQLite's stored text (UTC, as
    `UTCDateTime` writes it: 'YYYY-MM-DD HH:MM:SS.ffffff')."""
    if isinstance(value, str):
        return f"{value[:10]}T{value[11:]}+00:00"
    return value.astimezone(UTC).isoformat(timespec="microseconds")


async def job_events(session: AsyncSession, user_id: str, job_id: str, after: int = 0,
                     limit: int = 200) -> list[JobEvent]:
    await get_job(session, user_id, job_id)  # the caller's, or NotFound
    q = (select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.id > after)
         .order_by(JobEvent.id).limit(limit))
    return list((await session.execute(q)).scalars().all())


def event_view(e: JobEvent) -> dict[str, Any]:
    return {"id": e.id, "language": e.language, "kind": e.kind, "message": e.message, "data": e.data,
            "created_at": e.created_at.isoformat()}


def _workdir(settings: Settings, job: Job) -> Path:
    return settings.storage_dir / "jobs" / job.id


def _task(job: Job, language: str) -> LanguageTask:
    for t in job.languages:
        if t.language == language:
            return t
    raise NotFound(f"Job {job.id!r} has no language {language!r}.",
                   hint=f"Its languages: {', '.join(t.language for t in job.languages)}.")


async def language_lines(settings: Settings, session: AsyncSession, user_id: str, job_id: str, language: str,
                         files: JobFiles | None = None) -> list[dict[str, Any]]:
    """Every line of a language: source text and times, the translation (typed by hand where it was),
    and where the dub placed it once made. `files`: the active store (the server's `svc.files`), whose
    copies a worker on another machine keeps current; the data folder when not given."""
    job = await get_job(session, user_id, job_id)
    _task(job, language)
    read = _reader(_job_files(settings, files), job.id)
    found = await read("transcript.json")
    if found is None:
        raise BadInput("The source is not transcribed yet.", hint="Wait for the transcribe stage to finish.")
    segments = Transcript.from_dict(found).segments
    speakers, corrected = await read(SPEAKER_EDITS) or {}, await read(SOURCE_EDITS) or {}
    engine, edits = await read(f"{language}/translation.json") or {}, await read(f"{language}/{EDITS}") or {}
    placed = {row["id"]: row for row in (await read(f"{language}/result.json") or {}).get("segments", [])}
    return [{"id": s.id, "speaker": speakers.get(s.id, s.speaker), "source_start": s.start, "source_end": s.end,
             "text": corrected.get(s.id) or s.text,
             "translation": edits.get(s.id) or engine.get(s.id, ""), "edited": s.id in edits,
             **{k: placed[s.id][k] for k in ("dub_start", "dub_end", "stretch", "overflow", "rate", "voice")
                if k in placed.get(s.id, {})}}
            for s in segments]


def _job_files(settings: Settings, files: JobFiles | None) -> JobFiles:
    """The store given, else the data folder."""
    return files or JobFiles(LocalStorage(settings.storage_dir))


def _reader(store: JobFiles, job_id: str) -> Callable[[str], Awaitable[Any]]:
    """Reads a job's small JSON files by their name in its folder (None where there is none)."""

    async def read(name: str) -> Any:
        return await asyncio.to_thread(store.read_json, f"jobs/{job_id}/{name}")

    return read


async def edit_lines(settings: Settings, session: AsyncSession, user_id: str, job_id: str, language: str,
                     translations: dict[str, str], texts: dict[str, str] | None = None,
                     speakers: dict[str, str] | None = None, voices: dict[str, str] | None = None,
                     files: JobFiles | None = None) -> Job:
    """Keep what a person set: translations of `language`, corrected source `texts` and `speakers` of
    lines (which every language follows), and `voices` of speakers in `language`; queue what changed to
    be made again (only changed lines are spoken again; the caller enqueues the job). The edits go to
    `files`, the active store (see `language_lines`), where the run that makes them finds them."""
    texts, speakers, voices = texts or {}, speakers or {}, voices or {}
    bad = next((v for v in [*speakers.values(), *voices] if not SPEAKER.fullmatch(v)), None)
    if bad is not None:
        raise BadInput(f"Not a speaker name: {bad[:40]!r}.", hint="Use letters, digits, '-' or '_', e.g. S2.")
    if any(not v.strip() or len(v) > 128 for v in voices.values()):
        raise BadInput("A voice must be named (at most 128 characters).", hint="Use a voice id the engine lists.")
    rows = await language_lines(settings, session, user_id, job_id, language, files)
    lines = {row["id"] for row in rows}
    unknown = sorted((set(translations) | set(texts) | set(speakers)) - lines)
    if unknown:
        raise BadInput(f"No line {unknown[0]!r} in this job.", hint="Use the ids the segments route lists.",
                       details={"unknown": unknown})
    job = await get_job(session, user_id, job_id)
    if job.status in ("running", "deleted", "cancelled"):
        raise Conflict(f"The job is {job.status}.", hint="Edit lines once it has stopped running.")
    if voices:
        chosen = dict(job.options.get("voices", {}))
        job.options = {**job.options, "voices": {**chosen, language: {**chosen.get(language, {}), **voices}}}
    store = _job_files(settings, files)
    read = _reader(store, job.id)
    for name, changes in ((f"{language}/{EDITS}", translations), (SOURCE_EDITS, texts), (SPEAKER_EDITS, speakers)):
        if changes:
            edits = await read(name) or {}
            edits.update({k: v.strip() for k, v in changes.items()})
            await asyncio.to_thread(store.write_json, f"jobs/{job.id}/{name}", edits)
    again = [t.language for t in job.languages] if texts or speakers else [language]
    changed = len(set(translations) | set(texts) | set(speakers))
    return await _requeue_languages(session, job, again, f"{changed} line(s) and {len(voices)} voice(s) edited")


async def retry(session: AsyncSession, user_id: str, job_id: str, language: str | None = None) -> Job:
    """Run a failed or cancelled job again, or only one of its languages; what was done is reused,
    nothing paid twice."""
    job = await get_job(session, user_id, job_id)
    if job.status in ("running", "deleted", "queued"):
        raise Conflict(f"The job is {job.status}.", hint="Retry a job that has stopped.")
    if language is not None:
        _task(job, language)
    targets = [language] if language else [t.language for t in job.languages if t.status != "done"]
    if not targets:
        raise Conflict("Every language of this job is done.", hint="Edit a line to make a language again.")
    return await _requeue_languages(session, job, targets, f"retry {', '.join(targets)}")


async def render_language(session: AsyncSession, user_id: str, job_id: str, language: str) -> Job:
    """Queue one language to be made again, done or not (the run reuses every stage whose inputs are
    unchanged, so only what changed is made and paid for)."""
    job = await get_job(session, user_id, job_id)
    if job.status in ("running", "deleted", "queued"):
        raise Conflict(f"The job is {job.status}.", hint="Render a language once the job has stopped.")
    _task(job, language)
    return await _requeue_languages(session, job, [language], f"render {language} again")


async def _requeue_languages(session: AsyncSession, job: Job, languages: list[str], why: str) -> Job:
    for t in job.languages:
        if t.language in languages:
            t.status, t.error_code, t.error_message, t.progress = "queued", None, None, 0.0
    job.status, job.error_code, job.error_message, job.finished_at = "queued", None, None, None
    session.add(JobEvent(job_id=job.id, kind="requeued", message=why))
    await session.commit()
    return job


async def cancel(session: AsyncSession, user_id: str, job_id: str) -> Job:
    """Stop a queued, running or waiting job: a running one stops at its next step (its worker checks
    every second); what it made stays, and `retry` goes on from there."""
    job = await get_job(session, user_id, job_id)
    if job.status in ("done", "failed", "cancelled", "deleted"):
        raise Conflict(f"The job is {job.status}.", hint="Only a queued, running or waiting job can be cancelled.")
    job.status, job.finished_at = "cancelled", utcnow()
    for t in job.languages:
        if t.status != "done":
            t.status = "cancelled"
    session.add(JobEvent(job_id=job.id, kind="cancelled", message="cancelled"))
    await session.commit()
    return job


async def delete(svc: Services, session: AsyncSession, user_id: str, job_id: str) -> Job:
    """Delete now: the job's files (inputs, work, deliverables) and its uploads are removed from storage;
    the record stays, marked deleted, without artifacts. A running job stops at its next step, and its
    worker removes anything it wrote after this."""
    job = await get_job(session, user_id, job_id)
    if job.status != "deleted":
        job.status, job.finished_at = "deleted", utcnow()
        upload_ids = list(dict(job.options.get("uploads", {})).values())
        for upload in (await session.execute(select(Upload).where(Upload.id.in_(upload_ids),
                                                                  Upload.user_id == user_id))).scalars():
            upload.status = "deleted"
        job.artifacts.clear()
        session.add(JobEvent(job_id=job.id, kind="deleted", message="deleted with its files"))
        await session.commit()
        for prefix in (f"jobs/{job.id}", *(f"uploads/{u}" for u in upload_ids)):  # locally and in the bucket
            await asyncio.to_thread(svc.files.delete_prefix, prefix)
    return await get_job(session, user_id, job_id)


# Regenerate one line: heard within seconds, the language's other deliverables made again behind it.

_previewing: set[str] = set()  # jobs a preview is patching in this process: one at a time, never beside a run

async def regenerate_line(settings: Settings, session: AsyncSession, engines_for: Callable[[dict[str, Any]], Engines],
                          user_id: str, job_id: str, language: str, segment_id: str,
                          translation: str, files: JobFiles | None = None) -> Preview | None:
    """Keep a translation typed for one line (as `edit_lines`) and, when the language is done, make its
    master WAV current for that line at once: only the line spoken and fitted, only its stretch of the
    master remade (a second or two of local work even for an hour of media). The language is queued to be
    made again for the rest (loudness measured again, AAC, video, captions, manifest): the caller enqueues
    the job, as after `edit_lines`. Returns what was patched; None when the master was not (the queued run
    then makes it all). `engines_for`: the engines for a job's options (Queue.engines)."""
    text = translation.strip()
    if not text:
        raise BadInput("The line's translation is empty.", hint="Type the line to speak, then regenerate it.")
    job = await get_job(session, user_id, job_id)
    # Read before the edit queues the job: the language is finished and no run can be writing it (a run
    # starts once the caller enqueues, after this returns; a second click meanwhile finds the job queued).
    ready = job.status not in ("queued", "running") and _task(job, language).status == "done" \
        and job_id not in _previewing
    spec = _preview_spec(settings, job, language)
    options = dict(job.options)
    if ready:
        _previewing.add(job_id)
    try:
        await edit_lines(settings, session, user_id, job_id, language, {segment_id: text}, files=files)
        if not ready:  # nothing finished to patch, or it may be being written: the queued run does it all
            return None
        calls: list[tuple[str | None, str, float, str, float]] = []
        try:
            from .pipeline import preview

            made = await asyncio.to_thread(preview.line, spec, engines_for(options), language, segment_id,
                                           lambda *call: calls.append(call))
        except DubError as err:  # the queued run meets it again and reports it
            log.warning("no preview of line %s of job %s (%s): %s", segment_id, job_id, language, err)
            made = None
        except Exception:
            log.exception("no preview of line %s of job %s (%s)", segment_id, job_id, language)
            made = None
    finally:
        if ready:
            _previewing.discard(job_id)
    for lang, engine, units, unit, cost in calls:  # paid for now, cached for the run: recorded as a run does
        session.add(JobEvent(job_id=job_id, language=lang, kind="vendor_call", vendor=engine, units=round(units, 3),
                             unit=unit, cost=cost, message=f"{engine}: {units:.0f} {unit}"))
        await session.execute(update(Job).where(Job.id == job_id).values(cost_total=Job.cost_total + cost))
        await session.execute(update(LanguageTask).where(LanguageTask.job_id == job_id,
                                                         LanguageTask.language == language)
                              .values(cost_total=LanguageTask.cost_total + cost))
    if made is not None:
        session.add(JobEvent(job_id=job_id, language=language, kind="line_previewed",
                             message=f"line {segment_id} heard in the master ({made.start:.1f}-{made.end:.1f} s)",
                             data={"segment": segment_id, "start": made.start, "end": made.end}))
    await session.commit()
    return made


def _preview_spec(settings: Settings, job: Job, language: str) -> JobSpec:
    """The parts of a run's JobSpec (tasks.execute) that a line's preview uses. Should they ever differ
    from the run's, the preview's key check finds the master out of date and leaves it to the run."""
    from .pipeline.run import JobSpec
    return JobSpec(job_id=job.id, source=settings.storage_dir / job.source_path,
                   workdir=_workdir(settings, job), source_language=job.source_language, targets=[language],
                   background=settings.storage_dir / job.background_path if job.background_path else None,
                   sample_rate=settings.sample_rate, duck_db=settings.duck_db, duck_ramp_ms=settings.duck_ramp_ms,
                   max_stretch=settings.max_stretch,
                   loudness_target=job.options.get("loudness_target", settings.loudness_target),
                   voices=job_voices(settings, job.options), cache_dir=settings.data_dir / "cache",
                   prices=settings.prices)
