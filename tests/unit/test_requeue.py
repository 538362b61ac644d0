"""A job whose worker died is queued again exactly once, however many consumers notice it at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from dubstudio.config import Settings
from dubstudio.db.models import Job, JobEvent, LanguageTask, utcnow
from dubstudio.runtime import Database, prepare
from dubstudio.tasks import Queue, requeue


async def _scenario(settings: Settings) -> tuple[list[list[str]], str, int]:
    queue = Queue(settings)
    dbs = [Database.connect(settings) for _ in range(4)]
    try:
        async with dbs[0].session() as s, s.begin():
            s.add(Job(id="lost", user_id="local", status="running", source_language="en", source_filename="a.wav",
                      source_path="jobs/lost/input/source.wav", source_sha256="0" * 64,
                      heartbeat_at=utcnow() - timedelta(minutes=5), languages=[LanguageTask(language="es")]))
            s.add(Job(id="alive", user_id="local", status="running", source_language="en", source_filename="b.wav",
                      source_path="jobs/alive/input/source.wav", source_sha256="0" * 64, heartbeat_at=utcnow()))
        claims = await asyncio.gather(*(requeue(queue, db) for db in dbs))
        async with dbs[0].session() as s:
            status = (await s.execute(select(Job.status).where(Job.id == "lost"))).scalar_one()
            events = len((await s.execute(select(JobEvent).where(JobEvent.kind == "requeued"))).scalars().all())
        return list(claims), status, events
    finally:
        for db in dbs:
            await db.close()


def test_a_lost_job_is_requeued_exactly_once() -> None:
    settings = Settings()
    prepare(settings)
    claims, status, events = asyncio.run(_scenario(settings))
    assert sorted(claims, key=len) == [[], [], [], ["lost"]]  # one consumer won; the live job was left alone
    assert status == "queued" and events == 1
    assert Queue(settings).huey.pending_count() == 1
