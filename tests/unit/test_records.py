"""The records database: migrations, models and engine settings, on SQLite and on PostgreSQL.

PostgreSQL tests use postgresql+asyncpg://postgres@127.0.0.1:5432/test (trust auth), each in a
schema of its own that is dropped afterwards; they are skipped, with the reason, when no server
answers there.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import delete, func, inspect, pool, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from dubstudio.db.migrate import current_revision, head_revision, upgrade
from dubstudio.db.models import Artifact, Base, Job, JobEvent, LanguageTask, Segment, Upload, User
from dubstudio.db.session import make_engine, make_sessionmaker

pytestmark = pytest.mark.asyncio

PG_HOST = "127.0.0.1:5432"
PG_URL = f"postgresql+asyncpg://postgres@{PG_HOST}/test"
TABLES = {"users", "uploads", "jobs", "language_tasks", "segments", "artifacts", "job_events", "used_nonces"}
HEAD = "0002_downloads"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Backend:
    name: str
    url: str
    connect_args: dict[str, Any] = field(default_factory=dict)

    def engine(self) -> AsyncEngine:
        return make_engine(self.url, connect_args=self.connect_args)

    async def upgrade(self) -> None:
        # upgrade() runs its own event loop: from async code it goes to a thread.
        await asyncio.to_thread(upgrade, self.url, connect_args=self.connect_args)

    async def revision(self) -> str | None:
        return await asyncio.to_thread(current_revision, self.url, connect_args=self.connect_args)


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        # A folder that does not exist yet: make_engine creates it.
        yield Backend("sqlite", f"sqlite+aiosqlite:///{tmp_path / 'data' / 'dubstudio.db'}")
        return
    schema = f"test_{uuid.uuid4().hex}"
    admin = make_engine(PG_URL, connect_args={"timeout": 5}, isolation_level="AUTOCOMMIT",
                        poolclass=pool.NullPool)
    try:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    except (OSError, DBAPIError) as exc:
        await admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {PG_HOST}: {exc}")
    try:
        yield Backend("postgresql", PG_URL, {"server_settings": {"search_path": schema}})
    finally:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.dispose()


@pytest_asyncio.fixture
async def engine(backend: Backend) -> AsyncIterator[AsyncEngine]:
    await backend.upgrade()
    engine = backend.engine()
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return make_sessionmaker(engine)


def _table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _job(user: User, **kw: Any) -> Job:
    values: dict[str, Any] = dict(
        user=user, source_language="en", source_filename="talk.mp4", source_path="sources/ab/abcd.mp4",
        source_sha256="ab" * 32, options={"voice": "clone", "languages": ["de", "fr"]})
    values.update(kw)
    user_ = values.pop("user")
    return Job(user_id=user_.id, **values)


def _full_job(user: User) -> Job:
    """A job with two languages (added out of order), their segments, artifacts and events."""
    job = _job(user, duration=12.5, background_path="uploads/bg.wav",
               heartbeat_at=datetime(2026, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))))
    job.languages = [
        LanguageTask(language="fr", segments=[
            Segment(idx=1, segment_key="seg-0002", speaker="S2", source_start=4.0, source_end=7.5,
                    text="How are you?", translation="Comment allez-vous ?"),
            Segment(idx=0, segment_key="seg-0001", speaker="S1", source_start=0.5, source_end=3.0,
                    text="Hello.", translation="Bonjour.", dub_start=0.5, dub_end=3.2, stretch=1.12,
                    overflow=0.2, voice="fr-voice-1"),
        ]),
        LanguageTask(language="de", status="running", stage="translate", progress=0.5, segments=[
            Segment(idx=0, segment_key="seg-0001", source_start=0.5, source_end=3.0, text="Hello."),
        ]),
    ]
    job.artifacts = [
        Artifact(language="fr", kind="audio", path="outputs/j/fr.wav", sha256="cd" * 32, bytes=5_000_000_000),
        Artifact(language=None, kind="manifest", path="outputs/j/manifest.json", sha256="ef" * 32, bytes=512),
    ]
    job.events = [
        JobEvent(kind="stage_started", message="transcribe", data={"stage": "transcribe"}),
        JobEvent(kind="vendor_call", language="fr", vendor="openai", units=321.0, unit="tokens", cost=0.0042,
                 data={"model": "gpt-4o-mini"}),
        JobEvent(kind="stage_done", message="transcribe"),
    ]
    return job


async def _add_user(sessions: async_sessionmaker[AsyncSession], email: str | None = None) -> User:
    async with sessions() as session, session.begin():
        user = User(email=email, name="Ada")
        session.add(user)
    return user


async def _add_job(sessions: async_sessionmaker[AsyncSession], user: User) -> Job:
    async with sessions() as session, session.begin():
        job = _full_job(user)
        session.add(job)
    return job


# --- migrations -------------------------------------------------------------------------------------


async def test_migrations_apply_from_empty_and_again(backend: Backend) -> None:
    engine = backend.engine()
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_table_names) == set()
        assert await backend.revision() is None

        await backend.upgrade()
        assert head_revision() == HEAD
        assert await backend.revision() == HEAD
        async with engine.connect() as conn:
            assert await conn.run_sync(_table_names) == TABLES | {"alembic_version"}

        sessions = make_sessionmaker(engine)
        user = await _add_user(sessions, "ada@example.com")
        await backend.upgrade()  # again: nothing to do, nothing lost
        assert await backend.revision() == HEAD
        async with sessions() as session:
            assert (await session.get(User, user.id)) is not None
    finally:
        await engine.dispose()


async def test_concurrent_upgrades_from_several_processes(backend: Backend) -> None:
    start = time.time() + 2.0  # the children wait for this moment, so they really collide
    code = ("import json, sys, time\n"
            "from dubstudio.db.migrate import upgrade\n"
            "while time.time() < float(sys.argv[3]): time.sleep(0.001)\n"
            "upgrade(sys.argv[1], connect_args=json.loads(sys.argv[2]))\n")
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, backend.url, json.dumps(backend.connect_args), str(start),
        cwd=PROJECT_ROOT, stderr=asyncio.subprocess.PIPE) for _ in range(4)]
    results = [await proc.communicate() for proc in procs]
    for proc, (_, stderr) in zip(procs, results, strict=True):
        assert proc.returncode == 0, stderr.decode()
    assert await backend.revision() == HEAD
    # Two threads of one process as well.
    await asyncio.gather(backend.upgrade(), backend.upgrade())
    assert await backend.revision() == HEAD


async def test_upgrade_retries_after_a_collision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dubstudio.db.migrate as migrate

    real_upgrade = migrate.command.upgrade
    calls: list[str] = []

    def flaky_upgrade(cfg: Any, revision: str) -> None:
        calls.append(revision)
        if len(calls) == 1:  # what a race with another process looks like when it gets through
            raise OperationalError("CREATE TABLE users", {}, Exception("table users already exists"))
        real_upgrade(cfg, revision)

    monkeypatch.setattr(migrate.command, "upgrade", flaky_upgrade)
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    await asyncio.to_thread(upgrade, url)
    assert calls == ["head", "head"]
    assert await asyncio.to_thread(current_revision, url) == HEAD

    def broken_upgrade(cfg: Any, revision: str) -> None:
        raise OperationalError("SELECT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(migrate.command, "upgrade", broken_upgrade)
    with pytest.raises(OperationalError, match="disk I/O error"):  # not a race: no retry
        await asyncio.to_thread(upgrade, url)


async def test_models_match_migration(engine: AsyncEngine) -> None:
    def diff(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_upgrade_refuses_to_run_inside_an_event_loop(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="to_thread"):
        upgrade(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    assert not (tmp_path / "x.db").exists()


# --- records ----------------------------------------------------------------------------------------


async def test_job_round_trip(sessions: async_sessionmaker[AsyncSession]) -> None:
    user = await _add_user(sessions, "ada@example.com")
    job = await _add_job(sessions, user)
    assert len(job.id) == 32 and int(job.id, 16) >= 0

    async with sessions() as session:
        loaded = (await session.execute(
            select(Job).where(Job.id == job.id).options(
                selectinload(Job.languages).selectinload(LanguageTask.segments),
                selectinload(Job.artifacts),
                selectinload(Job.events),
            ))).scalar_one()

        assert loaded.user_id == user.id
        assert loaded.status == "queued" and loaded.progress == 0.0 and loaded.cost_total == 0.0
        assert loaded.stage is None and loaded.error_code is None and loaded.finished_at is None
        assert loaded.options == {"voice": "clone", "languages": ["de", "fr"]}
        assert loaded.duration == 12.5 and loaded.background_path == "uploads/bg.wav"
        for stamp in (loaded.created_at, loaded.updated_at, loaded.heartbeat_at):
            assert stamp is not None and stamp.utcoffset() == timedelta(0)
        assert loaded.heartbeat_at == datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
        assert abs(loaded.created_at - datetime.now(UTC)) < timedelta(minutes=1)

        assert [t.language for t in loaded.languages] == ["de", "fr"]
        de, fr = loaded.languages
        assert (de.status, de.stage, de.progress) == ("running", "translate", 0.5)
        assert (fr.status, fr.stage, fr.progress) == ("queued", None, 0.0)
        assert [s.idx for s in fr.segments] == [0, 1]
        first = fr.segments[0]
        assert (first.segment_key, first.speaker, first.text, first.translation) == (
            "seg-0001", "S1", "Hello.", "Bonjour.")
        assert (first.source_start, first.source_end, first.dub_start, first.dub_end) == (0.5, 3.0, 0.5, 3.2)
        assert (first.stretch, first.overflow, first.voice) == (1.12, 0.2, "fr-voice-1")
        second = fr.segments[1]
        assert (second.dub_start, second.dub_end, second.stretch, second.overflow, second.voice) == (
            None, None, 1.0, 0.0, None)
        assert [s.segment_key for s in de.segments] == ["seg-0001"]
        assert de.segments[0].speaker == "S1" and de.segments[0].translation is None

        assert {(a.language, a.kind, a.bytes) for a in loaded.artifacts} == {
            ("fr", "audio", 5_000_000_000), (None, "manifest", 512)}
        assert [e.kind for e in loaded.events] == ["stage_started", "vendor_call", "stage_done"]
        call = loaded.events[1]
        assert (call.language, call.vendor, call.units, call.unit, call.cost, call.data) == (
            "fr", "openai", 321.0, "tokens", 0.0042, {"model": "gpt-4o-mini"})
        assert loaded.events[2].data == {} and loaded.events[2].cost == 0.0
        assert all(isinstance(e.id, int) for e in loaded.events)

    async with sessions() as session:  # AsyncAttrs: lazy loads without selectinload
        task = await session.get(LanguageTask, fr.id)
        assert task is not None
        assert [s.idx for s in await task.awaitable_attrs.segments] == [0, 1]
        assert (await task.awaitable_attrs.job).id == job.id


async def test_upload_round_trip(sessions: async_sessionmaker[AsyncSession]) -> None:
    user = await _add_user(sessions)
    expires = datetime.now(UTC) + timedelta(hours=1)
    async with sessions() as session, session.begin():
        upload = Upload(user_id=user.id, kind="voice", filename="me.wav", content_type="audio/wav",
                        size=3_000_000_000, path="uploads/x/me.wav", expires_at=expires)
        session.add(upload)
    async with sessions() as session:
        loaded = await session.get(Upload, upload.id)
        assert loaded is not None
        assert (loaded.status, loaded.sha256, loaded.size) == ("pending", None, 3_000_000_000)
        assert loaded.expires_at == expires


async def test_deleting_a_job_cascades(sessions: async_sessionmaker[AsyncSession]) -> None:
    user = await _add_user(sessions)
    orm_loaded, orm_unloaded, core, kept = [await _add_job(sessions, user) for _ in range(4)]
    task_ids = {job.id: [t.id for t in job.languages] for job in (orm_loaded, orm_unloaded, core, kept)}

    async with sessions() as session, session.begin():
        # The ORM deleting what it loaded, the database cascading what it did not, and a core DELETE.
        job = (await session.execute(select(Job).where(Job.id == orm_loaded.id).options(
            selectinload(Job.languages).selectinload(LanguageTask.segments),
            selectinload(Job.artifacts), selectinload(Job.events)))).scalar_one()
        await session.delete(job)
        unloaded = await session.get(Job, orm_unloaded.id)
        assert unloaded is not None
        await session.delete(unloaded)
        await session.execute(delete(Job).where(Job.id == core.id))

    async with sessions() as session:
        async def count(model: Any, column: Any, values: list[str]) -> int:
            query = select(func.count()).select_from(model).where(column.in_(values))
            return (await session.execute(query)).scalar_one()

        for job in (orm_loaded, orm_unloaded, core):
            assert await count(Job, Job.id, [job.id]) == 0
            assert await count(LanguageTask, LanguageTask.job_id, [job.id]) == 0
            assert await count(Segment, Segment.task_id, task_ids[job.id]) == 0
            assert await count(Artifact, Artifact.job_id, [job.id]) == 0
            assert await count(JobEvent, JobEvent.job_id, [job.id]) == 0
        assert await count(LanguageTask, LanguageTask.job_id, [kept.id]) == 2
        assert await count(Segment, Segment.task_id, task_ids[kept.id]) == 3
        assert await count(Artifact, Artifact.job_id, [kept.id]) == 2
        assert await count(JobEvent, JobEvent.job_id, [kept.id]) == 3
        assert await count(User, User.id, [user.id]) == 1


async def test_one_task_per_language_per_job(sessions: async_sessionmaker[AsyncSession]) -> None:
    user = await _add_user(sessions)
    job = await _add_job(sessions, user)
    async with sessions() as session:
        session.add(LanguageTask(job_id=job.id, language="fr"))
        with pytest.raises(IntegrityError):
            await session.flush()
    async with sessions() as session:  # the same language in another job is fine
        other = _job(user)
        session.add(other)
        session.add(LanguageTask(job=other, language="fr"))
        await session.commit()
    async with sessions() as session:
        session.add(Segment(task_id=job.languages[0].id, idx=0, segment_key="seg-x", source_start=0.0,
                            source_end=1.0, text="dup"))
        with pytest.raises(IntegrityError):
            await session.flush()


async def test_unique_email_and_foreign_keys_enforced(sessions: async_sessionmaker[AsyncSession]) -> None:
    await _add_user(sessions, "ada@example.com")
    await _add_user(sessions)
    await _add_user(sessions)  # several users without an email are fine
    with pytest.raises(IntegrityError):
        await _add_user(sessions, "ada@example.com")
    async with sessions() as session:
        session.add(_job(User(id="0" * 32)))  # no such user
        with pytest.raises(IntegrityError):
            await session.flush()


# --- engine settings --------------------------------------------------------------------------------


async def test_sqlite_is_in_wal_mode_with_foreign_keys_on(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "there.db"
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    try:
        assert path.parent.is_dir()
        async with engine.connect() as conn:
            pragmas = {name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar()
                       for name in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout")}
        assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "synchronous": 1, "busy_timeout": 5000}
    finally:
        await engine.dispose()
    await asyncio.to_thread(upgrade, f"sqlite+aiosqlite:///{path}")
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    try:  # the migration switched foreign keys off for itself only
        async with engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
            assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
    finally:
        await engine.dispose()


async def test_job_list_pages_filters_and_keeps_users_apart(engine: AsyncEngine,
                                                            sessions: async_sessionmaker[AsyncSession]) -> None:
    """Through Database.read: inline with the sync driver on SQLite, through run_sync on PostgreSQL."""
    from dubstudio.actions import job_view, list_job_views
    from dubstudio.runtime import Database

    db = Database(engine)
    jobs = functools.partial(db.read, list_job_views)

    ada, bob = await _add_user(sessions, "ada@example.com"), await _add_user(sessions, "bob@example.com")
    start = datetime(2026, 3, 1, tzinfo=UTC)
    async with sessions() as session, session.begin():
        for i in range(7):  # created an hour apart; every third one failed, the last one deleted
            job = _job(ada, created_at=start + timedelta(hours=i), status="deleted" if i == 6 else
                       "failed" if i % 3 == 0 else "done", source_filename=f"clip-{i}.mp4")
            job.languages = [LanguageTask(language="fr", progress=0.25), LanguageTask(language="de")]
            session.add(job)
        session.add(_job(bob, created_at=start + timedelta(hours=3)))

    async with sessions() as session:
        names = [[v["source_filename"] for v in await jobs(ada.id, 2, offset)]
                 for offset in (0, 2, 4, 6)]
        assert names == [["clip-5.mp4", "clip-4.mp4"], ["clip-3.mp4", "clip-2.mp4"],
                         ["clip-1.mp4", "clip-0.mp4"], []]  # newest first, the deleted one left out
        failed = await jobs(ada.id, status="failed")
        assert [v["source_filename"] for v in failed] == ["clip-3.mp4", "clip-0.mp4"]
        deleted = await jobs(ada.id, status="deleted")
        assert [v["source_filename"] for v in deleted] == ["clip-6.mp4"]
        naive_since = datetime(2026, 3, 1, 4)  # read as UTC
        recent = await jobs(ada.id, created_since=naive_since, status="done")
        assert [v["source_filename"] for v in recent] == ["clip-5.mp4", "clip-4.mp4"]
        assert await jobs(ada.id, created_since=start + timedelta(days=1)) == []
        [bobs] = await jobs(bob.id)

        # The list's shape is the job view's (the API documents one schema for both).
        job = (await session.execute(select(Job).where(Job.id == failed[0]["id"])
                                     .options(selectinload(Job.languages)))).scalar_one()
        assert failed[0] == job_view(job)
        assert failed[0]["languages"]["fr"]["progress"] == 0.25 and list(failed[0]["languages"]) == ["de", "fr"]
        assert bobs["id"] not in {v["id"] for page in (failed, deleted, recent) for v in page}
    await db.close()
