"""Job control through a running server: cancel stops a running job within seconds and retry goes on from
where it stopped; CORS answers only the configured origins; a server on another interface needs auth; the
API alone in several processes shares connections evenly between them, and its processes end with the server."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import JFK
from tests.fakes.openai_server import FakeOpenAI
from tests.support.server import Server, server_env, token, wait_for

pytestmark = pytest.mark.slow
ORIGIN = "https://app.example.com"


@pytest.fixture
def env(tmp_path: Path, fake_openai: FakeOpenAI) -> dict[str, str]:
    return server_env(DUBSTUDIO_CORS_ORIGINS=f'["{ORIGIN}"]')


def test_cancel_stops_a_running_job_and_retry_goes_on(server: Server, env: dict[str, str]) -> None:
    auth = {"Authorization": f"Bearer {token(env)}"}
    client = httpx.Client(base_url=server.url, headers=auth, timeout=30)
    with JFK.open("rb") as f:
        job = client.post("/api/v1/jobs", files={"file": ("jfk.flac", f, "audio/flac")},
                          data={"target_languages": "es,fr"}).json()
    deadline = time.monotonic() + 60
    while client.get(f"/api/v1/jobs/{job['id']}").json()["status"] != "running":
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.1)
    r = client.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    time.sleep(3)  # the worker notices within a second and stops at its next step
    events = client.get(f"/api/v1/jobs/{job['id']}/events").json()["events"]
    after = [e for e in events if e["id"] > next(e["id"] for e in events if e["kind"] == "cancelled")]
    time.sleep(2)
    later = client.get(f"/api/v1/jobs/{job['id']}/events").json()["events"]
    assert len(later) == len(events), "the job went on after it was cancelled"
    view = client.get(f"/api/v1/jobs/{job['id']}").json()
    assert view["status"] == "cancelled", view
    assert all(t["status"] in ("cancelled", "done") for t in view["languages"].values()), view
    assert not [e for e in after if e["kind"] in ("language_done", "job_done")], after
    again = client.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"

    assert client.post(f"/api/v1/jobs/{job['id']}/retry").status_code == 200
    done = wait_for(server, auth, job["id"], "done")
    assert done["status"] == "done" and all(t["status"] == "done" for t in done["languages"].values()), done


def test_cors_answers_only_the_configured_origins(server: Server) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    ok = httpx.options(f"{server.url}/api/v1/jobs", headers={"Origin": ORIGIN, **preflight}, timeout=10)
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == ORIGIN
    evil = httpx.options(f"{server.url}/api/v1/jobs", headers={"Origin": "https://evil.example", **preflight},
                         timeout=10)
    assert "access-control-allow-origin" not in evil.headers
    simple = httpx.get(f"{server.url}/api/v1/health", headers={"Origin": "https://evil.example"}, timeout=10)
    assert "access-control-allow-origin" not in simple.headers


def test_another_interface_needs_auth(env: dict[str, str]) -> None:
    env = {k: v for k, v in env.items() if k != "DUBSTUDIO_API_TOKEN"}
    out = subprocess.run([sys.executable, "-m", "dubstudio", "serve", "--headless", "--host", "0.0.0.0", "--port",
                          "1"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("error: Serving on 0.0.0.0") and "DUBSTUDIO_AUTH=supabase" in out.stderr
    assert "Traceback" not in out.stderr


def test_the_editor_routes(server: Server, env: dict[str, str]) -> None:
    auth = {"Authorization": f"Bearer {token(env)}"}
    client = httpx.Client(base_url=server.url, headers=auth, timeout=60)
    with JFK.open("rb") as f:
        job = client.post("/api/v1/jobs", files={"file": ("jfk.flac", f, "audio/flac")},
                          data={"target_languages": "es"}).json()
    assert wait_for(server, auth, job["id"], "done")["status"] == "done"
    lines = client.get(f"/api/v1/jobs/{job['id']}/languages/es/segments").json()["segments"]
    assert len(lines) >= 2 and all(row.get("voice") for row in lines)
    first, second = lines[0], lines[1]

    # Another speaker for the second line, with its own voice: every language follows, only it is spoken again.
    r = client.patch(f"/api/v1/jobs/{job['id']}/languages/es/segments",
                     json={"speakers": {second["id"]: "S9"}, "voices": {"S9": "es+f3"}})
    assert r.status_code == 200 and r.json()["status"] == "queued", r.text
    assert wait_for(server, auth, job["id"], "done")["status"] == "done"
    after = {row["id"]: row for row in client.get(f"/api/v1/jobs/{job['id']}/languages/es/segments").json()["segments"]}
    assert after[second["id"]]["speaker"] == "S9" and after[second["id"]]["voice"] == "es+f3"
    assert after[first["id"]]["voice"] == first["voice"]
    bad = client.patch(f"/api/v1/jobs/{job['id']}/languages/es/segments", json={"speakers": {first["id"]: "../x"}})
    assert bad.status_code == 422 and "speaker" in bad.json()["error"]["message"]

    # One line again: heard in the master before the answer; the rest follows.
    r = client.post(f"/api/v1/jobs/{job['id']}/languages/es/segments/{first['id']}/regenerate",
                    json={"translation": "Una frase nueva, escrita a mano."})
    assert r.status_code == 200, r.text
    preview = r.json()["preview"]
    assert preview is not None and preview["segment_id"] == first["id"] and preview["end"] > preview["start"]
    assert wait_for(server, auth, job["id"], "done")["status"] == "done"
    edited = client.get(f"/api/v1/jobs/{job['id']}/languages/es/segments").json()["segments"][0]
    assert edited["translation"] == "Una frase nueva, escrita a mano." and edited["edited"]

    # A language made again with nothing changed reuses everything.
    events_before = client.get(f"/api/v1/jobs/{job['id']}/events?limit=1000").json()["events"]
    r = client.post(f"/api/v1/jobs/{job['id']}/languages/es/render")
    assert r.status_code == 200 and r.json()["status"] == "queued", r.text
    assert wait_for(server, auth, job["id"], "done")["status"] == "done"
    events = client.get(f"/api/v1/jobs/{job['id']}/events?after={events_before[-1]['id']}&limit=1000").json()
    assert not [e for e in events["events"] if e["kind"] == "vendor_call"]
    assert any(e["kind"] == "stage_done" and e["message"] == "deliver reused" for e in events["events"])


def api_processes(server: Server) -> list[str]:
    """The API processes `serve --processes N` runs (Linux: from /proc; elsewhere none are listed)."""
    assert server.proc is not None
    pid = server.proc.pid
    listed = Path(f"/proc/{pid}/task/{pid}/children")
    children = listed.read_text().split() if listed.exists() else []
    return [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def connections(pid: str, port: int) -> int:
    """The TCP connections to `port` that process `pid` holds open (Linux)."""
    links = (os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir())
    inodes = {link[8:-1] for link in links if link.startswith("socket:[")}  # "socket:[12345]"
    held = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()  # local address (hex ip:port), remote, state, ..., inode
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01" and fields[9] in inodes:
                held += 1
    return held


def gone(pids: list[str], within: float) -> bool:
    deadline = time.monotonic() + within
    while [p for p in pids if Path(f"/proc/{p}").exists()]:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_the_api_alone_in_several_processes(env: dict[str, str]) -> None:
    server = Server(env, "--api-only", "--processes", "2").start()
    try:
        api = api_processes(server)
        assert len(api) == (2 if sys.platform == "linux" else 0), api
        auth = {"Authorization": f"Bearer {token(env)}"}
        with contextlib.ExitStack() as stack:  # 16 keep-alive connections: as many for each process
            clients = [stack.enter_context(httpx.Client(base_url=server.url, headers=auth, timeout=10))
                       for _ in range(16)]
            for client in clients:
                assert client.get("/api/v1/jobs").json()["jobs"] == []
            if sys.platform == "linux":
                assert [connections(pid, server.port) for pid in api] == [8, 8]
        with httpx.Client(base_url=server.url, headers=auth, timeout=10) as client:
            assert client.get("/").status_code == 404  # no studio pages
            nothing = client.get("/api/v1/nothing")
            assert nothing.status_code == 404 and nothing.json()["error"]["code"] == "not_found", nothing.text
            assert client.get("/docs").status_code == 200
            assert client.get("/openapi.json").json()["info"]["title"] == "dubstudio"
        assert server.interrupt() < 15
        assert gone(api, within=1), "an API process outlived the server"
    finally:
        server.stop()


@pytest.mark.skipif(sys.platform != "linux", reason="reads the processes from /proc")
def test_api_processes_end_with_a_killed_server(env: dict[str, str]) -> None:
    server = Server(env, "--api-only", "--processes", "2").start()
    try:
        api = api_processes(server)
        server.stop()  # SIGKILL: the parent cannot stop them; they notice within a second or two
        assert gone(api, within=10), "orphaned API processes linger"
        with socket.socket() as s:
            s.bind(("127.0.0.1", server.port))  # free again
    finally:
        server.stop()


def test_processes_must_be_a_count_and_the_port_free(env: dict[str, str]) -> None:
    out = subprocess.run([sys.executable, "-m", "dubstudio", "serve", "--headless", "--processes", "0", "--port",
                          "1"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "error: --processes 0 is not a number of processes" in out.stderr, out.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        out = subprocess.run([sys.executable, "-m", "dubstudio", "serve", "--headless", "--processes", "2", "--port",
                              port], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and f"127.0.0.1:{port}" in out.stderr and "Traceback" not in out.stderr, out.stderr
