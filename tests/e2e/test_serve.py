"""A running `dubstudio serve --headless`: the API end to end, and a clean stop on Ctrl-C."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import JFK
from tests.fakes.openai_server import FakeOpenAI
from tests.support.server import Server, server_env, token, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def env(tmp_path: Path, fake_openai: FakeOpenAI) -> dict[str, str]:
    return server_env()  # the isolated data folder and the fake translator come from the fixtures


def submit(server: Server, auth: dict[str, str]) -> str:
    with JFK.open("rb") as f:
        r = httpx.post(f"{server.url}/api/v1/jobs", headers=auth, timeout=30,
                       files={"file": ("jfk-11s.flac", f, "audio/flac")}, data={"target_languages": "es"})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def integrity(db: Path) -> str:
    with sqlite3.connect(db) as c:
        return str(c.execute("PRAGMA integrity_check").fetchone()[0])


def test_a_job_through_the_api(server: Server, env: dict[str, str]) -> None:
    auth = {"Authorization": f"Bearer {token(env)}"}
    assert httpx.get(f"{server.url}/api/v1/jobs", timeout=5).status_code == 401
    job_id = submit(server, auth)
    job = wait_for(server, auth, job_id, "done")
    assert job["status"] == "done", job
    assert job["languages"]["es"]["status"] == "done" and job["progress"] == 1.0
    kinds = {(a["language"], a["kind"]) for a in job["artifacts"]}
    assert {("es", "audio_wav"), ("es", "audio"), ("es", "captions_srt"), (None, "manifest")} <= kinds
    listed = httpx.get(f"{server.url}/api/v1/jobs", headers=auth, timeout=5).json()["jobs"]
    assert [j["id"] for j in listed] == [job_id]
    events = httpx.get(f"{server.url}/api/v1/jobs/{job_id}/events", headers=auth, timeout=5).json()["events"]
    done = [e["data"]["stage"] for e in events if e["kind"] == "stage_done"]
    assert done == ["ingest", "transcribe", "translate", "synthesize", "fit", "mix", "captions", "deliver"]
    missing = httpx.get(f"{server.url}/api/v1/jobs/nope", headers=auth, timeout=5)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_bad_uploads_get_clear_errors(server: Server, env: dict[str, str]) -> None:
    auth = {"Authorization": f"Bearer {token(env)}"}
    r = httpx.post(f"{server.url}/api/v1/jobs", headers=auth, files={"file": ("a.mp3", b"not audio", "audio/mpeg")},
                   data={"target_languages": "es"}, timeout=30)
    assert r.status_code == 422 and r.json()["error"]["code"] == "not_media"
    r = httpx.post(f"{server.url}/api/v1/jobs", headers=auth, files={"file": ("a.wav", b"", "audio/wav")},
                   data={"target_languages": "es"}, timeout=30)
    assert r.status_code == 422 and r.json()["error"]["code"] == "empty_file"
    with JFK.open("rb") as f:
        r = httpx.post(f"{server.url}/api/v1/jobs", headers=auth, files={"file": ("jfk.flac", f, "audio/flac")},
                       data={"target_languages": "klingon"}, timeout=30)
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_language"
    with JFK.open("rb") as f:
        r = httpx.post(f"{server.url}/api/v1/jobs", headers=auth, files={"file": ("jfk.flac", f, "audio/flac")},
                       data={"target_languages": "es", "tts": "robot"}, timeout=30)
    assert r.status_code == 422 and "robot" in r.json()["error"]["message"]
    r = httpx.post(f"{server.url}/api/v1/jobs", headers=auth, data={"target_languages": "es"}, timeout=30)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    assert httpx.get(f"{server.url}/api/v1/jobs", headers=auth, timeout=5).json()["jobs"] == []
    data = Path(env["DUBSTUDIO_DATA_DIR"])
    assert not list((data / "storage" / "jobs").glob("*")) if (data / "storage" / "jobs").exists() else True


def test_ctrl_c_stops_within_5_s_and_the_job_resumes(env: dict[str, str]) -> None:
    data = Path(env["DUBSTUDIO_DATA_DIR"])
    auth = {"Authorization": f"Bearer {token(env)}"}
    first = Server(env).start()
    try:
        job_id = submit(first, auth)
        deadline = time.monotonic() + 60
        while httpx.get(f"{first.url}/api/v1/jobs/{job_id}", headers=auth, timeout=5).json()["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert first.interrupt() < 5.0
    finally:
        first.stop()
    assert integrity(data / "dubstudio.db") == "ok"
    assert integrity(data / "queue.db") == "ok"
    second = Server(env).start()
    try:
        job = wait_for(second, auth, job_id, "done")
        assert job["status"] == "done", job
        assert second.interrupt() < 5.0
    finally:
        second.stop()
