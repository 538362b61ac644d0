"""The queue: Huey built from settings, the task that runs a job, and what records its progress.

SQLite in the data folder by default (SqliteHuey); DUBSTUDIO_QUEUE_URL=redis://... for RedisHuey. A
task only carries a job id: the job's state lives in the database, so a lost task can be requeued.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from huey import Huey, RedisHuey, SqliteHuey
from huey.consumer import Consumer
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from . import modes
from .config import Settings
from .db.models import Artifact, Job, JobEvent, LanguageTask, Segment, Upload, utcnow
from .errors import (
    AwaitingTranslation,
    BadInput,
    DubError,
    JobStopped,
    NotFound,
    PermanentVendorError,
    StorageError,
    VendorError,
)
from .pipeline import layout
from .runtime import Database
from .storage.active import JobFiles
from .storage.local import LocalStorage
from .vendors import registry
from .vendors.base import Engines, SpeechToText, TextToSpeech

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_DEFERRALS = 3  # times a job waits for a vendor's Retry-After before it fails
HEARTBEAT_SECONDS = 1.0  # progress within a stage is written at most this often
NOT_STORED = "deliverables_not_stored"  # a job's error code when its files could not reach the bucket
STOP_CHECK_SECONDS = 1.0  # how soon a running job notices it was cancelled or deleted


def make_huey(settings: Settings) -> Huey:
    if settings.queue_url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey("dubstudio", url=settings.queue_url)
    if settings.queue_url:
        raise DubError(f"Unknown queue URL {settings.queue_url!r}.",
                       hint="Leave DUBSTUDIO_QUEUE_URL empty for SQLite, or use redis://host:6379/0.")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteHuey("dubstudio", filename=str(settings.queue_path))


class InProcessConsumer(Consumer):
    """A consumer inside the server: it leaves SIGINT/SIGTERM to uvicorn (Huey's would take them)."""

    def _set_signal_handlers(self) -> None:
        pass


def self_command(*args: str) -> list[str]:
    """This program with `args`, from source or frozen (PyInstaller)."""
    if getattr(sys, "frozen", False):
        return [sys.executable, *args]
    return [sys.executable, "-m", "dubstudio", *args]


class Queue:
    """`isolate`: run each job in a child process. The server does, so that engines holding the GIL
    (pocketsphinx decodes for seconds at a time) never stall its event loop or its Ctrl-C, and a crash
    in native code cannot take it down; a dedicated worker runs jobs in its own threads."""

    def __init__(self, settings: Settings, *, isolate: bool = False) -> None:
        self.settings = settings
        self.isolate = isolate
        self.children: set[subprocess.Popen[bytes]] = set()
        self.huey = make_huey(settings)
        # Supabase mode: a job's inputs come from the bucket, its deliverables go back (else: the data folder).
        self.remote = modes.remote_storage(settings)
        self.files = JobFiles(LocalStorage(settings.storage_dir), self.remote)
        self.run_job = self.huey.task(name="run_job")(self._run_job)
        self._stt: dict[str, SpeechToText] = {}
        self._tts: dict[str, TextToSpeech] = {}
        self._lock = threading.Lock()
        self.running: set[str] = set()  # jobs this process is working on, requeued if it stops

    def enqueue(self, job_id: str) -> None:
        self.run_job(job_id)

    def consumer(self, in_process: bool = True) -> Consumer:
        cls = InProcessConsumer if in_process else Consumer
        return cls(self.huey, workers=self.settings.workers, worker_type="thread", periodic=False,
                   check_worker_health=False)

    def engines(self, options: dict[str, Any]) -> Engines:
        """The engines a job chose (its options over the settings). Speech engines are built once per
        process and choice (the offline ones hold models and a helper process); the translator per job,
        so a changed key or base URL takes effect."""
        settings = registry.for_job(self.settings, options)
        with self._lock:
            stt = self._stt.get(settings.stt) or self._stt.setdefault(settings.stt, registry.stt(settings))
            tts = self._tts.get(settings.tts) or self._tts.setdefault(settings.tts, registry.tts(settings))
        return Engines(stt, registry.translator(settings), tts)

    def _run_job(self, job_id: str) -> None:
        self.running.add(job_id)
        try:
            if not self.isolate:
                asyncio.run(execute(self, job_id))
                return
            child = subprocess.Popen(self_command("_run-job", job_id))
            self.children.add(child)
            try:
                child.wait()
            finally:
                self.children.discard(child)
        finally:
            self.running.discard(job_id)

    def watch(self, stop: threading.Event) -> threading.Thread:
        """Every `requeue_every` seconds until `stop` is set, queue again the jobs whose worker died."""

        async def once() -> None:
            db = Database.connect(self.settings)
            try:
                if claimed := await requeue(self, db):
                    log.info("requeued %d job(s) whose worker stopped: %s", len(claimed), ", ".join(claimed))
            finally:
                await db.close()

        def loop() -> None:
            while not stop.wait(self.settings.requeue_every):
                try:
                    asyncio.run(once())
                except Exception:  # a database hiccup must not end the watch
                    log.warning("the check for lost jobs failed", exc_info=True)

        thread = threading.Thread(target=loop, daemon=True, name="dubstudio-requeue")
        thread.start()
        return thread

    def stop_children(self, grace: float = 2.0) -> None:
        """End the job processes (they resume from their last stage when requeued)."""
        for child in list(self.children):
            child.terminate()
        deadline = time.monotonic() + grace
        for child in list(self.children):
            try:
                child.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()


def job_voices(settings: Settings, options: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Voices by language and speaker: the job's choices (the editor's) over the settings'."""
    chosen: dict[str, dict[str, str]] = options.get("voices", {})
    return {lang: {**settings.voices.get(lang, {}), **chosen.get(lang, {})} for lang in {*settings.voices, *chosen}}


async def in_daemon_thread(fn: Callable[..., T], *args: Any) -> T:
    """Like asyncio.to_thread, but in a daemon thread: the executor's threads are joined at exit, so a
    long stage there would hold up Ctrl-C. An interrupted job is requeued on the next start."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()

    def settle(outcome: Callable[[], None]) -> None:
        if not fut.done():
            outcome()

    def target() -> None:
        outcome: Callable[[], None]
        try:
            outcome = functools.partial(fut.set_result, fn(*args))
        except BaseException as exc:  # handed to the awaiting coroutine
            outcome = functools.partial(fut.set_exception, exc)
        with contextlib.suppress(RuntimeError):  # the loop is gone: the process is shutting down
            loop.call_soon_threadsafe(settle, outcome)

    threading.Thread(target=target, daemon=True, name=f"dubstudio-{getattr(fn, '__name__', 'work')}").start()
    return await fut


class DbReporter:
    """Writes the pipeline's progress to the database from the pipeline's thread, at most every
    HEARTBEAT_SECONDS for progress within a stage and at once for a new stage."""

    def __init__(self, db: Database, job_id: str, languages: list[str], loop: asyncio.AbstractEventLoop) -> None:
        self.db, self.job_id, self.languages, self.loop = db, job_id, languages, loop
        self.last: dict[str | None, str] = {}
        self.last_write = 0.0
        self.failed: set[str] = set()
        self.waiting: set[str] = set()
        self.come_back = 0.0  # seconds a vendor asked us to wait before trying again (0: none asked)
        self.stopped = threading.Event()  # the job was cancelled or deleted: stop at the next step
        self.lock = threading.Lock()

    def _call(self, coro: Any) -> None:
        asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stage(self, language: str | None, stage: str, fraction: float) -> None:
        if self.stopped.is_set():
            raise JobStopped("The job was cancelled or deleted.")
        with self.lock:  # languages, and lines within one, report from several threads
            new_stage = self.last.get(language) != stage
            if not new_stage and time.monotonic() - self.last_write < HEARTBEAT_SECONDS and fraction < 1.0:
                return
            self.last[language] = stage
            self.last_write = time.monotonic()
        self._call(self._write_stage(language, stage, layout.overall(stage, fraction), new_stage))

    async def _write_stage(self, language: str | None, stage: str, progress: float, new_stage: bool) -> None:
        langs = [language] if language else [x for x in self.languages if x not in self.failed]
        async with self.db.session() as s, s.begin():
            await s.execute(update(LanguageTask).where(LanguageTask.job_id == self.job_id,
                                                       LanguageTask.language.in_(langs),
                                                       LanguageTask.status != "cancelled")
                            .values(stage=stage, progress=progress, status="running"))
            tasks = (await s.execute(select(LanguageTask.progress).where(
                LanguageTask.job_id == self.job_id))).scalars().all()
            await s.execute(update(Job).where(Job.id == self.job_id).values(
                stage=stage, progress=round(sum(tasks) / max(1, len(tasks)), 4), heartbeat_at=utcnow()))
            if new_stage:
                s.add(JobEvent(job_id=self.job_id, language=language, kind="stage_started",
                               message=f"{stage} started", data={"stage": stage}))

    def stage_done(self, language: str | None, stage: str, outputs: list[str], reused: bool) -> None:
        self._call(self._add_event(JobEvent(
            job_id=self.job_id, language=language, kind="stage_done",
            message=f"{stage} {'reused' if reused else 'done'}",
            data={"stage": stage, "reused": reused, "outputs": outputs[:50], "count": len(outputs)})))

    async def _add_event(self, event: JobEvent) -> None:
        async with self.db.session() as s, s.begin():
            s.add(event)

    def vendor_call(self, language: str | None, engine: str, units: float, unit: str, cost: float) -> None:
        self._call(self._write_cost(language, engine, units, unit, cost))

    async def _write_cost(self, language: str | None, engine: str, units: float, unit: str, cost: float) -> None:
        async with self.db.session() as s, s.begin():
            s.add(JobEvent(job_id=self.job_id, language=language, kind="vendor_call", vendor=engine,
                           units=round(units, 3), unit=unit, cost=cost, message=f"{engine}: {units:.0f} {unit}"))
            await s.execute(update(Job).where(Job.id == self.job_id).values(cost_total=Job.cost_total + cost))
            if language:
                await s.execute(update(LanguageTask).where(LanguageTask.job_id == self.job_id,
                                                           LanguageTask.language == language)
                                .values(cost_total=LanguageTask.cost_total + cost))

    def language_done(self, language: str, entry: dict[str, Any]) -> None:
        self._call(self._write_done(language, entry))

    async def _write_done(self, language: str, entry: dict[str, Any]) -> None:
        async with self.db.session() as s, s.begin():
            task = (await s.execute(select(LanguageTask).where(
                LanguageTask.job_id == self.job_id, LanguageTask.language == language))).scalar_one()
            task.status, task.stage, task.progress = "done", "deliver", 1.0
            await s.execute(delete(Segment).where(Segment.task_id == task.id))
            for idx, row in enumerate(entry["segments"]):
                s.add(Segment(task_id=task.id, idx=idx, segment_key=row["id"], speaker=row["speaker"],
                              source_start=row["source_start"], source_end=row["source_end"], text=row["text"],
                              translation=row["translation"], dub_start=row["dub_start"], dub_end=row["dub_end"],
                              stretch=row["stretch"], overflow=row["overflow"]))
            await s.execute(delete(Artifact).where(Artifact.job_id == self.job_id, Artifact.language == language))
            for a in entry["artifacts"]:
                s.add(Artifact(job_id=self.job_id, language=language, kind=a["kind"],
                               path=f"jobs/{self.job_id}/{a['path']}", sha256=a["sha256"], bytes=a["bytes"]))
            s.add(JobEvent(job_id=self.job_id, language=language, kind="language_done", message=f"{language} done"))

    def language_failed(self, language: str, error: DubError) -> None:
        if self.stopped.is_set():
            return  # cancelled, not failed: the record already says so
        waiting = error.code == AwaitingTranslation.code  # not a failure: it goes on once lines are typed
        (self.waiting if waiting else self.failed).add(language)
        if _come_back_later(error):
            self.come_back = max(self.come_back, error.retry_after or 0.0)  # type: ignore[attr-defined]
        self._call(self._write_failed(language, error, "awaiting_translation" if waiting else "failed"))

    async def _write_failed(self, language: str, error: DubError, status: str) -> None:
        async with self.db.session() as s, s.begin():
            await s.execute(update(LanguageTask).where(LanguageTask.job_id == self.job_id,
                                                       LanguageTask.language == language)
                            .values(status=status, error_code=error.code, error_message=str(error)))
            s.add(JobEvent(job_id=self.job_id, language=language, kind="error", message=str(error),
                           data={"code": error.code}))


async def execute(queue: Queue, job_id: str) -> None:
    """Run one job to its end, recording everything; never raises for a job's own failure."""
    settings, files = queue.settings, queue.files
    db = Database.connect(settings)
    try:
        async with db.session() as s, s.begin():
            job = await s.get(Job, job_id)
            if job is None or job.status in ("done", "deleted", "cancelled"):
                return
            job.status, job.heartbeat_at, job.error_code, job.error_message = "running", utcnow(), None, None
            started = utcnow()
            languages = [t.language for t in await job.awaitable_attrs.languages if t.status != "done"]
            state, edits = layout.editor_files(job_id, [t.language for t in job.languages])
            options = dict(job.options)
            inputs = await _inputs(s, job)
            from .pipeline import run as pipeline  # here: only a job's process loads the pipeline

            spec = pipeline.JobSpec(
                job_id=job.id, source=files.local_path(job.source_path),
                background=files.local_path(job.background_path) if job.background_path else None,
                workdir=settings.storage_dir / "jobs" / job.id, source_language=job.source_language,
                targets=languages, sample_rate=settings.sample_rate, duck_db=settings.duck_db,
                duck_ramp_ms=settings.duck_ramp_ms, max_stretch=settings.max_stretch,
                loudness_target=job.options.get("loudness_target", settings.loudness_target),
                voices=job_voices(settings, options), source_name=job.source_filename,
                cache_dir=settings.data_dir / "cache",
                prices=settings.prices)
        reporter = DbReporter(db, job_id, languages, asyncio.get_running_loop())
        status, code, message = "done", None, None
        beating = asyncio.create_task(_heartbeat(db, job_id, min(10.0, settings.stale_after / 4), reporter.stopped))
        try:
            if files.remote is not None:
                await in_daemon_thread(_stage_inputs, files, inputs, settings.max_upload_bytes)
                await in_daemon_thread(files.pull, edits)  # typed on a server that may be another machine
            engines = await in_daemon_thread(queue.engines, options)
            data = await in_daemon_thread(pipeline.run, spec, engines, reporter)
            if reporter.stopped.is_set():
                raise JobStopped("The job was cancelled or deleted.")
            if reporter.failed:
                status, code = "failed", "language_failed"
                message = f"Failed for {', '.join(sorted(reporter.failed))}; see each language's error."
            elif reporter.waiting:
                status, code = "awaiting_input", "awaiting_translation"
                message = f"Waiting for translations typed by hand: {', '.join(sorted(reporter.waiting))}."
            async with db.session() as s, s.begin():
                job = await s.get(Job, job_id)
                assert job is not None
                job.duration = data["source"]["duration"]
                await s.execute(delete(Artifact).where(Artifact.job_id == job_id, Artifact.language.is_(None)))
                src = data["source"]["language"]
                for kind, name in [("manifest", "manifest.json"), ("captions_srt", f"captions.{src}.srt"),
                                   ("captions_vtt", f"captions.{src}.vtt")] + (
                        [("video_all", data["video_all_languages"]["path"])] if "video_all_languages" in data else []):
                    path = spec.workdir / name
                    s.add(Artifact(job_id=job_id, language=None, kind=kind, path=f"jobs/{job_id}/{name}",
                                   sha256=layout.sha256_file(path), bytes=path.stat().st_size))
        except DubError as err:
            status, code, message = "failed", err.code, str(err)
            if _come_back_later(err):
                reporter.come_back = max(reporter.come_back, err.retry_after or 0.0)  # type: ignore[attr-defined]
        except Exception as exc:  # a bug: keep the job's record honest and the worker alive
            log.exception("job %s failed unexpectedly", job_id)
            status, code, message = "failed", "internal_error", f"An unexpected error stopped the job: {exc!r}"
        except BaseException:  # interrupted (Ctrl-C, a stopping worker): requeued later, nothing to publish
            beating.cancel()
            raise
        finally:
            for key, _ in inputs:  # downloaded copies (Supabase mode): the bucket keeps the inputs
                files.release(key)
        try:  # with the heartbeat still on: uploading a long video must not look like a dead worker
            if files.remote is not None and not reporter.stopped.is_set():
                await _share_state(files, job_id, state)
            if files.remote is not None and not reporter.stopped.is_set() and (
                    failure := await _publish(db, files, job_id, started, languages)):
                status, code, message = "failed", NOT_STORED, failure
        finally:
            beating.cancel()
        deferrals = int(options.get("deferrals", 0))
        if status == "failed" and reporter.come_back and deferrals < MAX_DEFERRALS:
            # A vendor asked us to come back later than a thread should sleep: the queue waits instead.
            async with db.session() as s, s.begin():
                await s.execute(update(Job).where(Job.id == job_id, Job.status == "running").values(
                    status="queued", options={**options, "deferrals": deferrals + 1}))
                await s.execute(update(LanguageTask).where(LanguageTask.job_id == job_id,
                                                           LanguageTask.status == "failed")
                                .values(status="queued", error_code=None, error_message=None))
                s.add(JobEvent(job_id=job_id, kind="deferred", data={"delay": reporter.come_back},
                               message=f"a vendor asked to wait {reporter.come_back:.0f} s"))
            queue.run_job.schedule((job_id,), delay=reporter.come_back)
            return
        async with db.session() as s, s.begin():
            ended = await s.execute(update(Job).where(Job.id == job_id, Job.status == "running").values(
                status=status, error_code=code, error_message=message, finished_at=utcnow(),
                progress=1.0 if status == "done" else Job.progress))
            if not ended.rowcount:  # type: ignore[attr-defined]  # cancelled or deleted while it ran
                if (await s.execute(select(Job.status).where(Job.id == job_id))).scalar() == "deleted":
                    await _delete_files(files, job_id)  # what it wrote (and published) since
                return
            if status == "failed" and code not in ("language_failed", "awaiting_translation", NOT_STORED):
                await s.execute(update(LanguageTask).where(LanguageTask.job_id == job_id,
                                                           LanguageTask.status != "done")
                                .values(status="failed", error_code=code, error_message=message))
            s.add(JobEvent(job_id=job_id, kind="job_" + status, message=message or "done",
                           data={"code": code} if code else {}))
    finally:
        await db.close()


async def _inputs(s: AsyncSession, job: Job) -> list[tuple[str, str | None]]:
    """A job's input keys, each with the SHA-256 recorded when the job was made (if one was)."""
    found: list[tuple[str, str | None]] = [(job.source_path, job.source_sha256)]
    if job.background_path:
        upload_id = dict(job.options.get("uploads") or {}).get("background")
        upload = await s.get(Upload, upload_id) if isinstance(upload_id, str) else None
        found.append((job.background_path, upload.sha256 if upload is not None else None))
    return found


def _stage_inputs(files: JobFiles, inputs: list[tuple[str, str | None]], max_bytes: int) -> None:
    """Download a job's inputs from the bucket into the job's folders (staging), each checked against
    the checksum recorded when the job was made: a file changed since is refused, never dubbed."""
    for key, sha256 in inputs:
        try:
            files.fetch(key, sha256=sha256, max_bytes=max_bytes)
        except BadInput as err:
            if "expected_sha256" not in err.details:
                raise
            raise BadInput(f"The stored input {key.rsplit('/', 1)[-1]!r} is not the file this job was made from "
                           "(its SHA-256 differs); it was not processed.",
                           hint="Upload the file again and make a new job.", details=err.details) from None
        except NotFound:
            raise NotFound(f"The job's input {key.rsplit('/', 1)[-1]!r} is no longer in the storage bucket.",
                           hint="Upload the file again and make a new job.") from None


async def _publish(db: Database, files: JobFiles, job_id: str, since: datetime,
                   languages: list[str]) -> str | None:
    """Upload a job's deliverables to the bucket under their keys: those made by this run, and older
    ones the bucket lacks (an earlier run could not upload them). The languages whose files could not
    be stored fail (every language of this run, for the job's own files: they are remade each run), so
    a retry makes and uploads them again. Returns the job's error message, None when all went up."""
    async with db.session() as s:
        artifacts = (await s.execute(select(Artifact).where(Artifact.job_id == job_id))).scalars().all()
    problems: dict[str | None, str] = {}
    for a in artifacts:
        if not files.local_path(a.path).is_file():
            continue  # made by a run on another machine, which uploaded it
        try:
            await in_daemon_thread(_publish_one, files, a.path, a.bytes, a.created_at >= since)
        except DubError as err:
            log.warning("job %s: %s could not be stored: %s", job_id, a.path, err)
            problems.setdefault(a.language, str(err))
    if not problems:
        return None
    failed = sorted({*languages} if None in problems else {x for x in problems if x is not None})
    message = f"The finished files could not be stored: {next(iter(problems.values()))}"
    async with db.session() as s, s.begin():
        await s.execute(update(LanguageTask).where(LanguageTask.job_id == job_id, LanguageTask.language.in_(failed))
                        .values(status="failed", error_code=StorageError.code, error_message=message))
    return message


async def _share_state(files: JobFiles, job_id: str, keys: list[str]) -> None:
    """The lines and where they went, for the editor on whichever server reads them."""
    try:
        await in_daemon_thread(files.push, keys)
    except DubError as err:  # the dub is made; the editor elsewhere sees the last state until the next run
        log.warning("job %s: the editor's files could not be stored: %s", job_id, err)


def _publish_one(files: JobFiles, key: str, size: int, new: bool) -> None:
    if not new and files.remote is not None:
        try:
            if files.remote.size(key) == size:
                return  # uploaded by an earlier run
        except NotFound:
            pass
    files.publish(key)


async def _delete_files(files: JobFiles, job_id: str) -> None:
    try:
        await asyncio.to_thread(files.delete_prefix, f"jobs/{job_id}")
    except DubError as err:  # the job is deleted either way; say what is left behind
        log.warning("job %s was deleted but its files could not all be removed: %s", job_id, err)


def _come_back_later(err: DubError) -> bool:
    return isinstance(err, VendorError) and not isinstance(err, PermanentVendorError) and bool(err.retry_after)


async def _heartbeat(db: Database, job_id: str, every: float, stopped: threading.Event) -> None:
    """While a job runs, say so, also through stages that report no progress; and every second, look
    whether it was cancelled or deleted meanwhile (then `stopped` is set)."""
    last = time.monotonic()
    while True:
        await asyncio.sleep(STOP_CHECK_SECONDS)
        async with db.session() as s, s.begin():
            status = (await s.execute(select(Job.status).where(Job.id == job_id))).scalar_one_or_none()
            if status != "running":
                stopped.set()
                return
            if time.monotonic() - last >= every:
                await s.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow()))
                last = time.monotonic()


async def requeue(queue: Queue, db: Database, job_ids: set[str] | None = None) -> list[str]:
    """Put 'running' jobs back on the queue: those named (this process is stopping in the middle of
    them) or, by default, those whose heartbeat went stale (their process died). Each job is claimed
    by a conditional update, so when several processes look at once, exactly one requeues it."""
    stale = utcnow() - timedelta(seconds=queue.settings.stale_after)
    q = select(Job.id).where(Job.status == "running")
    q = q.where(Job.id.in_(job_ids)) if job_ids is not None else q.where(Job.heartbeat_at < stale)
    claimed: list[str] = []
    async with db.session() as s:
        candidates = (await s.execute(q)).scalars().all()
    for job_id in candidates:
        async with db.session() as s, s.begin():
            claim = update(Job).where(Job.id == job_id, Job.status == "running")
            if job_ids is None:
                claim = claim.where(Job.heartbeat_at < stale)
            won = await s.execute(claim.values(status="queued", heartbeat_at=utcnow()).returning(Job.id))
            if won.scalar_one_or_none() is not None:
                s.add(JobEvent(job_id=job_id, kind="requeued", message="requeued after its worker stopped"))
                claimed.append(job_id)
    for job_id in claimed:
        queue.enqueue(job_id)
    return claimed
