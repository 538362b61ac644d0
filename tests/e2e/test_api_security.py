"""The API's locks, against running servers: every route refuses a missing, expired, forged, foreign-audience
or malformed token; another user's job, upload or file answers 404, never data; signed URLs that were
changed, have expired or were used are refused; upload names never become paths; and a schemathesis run
over /openapi.json finds no 5xx and no answer outside the schema."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from tests.conftest import ISOLATED_VARS, JFK
from tests.e2e.test_web_frontend import upload
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.supabase_server import BUCKET, OTHER_USER_ID, SERVICE_KEY, USER_ID, FakeSupabase
from tests.support.server import Server, token, wait_for

pytestmark = pytest.mark.slow


def base_env(data: Path, openai_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "NICEGUI_", "DUBSTUDIO_")) and k not in ISOLATED_VARS}
    env.update(DUBSTUDIO_DATA_DIR=str(data), OPENAI_BASE_URL=openai_url, OPENAI_API_KEY="sk-test",
               PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring")
    return env


@pytest.fixture(scope="module")
def supabase() -> Iterator[FakeSupabase]:
    fake = FakeSupabase()
    with fake.running():
        yield fake


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory, supabase: FakeSupabase,
          fake_openai_server: tuple[FakeOpenAI, str]) -> Iterator[tuple[Server, dict[str, Any]]]:
    """A Supabase-mode server (the API alone, in two processes) with one finished job of USER_ID; download
    links live 3 s."""
    env = base_env(tmp_path_factory.mktemp("cloud"), fake_openai_server[1])
    env.update(DUBSTUDIO_AUTH="supabase", DUBSTUDIO_STORAGE="supabase", DUBSTUDIO_SUPABASE_URL=supabase.url,
               DUBSTUDIO_SUPABASE_KEY=SERVICE_KEY, DUBSTUDIO_SUPABASE_BUCKET=BUCKET, DUBSTUDIO_DOWNLOAD_URL_TTL="3")
    server = Server(env, "--api-only", "--processes", "2").start()
    try:
        headers = {"Authorization": f"Bearer {supabase.token(USER_ID)}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
            ids = upload(client, {"source": JFK})
            r = client.post("/api/v1/jobs", json={"uploads": ids, "target_languages": ["es"]})
            assert r.status_code == 201, r.text
        job = wait_for(server, headers, r.json()["id"], "done", timeout=180)
        assert job["status"] == "done", job
        yield server, {**job, "uploads": ids}
    finally:
        server.stop()


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory,
         fake_openai_server: tuple[FakeOpenAI, str]) -> Iterator[tuple[Server, dict[str, str]]]:
    """A local-mode server and its environment."""
    env = base_env(tmp_path_factory.mktemp("desk") / "data", fake_openai_server[1])
    server = Server(env).start()
    yield server, env
    server.stop()


def operations(server: Server) -> list[tuple[str, str]]:
    spec = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    return [(method.upper(), path) for path, ops in spec["paths"].items() for method in ops
            if path.startswith("/api/v1/") and path != "/api/v1/health" and not path.startswith("/api/v1/files/")]


def call(server: Server, method: str, path: str, job: dict[str, Any], token: str | None) -> httpx.Response:
    url = server.url + path.replace("{job_id}", job["id"]).replace("{language}", "es").replace("{segment_id}",
                                                                                                "seg-0001")
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    body: dict[str, Any] | None = None
    if method in ("POST", "PATCH"):
        body = {"uploads": job["uploads"], "target_languages": ["es"], "language": "es", "kind": "audio",
                "translations": {}, "translation": "Hola.",
                "files": [{"kind": "source", "filename": "a.wav", "size": 10}]}
    params = {"duration": "10", "target_languages": "es"} if path.endswith("/estimate") else None
    return httpx.request(method, url, headers=headers, json=body, params=params, timeout=30)


def test_every_route_refuses_bad_tokens(cloud: tuple[Server, dict[str, Any]], supabase: FakeSupabase) -> None:
    server, job = cloud
    bad = {"no token": None, "malformed": "not-a-jwt", "expired": supabase.token(USER_ID, expired=True),
           "wrong signature": supabase.token(USER_ID, foreign_key=True),
           "wrong HS256 secret": supabase.token(USER_ID, alg="HS256", secret="x" * 40),
           "wrong audience": supabase.token(USER_ID, audience="anon"),
           "wrong issuer": supabase.token(USER_ID, issuer="https://evil.example/auth/v1")}
    ops = operations(server)
    assert len(ops) >= 12, ops
    for method, path in ops:
        for why, bearer in bad.items():
            r = call(server, method, path, job, bearer)
            assert r.status_code == 401, (method, path, why, r.status_code, r.text)
            assert r.json()["error"]["code"] == "unauthorized" and job["id"] not in r.text, (method, path, why)


def test_another_users_job_is_not_found(cloud: tuple[Server, dict[str, Any]], supabase: FakeSupabase) -> None:
    server, job = cloud
    other = supabase.token(OTHER_USER_ID)
    for method, path in operations(server):
        r = call(server, method, path, job, other)
        if "{job_id}" in path or (method, path) == ("POST", "/api/v1/jobs"):
            assert r.status_code == 404, (method, path, r.status_code, r.text)
            assert r.json()["error"]["code"] == "not_found"
        else:  # their own list, estimate or uploads: nothing of the first user's
            assert r.status_code < 300, (method, path, r.text)
        if "{job_id}" in path:  # word for word what a job that does not exist gets
            ghost = call(server, method, path, {**job, "id": "0" * 32}, other)
            assert (ghost.status_code, ghost.text.replace("0" * 32, job["id"])) == (404, r.text), (method, path)
        elif (method, path) != ("POST", "/api/v1/jobs"):  # that one echoes the upload ids the caller sent
            assert job["id"] not in r.text and all(u not in r.text for u in job["uploads"].values()), (method, path)
    mine = httpx.get(f"{server.url}/api/v1/jobs/{job['id']}", headers={"Authorization": f"Bearer "
                                                                        f"{supabase.token(USER_ID)}"}, timeout=10)
    assert mine.status_code == 200 and mine.json()["status"] == "done"


def _link(server: Server, supabase: FakeSupabase, job: dict[str, Any], kind: str = "audio") -> str:
    r = httpx.post(f"{server.url}/api/v1/jobs/{job['id']}/downloads", json={"language": "es", "kind": kind},
                   headers={"Authorization": f"Bearer {supabase.token(USER_ID)}"}, timeout=10)
    assert r.status_code == 201, r.text
    return str(r.json()["url"])


def _with(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    path = changes.pop("path", parts.path)
    return f"{parts.scheme}://{parts.netloc}{path}?{urlencode({**query, **changes})}"


def test_signed_links_refuse_tampering_expiry_and_reuse(cloud: tuple[Server, dict[str, Any]],
                                                         supabase: FakeSupabase) -> None:
    server, job = cloud
    url = _link(server, supabase, job)
    q = dict(parse_qsl(urlsplit(url).query))
    other_path = urlsplit(_link(server, supabase, job, "captions_srt")).path
    forged = [_with(url, signature=("A" if q["signature"][0] != "A" else "B") + q["signature"][1:]),
              _with(url, expires=str(int(q["expires"]) + 3600)), _with(url, nonce="x" * 24),
              _with(url, path=other_path), _with(url, signature=""), url.split("?")[0]]
    for bad in forged:
        r = httpx.get(bad, timeout=10)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", (bad, r.text)
    assert httpx.get(url, timeout=10, follow_redirects=True).status_code == 200  # none of those spent it
    reused = httpx.get(url, timeout=10)
    assert reused.status_code == 401 and "already used" in reused.json()["error"]["message"]
    stale = _link(server, supabase, job)
    time.sleep(4)
    expired = httpx.get(stale, timeout=10)
    assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]


NAMES = ["../../../../etc/passwd.wav", "/tmp/absolute.wav", "C:\\Windows\\evil.wav", "nul\x00byte.wav",
         "x" * 1000 + ".wav", "grabación de voz 🎤 声音.wav", "..", "con.wav"]


def test_upload_names_never_become_paths(desk: tuple[Server, dict[str, str]]) -> None:
    server, env = desk
    data = Path(env["DUBSTUDIO_DATA_DIR"])
    before = {p for p in data.parent.rglob("*")} - {p for p in data.rglob("*")}
    client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token(env)}"}, timeout=30)
    for name in NAMES:
        r = client.post("/api/v1/uploads", json={"files": [{"kind": "source", "filename": name,
                                                            "size": JFK.stat().st_size}]})
        assert r.status_code == 201, (name, r.text)
        target = r.json()["uploads"][0]
        assert httpx.put(target["url"], content=JFK.read_bytes(), timeout=30).status_code == 200
        stored = list((data / "storage" / "uploads" / target["id"]).iterdir())
        assert [p.name for p in stored] in (["source.wav"], ["source"]), (name, stored)
        job = client.post("/api/v1/jobs", json={"uploads": {"source": target["id"]}, "target_languages": ["es"]})
        assert job.status_code == 201, job.text
        shown = job.json()["source_filename"]
        assert "/" not in shown and "\\" not in shown and "\x00" not in shown and len(shown) <= 255, shown
    outside = {p for p in data.parent.rglob("*")} - {p for p in data.rglob("*")} - before
    assert not outside, outside  # nothing written beside the data folder
    assert all(data.resolve() in p.resolve().parents for p in (data / "storage").rglob("*"))


def test_upload_urls_are_bound_to_their_upload(desk: tuple[Server, dict[str, str]]) -> None:
    server, env = desk
    client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token(env)}"}, timeout=30)
    size = JFK.stat().st_size
    targets = client.post("/api/v1/uploads", json={"files": [{"kind": "source", "filename": "a.flac", "size": size},
                                                             {"kind": "background", "filename": "b.flac",
                                                              "size": size}]}).json()["uploads"]
    first, second = targets
    swapped = _with(first["url"], path=urlsplit(second["url"]).path)
    assert httpx.put(swapped, content=JFK.read_bytes(), timeout=30).status_code == 401
    assert httpx.post(first["url"], content=JFK.read_bytes(), timeout=30).status_code in (401, 404, 405)
    too_long = httpx.put(first["url"], content=JFK.read_bytes() + b"x", timeout=30)
    assert too_long.status_code == 422, too_long.text
    not_media = httpx.put(second["url"], content=b"\x00" * size, timeout=30)
    assert not_media.status_code == 422 and not_media.json()["error"]["code"] == "not_media"
    assert httpx.put(first["url"], content=JFK.read_bytes(), timeout=30).status_code == 200
    again = httpx.put(first["url"], content=JFK.read_bytes(), timeout=30)
    assert again.status_code == 409, again.text
    pending = client.post("/api/v1/jobs", json={"uploads": {"voice": first["id"], "background": second["id"]},
                                                "target_languages": ["es"]})
    assert pending.status_code in (409, 422), pending.text  # the source is a `source` upload, not a voice


def test_schemathesis_finds_no_server_errors(desk: tuple[Server, dict[str, str]], tmp_path: Path) -> None:
    server, env = desk
    st = Path(sys.executable).with_name("st")
    out = subprocess.run([str(st), "run", f"{server.url}/openapi.json", "-H", f"Authorization: Bearer {token(env)}",
                          "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                          "response_schema_conformance", "--max-examples", "15", "--seed", "1",
                          "--request-timeout", "30"],
                         capture_output=True, text=True, timeout=900, cwd=tmp_path)  # its reports go there
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
