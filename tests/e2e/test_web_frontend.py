"""A web frontend's whole flow against `dubstudio serve --headless`, with httpx as the frontend: upload a
voice and a background track to signed URLs, create a job in two languages, poll it to done, download
each deliverable once (a second use is refused), delete it now (its files are gone, it says deleted).
Once in local mode (the local token, files in the data folder, URLs signed by the app; the studio's
server) and once in Supabase mode against the loopback stand-in (a user's ES256 JWT checked through the
JWKS, files in the bucket, uploads straight to it, downloads redirected to it; the API alone in two
processes, with the queue's consumer in their parent, as a server for web frontends runs)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from tests.conftest import JFK
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.supabase_server import BUCKET, SERVICE_KEY, USER_ID, FakeSupabase
from tests.support.server import Server, server_env, token, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def supabase() -> Iterator[FakeSupabase]:
    fake = FakeSupabase()
    with fake.running():
        yield fake


@pytest.fixture(params=["local", "supabase"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(mode: str, env: dict[str, str]) -> Iterator[Server]:
    s = Server(env, *(["--api-only", "--processes", "2"] if mode == "supabase" else [])).start()
    yield s
    s.stop()


@pytest.fixture
def env(mode: str, tmp_path: Path, fake_openai: FakeOpenAI, supabase: FakeSupabase) -> dict[str, str]:
    env = server_env()
    if mode == "supabase":
        supabase.reset()
        env.update(DUBSTUDIO_AUTH="supabase", DUBSTUDIO_STORAGE="supabase", DUBSTUDIO_SUPABASE_URL=supabase.url,
                   DUBSTUDIO_SUPABASE_KEY=SERVICE_KEY, DUBSTUDIO_SUPABASE_BUCKET=BUCKET)
    return env


def background_track(path: Path) -> Path:
    t = np.arange(12 * 22050) / 22050
    chord = 0.05 * (np.sin(2 * np.pi * 220 * t) + np.sin(2 * np.pi * 277 * t))
    sf.write(path, np.stack([chord, chord], axis=1).astype(np.float32), 22050)
    return path


def upload(client: httpx.Client, files: dict[str, Path]) -> dict[str, str]:
    """Steps 1 and 2 of the direct-upload flow; the upload ids by kind."""
    r = client.post("/api/v1/uploads", json={"files": [
        {"kind": kind, "filename": p.name, "content_type": "audio/flac", "size": p.stat().st_size}
        for kind, p in files.items()]})
    assert r.status_code == 201, r.text
    ids = {}
    for target in r.json()["uploads"]:
        path = files[target["kind"]]
        with path.open("rb") as f:  # streamed, as a browser's fetch of a File would
            sent = httpx.request(target["method"], target["url"], headers=target["headers"], content=f, timeout=60)
        assert sent.status_code < 300, sent.text
        ids[target["kind"]] = target["id"]
    return ids


def test_the_web_frontend_flow(mode: str, server: Server, env: dict[str, str], supabase: FakeSupabase,
                               tmp_path: Path) -> None:
    bearer = supabase.token(USER_ID) if mode == "supabase" else token(env)
    headers = {"Authorization": f"Bearer {bearer}"}
    client = httpx.Client(base_url=server.url, headers=headers, timeout=30)
    ids = upload(client, {"voice": JFK, "background": background_track(tmp_path / "music.wav")})

    r = client.post("/api/v1/jobs", json={"uploads": ids, "source_language": "en", "target_languages": ["es", "fr"]})
    assert r.status_code == 201, r.text
    job = wait_for(server, headers, r.json()["id"], "done", timeout=240)
    assert job["status"] == "done", job
    assert {lang: t["status"] for lang, t in job["languages"].items()} == {"es": "done", "fr": "done"}

    data = Path(env["DUBSTUDIO_DATA_DIR"]) / "storage"

    def stored(prefix: str) -> list[str]:
        if mode == "supabase":
            return [k for k in supabase.keys(BUCKET) if k.startswith(prefix + "/")]
        return [str(p) for p in data.glob(f"{prefix}/**/*") if p.is_file()]

    for artifact in job["artifacts"]:
        r = client.post(f"/api/v1/jobs/{job['id']}/downloads",
                        json={"language": artifact["language"], "kind": artifact["kind"]})
        assert r.status_code == 201, r.text
        link = r.json()
        got = httpx.get(link["url"], timeout=30, follow_redirects=True)  # no token: the signature is the permission
        assert got.status_code == 200, got.text
        assert hashlib.sha256(got.content).hexdigest() == artifact["sha256"] == link["sha256"]
        again = httpx.get(link["url"], timeout=30, follow_redirects=True)
        assert again.status_code == 401 and again.json()["error"]["code"] == "unauthorized"
        assert "already used" in again.json()["error"]["message"]

    assert stored(f"jobs/{job['id']}") and all(stored(f"uploads/{i}") for i in ids.values())
    r = client.delete(f"/api/v1/jobs/{job['id']}")
    assert r.status_code == 200 and r.json()["status"] == "deleted" and r.json()["artifacts"] == []
    assert not stored(f"jobs/{job['id']}") and not any(stored(f"uploads/{i}") for i in ids.values())
    assert not (data / "jobs" / job["id"]).exists()  # nor any staging or working copy
    assert client.get(f"/api/v1/jobs/{job['id']}").json()["status"] == "deleted"
    assert job["id"] not in [j["id"] for j in client.get("/api/v1/jobs").json()["jobs"]]
    gone = client.post(f"/api/v1/jobs/{job['id']}/downloads", json={"language": "es", "kind": "audio"})
    assert gone.status_code == 404
