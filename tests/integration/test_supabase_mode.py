"""Supabase mode against the fake Supabase over loopback: a worker runs a job whose input is only in the
bucket (fetched, checked, dubbed, its deliverables uploaded, its staging copy removed), a changed input is
refused, and the API takes Supabase user JWTs (HS256 and ES256 through the JWKS), refusing bad ones
with the stable error body. Start-up refuses a Supabase mode that lacks a setting, in one plain line."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from nicegui import app
from nicegui.testing import User
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dubstudio import actions, modes
from dubstudio.auth.base import Caller
from dubstudio.auth.users import KnownUsers
from dubstudio.config import Settings
from dubstudio.db.models import Job, JobEvent, LanguageTask
from dubstudio.db.models import User as UserRow
from dubstudio.errors import ConfigError
from dubstudio.runtime import Database, prepare
from dubstudio.services import Services
from dubstudio.storage.active import JobFiles
from dubstudio.storage.local import LocalStorage
from dubstudio.tasks import Queue
from tests.conftest import JFK
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.supabase_server import BUCKET, JWT_SECRET, OTHER_USER_ID, SERVICE_KEY, USER_ID, USERS, FakeSupabase


@pytest.fixture(scope="module")
def server() -> Iterator[FakeSupabase]:
    fake = FakeSupabase()
    with fake.running():
        yield fake


@pytest.fixture
def fake(server: FakeSupabase, monkeypatch: pytest.MonkeyPatch) -> FakeSupabase:
    """The fake as the project, configured through the environment as an operator would."""
    server.reset()
    for name, value in {"AUTH": "supabase", "STORAGE": "supabase", "SUPABASE_URL": server.url,
                        "SUPABASE_KEY": SERVICE_KEY, "SUPABASE_JWT_SECRET": JWT_SECRET,
                        "SUPABASE_BUCKET": BUCKET}.items():
        monkeypatch.setenv(f"DUBSTUDIO_{name}", value)
    return server


# -- the worker ----------------------------------------------------------------------------------------


async def _make_job(settings: Settings, key: str, sha256: str) -> str:
    """A job as the API records it from an upload: the input is a key in the bucket, nothing on disk."""
    db = Database.connect(settings)
    try:
        await KnownUsers().ensure(db.session, Caller(USER_ID, USERS[USER_ID]))
        async with db.session() as s, s.begin():
            job = Job(user_id=USER_ID, status="queued", source_language="en", source_filename=JFK.name,
                      source_path=key, source_sha256=sha256, options={},
                      languages=[LanguageTask(language="es", status="queued", progress=0.0)])
            s.add(job)
        return job.id
    finally:
        await db.close()


async def _load(settings: Settings, job_id: str) -> tuple[Job, list[str]]:
    db = Database.connect(settings)
    try:
        async with db.session() as s:
            job = await s.get(Job, job_id)
            assert job is not None
            await job.awaitable_attrs.artifacts
            await job.awaitable_attrs.languages
            kinds = (await s.execute(select(JobEvent.kind).where(JobEvent.job_id == job_id))).scalars().all()
            return job, list(kinds)
    finally:
        await db.close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_worker_runs_a_job_from_the_bucket_and_puts_its_files_back(fake: FakeSupabase,
                                                                     fake_openai: FakeOpenAI) -> None:
    settings = Settings()
    prepare(settings)
    data = JFK.read_bytes()
    key = f"uploads/{uuid.uuid4().hex}/source.flac"
    fake.put(key, data, "audio/flac")
    job_id = asyncio.run(_make_job(settings, key, sha(data)))
    staged = settings.storage_dir / key
    assert not staged.exists()  # only in the bucket, as on a worker that shares nothing else

    Queue(settings).run_job.call_local(job_id)

    job, _ = asyncio.run(_load(settings, job_id))
    assert job.status == "done", job.error_message
    assert fake.calls["download"] == 1 + 3  # the input, and a look for each file of edits (none yet)
    assert not staged.exists()  # the downloaded copy is gone once the job ends
    kinds = {(a.language, a.kind) for a in job.artifacts}
    assert {("es", "audio"), (None, "manifest"), (None, "captions_srt")} <= kinds
    for a in job.artifacts:  # every deliverable is in the bucket under its key, byte for byte
        stored = fake.get(a.path)
        assert stored is not None, a.path
        assert sha(stored) == a.sha256 and len(stored) == a.bytes, a.path
    assert fake.objects[(BUCKET, f"jobs/{job_id}/es/dub.wav")].content_type == "audio/wav"
    assert (settings.storage_dir / "jobs" / job_id / "manifest.json").exists()  # the work folder stays as a cache

    # Run again (an edit, a retry): only files made by this run go up again.
    uploads = fake.calls["upload"]
    asyncio.run(_requeue(settings, job_id))
    Queue(settings).run_job.call_local(job_id)
    job, _ = asyncio.run(_load(settings, job_id))
    assert job.status == "done", job.error_message
    state = 3  # the editor's files go up after every run: transcript.json, es/translation.json, es/result.json
    assert fake.calls["upload"] - uploads == len(job.artifacts) + state


def test_the_editor_works_from_another_machine(fake: FakeSupabase, fake_openai: FakeOpenAI) -> None:
    """The server that lists and edits lines shares only the bucket and the database with the worker."""
    settings = Settings()
    prepare(settings)
    data = JFK.read_bytes()
    key = f"uploads/{uuid.uuid4().hex}/source.flac"
    fake.put(key, data, "audio/flac")
    job_id = asyncio.run(_make_job(settings, key, sha(data)))
    work = settings.storage_dir / "jobs" / job_id
    Queue(settings).run_job.call_local(job_id)
    shutil.rmtree(work)  # the server is another machine: nothing of the worker's folder is there
    files = JobFiles(LocalStorage(settings.storage_dir), modes.remote_storage(settings))

    async def edit() -> tuple[list[dict[str, Any]], str]:
        db = Database.connect(settings)
        try:
            async with db.session() as s:
                rows = await actions.language_lines(settings, s, USER_ID, job_id, "es", files)
                await actions.edit_lines(settings, s, USER_ID, job_id, "es", {rows[0]["id"]: "Una línea escrita."},
                                         files=files)
            return rows, rows[0]["id"]
        finally:
            await db.close()

    rows, line = asyncio.run(edit())
    assert rows and all(row["translation"] and "dub_start" in row for row in rows)
    assert json.loads(fake.get(f"jobs/{job_id}/es/edits.json") or b"{}") == {line: "Una línea escrita."}
    shutil.rmtree(work)  # and the worker that makes it again is yet another machine

    Queue(settings).run_job.call_local(job_id)
    job, _ = asyncio.run(_load(settings, job_id))
    assert job.status == "done", job.error_message
    result = json.loads(fake.get(f"jobs/{job_id}/es/result.json") or b"{}")
    assert next(r for r in result["segments"] if r["id"] == line)["translation"] == "Una línea escrita."


async def _requeue(settings: Settings, job_id: str) -> None:
    db = Database.connect(settings)
    try:
        async with db.session() as s, s.begin():
            job = await s.get(Job, job_id)
            assert job is not None
            job.status = "queued"
            for t in await job.awaitable_attrs.languages:
                t.status = "queued"
    finally:
        await db.close()


def test_an_input_changed_in_the_bucket_is_refused_not_dubbed(fake: FakeSupabase, fake_openai: FakeOpenAI) -> None:
    settings = Settings()
    prepare(settings)
    data = JFK.read_bytes()
    key = f"jobs/{uuid.uuid4().hex}/input/source.flac"
    fake.put(key, data[:-1000] + bytes(1000))  # the same size, other bytes
    job_id = asyncio.run(_make_job(settings, key, sha(data)))
    translations = fake_openai.calls

    Queue(settings).run_job.call_local(job_id)

    job, events = asyncio.run(_load(settings, job_id))
    assert job.status == "failed" and job.error_code == "bad_input"
    assert "is not the file this job was made from" in (job.error_message or "")
    assert "stage_started" not in events and fake_openai.calls == translations
    assert {t.status for t in job.languages} == {"failed"}
    assert not (settings.storage_dir / key).exists()  # the refused download left nothing behind
    assert fake.keys() == [key] and not job.artifacts


def test_an_input_gone_from_the_bucket_fails_the_job_plainly(fake: FakeSupabase) -> None:
    settings = Settings()
    prepare(settings)
    job_id = asyncio.run(_make_job(settings, "uploads/0123abcd/source.flac", sha(b"x")))
    Queue(settings).run_job.call_local(job_id)
    job, _ = asyncio.run(_load(settings, job_id))
    assert job.status == "failed" and job.error_code == "not_found"
    assert "no longer in the storage bucket" in (job.error_message or "")


# -- start-up ------------------------------------------------------------------------------------------


def test_a_supabase_mode_without_its_settings_stops_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUBSTUDIO_AUTH", "supabase")
    with pytest.raises(ConfigError, match="DUBSTUDIO_SUPABASE_URL") as info:
        modes.check(Settings())
    assert info.value.hint
    monkeypatch.setenv("DUBSTUDIO_SUPABASE_URL", "abc.supabase.co")
    with pytest.raises(ConfigError, match="not a web address"):
        modes.check(Settings())
    monkeypatch.setenv("DUBSTUDIO_SUPABASE_URL", "https://abc.supabase.co")
    modes.check(Settings())  # no secret: the project's JWKS, found from the URL
    monkeypatch.setenv("DUBSTUDIO_STORAGE", "supabase")
    with pytest.raises(ConfigError, match="DUBSTUDIO_SUPABASE_KEY"):
        modes.check(Settings())


def test_the_worker_says_what_is_missing_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(DUBSTUDIO_STORAGE="supabase", DUBSTUDIO_SUPABASE_URL="https://abc.supabase.co")
    out = subprocess.run([sys.executable, "-m", "dubstudio", "worker"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "error: DUBSTUDIO_STORAGE=supabase needs DUBSTUDIO_SUPABASE_KEY. Set it to the project's service-role "
        "(or secret) key; it stays on the server."]


# -- the API -------------------------------------------------------------------------------------------


@pytest.fixture
def api(fake: FakeSupabase, user: User) -> User:
    """The app as `serve` builds it, in Supabase mode (the environment is set before it starts)."""
    return user


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def user_rows(user_id: str) -> int:
    svc: Services = app.state.services
    async with svc.db.session() as s:
        return int((await s.execute(select(func.count()).select_from(UserRow).where(UserRow.id == user_id)))
                   .scalar_one())


async def test_supabase_tokens_are_accepted_and_the_user_made_once(api: User, fake: FakeSupabase) -> None:
    client = api.http_client
    hs = fake.token(USER_ID, alg="HS256")
    first = await client.get("/api/v1/jobs", headers=bearer(hs))
    assert first.status_code == 200, first.text
    assert await user_rows(USER_ID) == 1
    again = await client.get("/api/v1/jobs", headers=bearer(hs))
    assert again.status_code == 200 and await user_rows(USER_ID) == 1

    # another user's first requests, at once: one row, no error
    es = fake.token(OTHER_USER_ID)  # ES256, checked with the key set the app fetches from the project
    answers = await asyncio.gather(*(client.get("/api/v1/jobs", headers=bearer(es)) for _ in range(6)))
    assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers]
    assert await user_rows(OTHER_USER_ID) == 1
    assert fake.calls["jwks"] == 1
    svc: Services = app.state.services
    async with svc.db.session() as s:
        row = await s.get(UserRow, OTHER_USER_ID)
        assert row is not None and row.email == USERS[OTHER_USER_ID]


async def test_bad_tokens_get_401_with_the_stable_body(api: User, fake: FakeSupabase) -> None:
    client = api.http_client
    cases = {
        "expired": (fake.token(alg="HS256", expired=True), "The sign-in token has expired."),
        "wrong signature": (fake.token(alg="HS256", secret="another-secret-of-at-least-32-characters"),
                            "The sign-in token is not valid."),
        "unpublished key": (fake.token(foreign_key=True), "The sign-in token is not valid."),
        "wrong audience": (fake.token(alg="HS256", audience="anon"), "The sign-in token is not valid."),
        "wrong issuer": (fake.token(issuer="https://elsewhere.supabase.co/auth/v1"), "The sign-in token is not valid."),
        "malformed": ("not-a-jwt", "The sign-in token is not valid."),
        "none": ("", "This route needs a sign-in token."),
    }
    for case, (token, message) in cases.items():
        r = await client.get("/api/v1/jobs", headers=bearer(token) if token else {})
        assert r.status_code == 401, case
        assert r.headers["www-authenticate"] == "Bearer", case
        body = r.json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, case
        assert body["error"]["code"] == "unauthorized", case
        assert body["error"]["message"].startswith(message), (case, body)
        assert token not in r.text or not token, case  # the token is never echoed
    assert await user_rows(USER_ID) == 0
    health = await client.get("/api/v1/health")  # still open
    assert health.status_code == 200


async def test_first_sight_is_race_safe_and_then_costs_no_query(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings()
    await asyncio.to_thread(prepare, settings)
    db = Database.connect(settings)
    try:
        # Four processes (four caches) see a new user at once: each looks, finds nobody, inserts; three
        # lose (IntegrityError) and find the winner's row. Then a user who signed up again with the
        # email an older account holds: recorded without it.
        looked = AsyncSession.get

        async def slow_get(self: AsyncSession, *args: Any, **kwargs: Any) -> Any:
            found = await looked(self, *args, **kwargs)
            await asyncio.sleep(0.2)  # every request has looked before any inserts
            return found

        lost = 0
        rollback = AsyncSession.rollback

        async def counted_rollback(self: AsyncSession) -> None:
            nonlocal lost
            lost += 1
            await rollback(self)

        caller = Caller(USER_ID, USERS[USER_ID])
        with monkeypatch.context() as m:
            m.setattr(AsyncSession, "get", slow_get)
            m.setattr(AsyncSession, "rollback", counted_rollback)
            processes = [Database.connect(settings) for _ in range(4)]  # each its own engine and pool
            try:
                await asyncio.gather(*(KnownUsers().ensure(p.session, caller) for p in processes))
            finally:
                for p in processes:
                    await p.close()
        assert lost == 3
        again = Caller(str(uuid.uuid4()), USERS[USER_ID])
        users = KnownUsers()
        await users.ensure(db.session, again)
        async with db.session() as s:
            assert (await s.get(UserRow, USER_ID)) is not None
            row = await s.get(UserRow, again.user_id)
            assert row is not None and row.email is None

        def no_session() -> None:
            raise AssertionError("a query for a user already seen")

        await users.ensure(no_session, again)  # type: ignore[arg-type]
    finally:
        await db.close()
