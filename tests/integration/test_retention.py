"""Retention: `dubstudio purge` deletes finished jobs older than the period (the setting, the settings
page's saved value, or --older-than), with their files; the server does it when it starts."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from nicegui.testing import User
from sqlalchemy import update

from dubstudio import actions, cli
from dubstudio.config import Settings, write_saved
from dubstudio.db.models import Job, Upload, new_id, utcnow
from dubstudio.retention import parse_age
from dubstudio.runtime import Database, prepare
from dubstudio.storage.signed import upload_key
from tests.conftest import JFK


async def _make(status: str, hours_ago: float) -> str:
    """A job recorded (its upload stored, never run) and then marked `status`, finished `hours_ago`."""
    settings = Settings()
    storage = await asyncio.to_thread(prepare, settings)
    db = Database.connect(settings)
    try:
        async with db.session() as s:
            job = await actions.create_job(settings, s, storage, "local", "jfk.flac", [JFK.read_bytes()], "en", "es",
                                           {"translator": "manual"})
            await s.execute(update(Job).where(Job.id == job.id).values(
                status=status, finished_at=utcnow() - timedelta(hours=hours_ago)))
            await s.commit()
            return job.id
    finally:
        await db.close()


async def _status(job_id: str) -> str:
    db = Database.connect(Settings())
    try:
        async with db.session() as s:
            return (await actions.get_job(s, "local", job_id)).status
    finally:
        await db.close()


def make(status: str, hours_ago: float) -> str:
    return asyncio.run(_make(status, hours_ago))


def status(job_id: str) -> str:
    return asyncio.run(_status(job_id))


def test_ages_in_words() -> None:
    assert parse_age("48h") == timedelta(hours=48) and parse_age("7d") == timedelta(days=7)
    assert parse_age("90m") == timedelta(minutes=90) and parse_age("2") == timedelta(hours=2)
    with pytest.raises(Exception, match="not an age"):
        parse_age("two days")


def test_purge_deletes_only_old_finished_jobs(isolated_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old_done, old_failed, old_cancelled = make("done", 50), make("failed", 50), make("cancelled", 50)
    recent, waiting = make("done", 1), make("awaiting_input", 50)
    jobs = isolated_env / "storage" / "jobs"

    assert cli.main(["purge"]) == 0  # retention is off by default: nothing happens
    assert "Retention is off" in capsys.readouterr().err

    assert cli.main(["purge", "--older-than", "48h", "--dry-run"]) == 0
    out = capsys.readouterr()
    assert sorted(line.split()[2] for line in out.out.splitlines()) == sorted([old_done, old_failed, old_cancelled])
    assert all(line.startswith("would delete") for line in out.out.splitlines())
    assert "3 finished job(s) older than 48 h would be deleted." in out.err
    assert status(old_done) == "done" and (jobs / old_done).is_dir()

    write_saved(isolated_env, {"retention_hours": 48})  # as the settings page saves it
    assert cli.main(["purge"]) == 0
    assert "3 finished job(s) older than 48 h were deleted." in capsys.readouterr().err
    for job_id in (old_done, old_failed, old_cancelled):
        assert status(job_id) == "deleted" and not (jobs / job_id).exists()
    for job_id in (recent, waiting):
        assert status(job_id) != "deleted" and (jobs / job_id).is_dir()

    assert cli.main(["purge", "--older-than", "soon"]) == 2
    assert "not an age" in capsys.readouterr().err


async def _upload(status: str, hours_ago: float) -> str:
    """An upload record `hours_ago` old, its file in storage."""
    settings = Settings()
    storage = await asyncio.to_thread(prepare, settings)
    upload_id = new_id()
    key = upload_key(upload_id, "source", "talk.flac")
    (storage.root / key).parent.mkdir(parents=True)
    (storage.root / key).write_bytes(JFK.read_bytes())
    db = Database.connect(settings)
    try:
        async with db.session() as s, s.begin():
            s.add(Upload(id=upload_id, user_id="local", kind="source", filename="talk.flac", size=1, path=key,
                         status=status, created_at=utcnow() - timedelta(hours=hours_ago)))
    finally:
        await db.close()
    return upload_id


async def _upload_status(upload_id: str) -> str:
    db = Database.connect(Settings())
    try:
        async with db.session() as s:
            upload = await s.get(Upload, upload_id)
            assert upload is not None
            return upload.status
    finally:
        await db.close()


def test_purge_deletes_uploads_no_job_took(isolated_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sent, never_sent, used = (asyncio.run(_upload(status, 50)) for status in ("uploaded", "pending", "consumed"))
    recent = asyncio.run(_upload("uploaded", 1))
    uploads = isolated_env / "storage" / "uploads"

    assert cli.main(["purge", "--older-than", "48h", "--dry-run"]) == 0
    out = capsys.readouterr()
    assert sorted(line.split()[2] for line in out.out.splitlines()) == sorted([sent, never_sent])
    assert "2 unused upload(s) older than 48 h would be deleted." in out.err
    assert (uploads / sent).is_dir()

    assert cli.main(["purge", "--older-than", "48h"]) == 0
    assert "2 unused upload(s) older than 48 h were deleted." in capsys.readouterr().err
    for upload_id in (sent, never_sent):
        assert asyncio.run(_upload_status(upload_id)) == "deleted" and not (uploads / upload_id).exists()
    for upload_id, status in ((used, "consumed"), (recent, "uploaded")):
        assert asyncio.run(_upload_status(upload_id)) == status and (uploads / upload_id).is_dir()


@pytest.fixture
def old_job(isolated_env: Path) -> str:
    """Made before the app starts (the user fixture starts it), with a 24-hour retention saved."""
    write_saved(isolated_env, {"retention_hours": 24})
    return make("done", 30)


async def test_the_server_applies_the_retention_period_when_it_starts(old_job: str, isolated_env: Path,
                                                                      user: User) -> None:
    await user.open("/")
    await user.should_not_see(marker=f"job-{old_job}", retries=50)
    for _ in range(50):
        if await _status(old_job) == "deleted":
            break
        await asyncio.sleep(0.1)
    assert await _status(old_job) == "deleted"
    assert not (isolated_env / "storage" / "jobs" / old_job).exists()
