"""A job goes through the real queue to a separate `dubstudio worker` process: on the embedded
defaults (SQLite records, SQLite queue), and on the scale-out pair (PostgreSQL records, Redis queue)
where those servers answer on this machine."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dubstudio import actions
from dubstudio.config import Settings
from dubstudio.runtime import Database, prepare
from dubstudio.storage.local import LocalStorage
from dubstudio.tasks import Queue
from tests.conftest import JFK
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.slow
PG = "postgresql://postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379/15"


def _pg_database() -> Iterator[str]:
    import psycopg

    name = f"dubstudio_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(f"{PG}/test", autocommit=True, connect_timeout=3) as c:
            c.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432: {exc}")
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(f"{PG}/test", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _redis() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=3).flushdb()
    except redis.RedisError as exc:
        pytest.skip(f"Redis not reachable at 127.0.0.1:6379: {exc}")
    return REDIS


@pytest.fixture(params=["sqlite", "postgres+redis"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    if request.param == "sqlite":
        yield request.param
        return
    queue_url = _redis()
    for db_url in _pg_database():
        monkeypatch.setenv("DUBSTUDIO_DATABASE_URL", db_url)
        monkeypatch.setenv("DUBSTUDIO_QUEUE_URL", queue_url)
        yield request.param


async def _create(settings: Settings, storage: LocalStorage) -> str:
    db = Database.connect(settings)
    try:
        async with db.session() as s:
            with JFK.open("rb") as f:
                job = await actions.create_job(settings, s, storage, "local", JFK.name,
                                               iter(lambda: f.read(1 << 16), b""), "en", "es")
        return job.id
    finally:
        await db.close()


async def _status(settings: Settings, job_id: str) -> tuple[str, str | None]:
    db = Database.connect(settings)
    try:
        async with db.session() as s:
            job = await actions.get_job(s, "local", job_id)
            return job.status, job.error_message
    finally:
        await db.close()


def test_a_worker_process_runs_a_queued_job(backend: str, fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    settings = Settings()
    job_id = asyncio.run(_create(settings, prepare(settings)))
    Queue(settings).enqueue(job_id)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    worker = subprocess.Popen([sys.executable, "-m", "dubstudio", "worker"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        status, error = "queued", None
        while status not in ("done", "failed") and time.monotonic() < deadline:
            time.sleep(0.5)
            status, error = asyncio.run(_status(settings, job_id))
        assert status == "done", error
        assert (settings.storage_dir / "jobs" / job_id / "es" / "dub.wav").exists()
    finally:
        worker.terminate()
        worker.wait(10)
