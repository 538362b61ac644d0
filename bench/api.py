"""The JSON API under load, against a real `dubstudio serve --headless` (SQLite, no worker).

    .venv/bin/python bench/api.py [--jobs 10000] [--clients 16] [--requests 3000] [--upload-gb 2]

1. `GET /api/v1/jobs` (a page of 50) with `--jobs` jobs of one user in SQLite, under `--clients`
   concurrent clients: p50/p99 latency and requests/s; as the baseline in the same run, the same load
   on `GET /api/v1/health` (no database: what the server and the clients cost alone). Measured on the
   server a web frontend talks to (`serve --api-only`, in 1 and 2 processes), and on the studio.
   Goal (issue): p99 under 50 ms and at least 300 requests/s on a 2-core machine.
2. A `--upload-gb` upload through a signed URL (a WAV header, then silence, generated as it is sent) to
   the studio's server: its peak RSS (VmHWM) after it, against its peak RSS before (the baseline). Goal: under 150 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from common import ROOT

from dubstudio.config import Settings
from dubstudio.db.models import Job, LanguageTask
from dubstudio.runtime import Database, prepare

# The servers measured: the web frontend's server (the API alone) carries the goal; the studio (the
# desktop's UI and API in one NiceGUI process) is measured for comparison.
SERVERS = [("the API alone, 1 process", ["--api-only"], True),
           ("the API alone, 2 processes", ["--api-only", "--processes", "2"], True),
           ("the studio (UI and API), 1 process", [], False)]


def seed(settings: Settings, count: int) -> None:
    """`count` finished jobs of the local user, each with two languages."""
    async def go() -> None:
        db = Database.connect(settings)
        start = datetime.now(UTC) - timedelta(days=30)
        async with db.session() as s:
            for i in range(count):
                jid = uuid.uuid4().hex
                s.add(Job(id=jid, user_id="local", status="done", source_language="en",
                          source_filename=f"clip-{i}.mp4", source_path=f"jobs/{jid}/input/source.mp4",
                          source_sha256="0" * 64, duration=60.0 + i % 600, options={}, progress=1.0,
                          created_at=start + timedelta(seconds=i * 60), finished_at=start,
                          languages=[LanguageTask(language=lang, status="done", progress=1.0)
                                     for lang in ("es", "fr")]))
                if i % 1000 == 999:
                    await s.commit()
            await s.commit()
        await db.close()
    asyncio.run(go())


class Server:
    def __init__(self, env: dict[str, str], port: int, options: list[str]) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "dubstudio", "serve", "--headless", "--no-worker",
                                      "--port", str(port), *options], env=env, cwd=ROOT,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise SystemExit("the server did not start")

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise SystemExit("no VmHWM (Linux only)")

    def cpu_seconds(self) -> float:
        """utime + stime of the server and its API processes (`--processes N`)."""
        def tree(pid: int) -> list[int]:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            return [pid, *(p for c in children for p in tree(int(c)))]

        ticks = 0
        for pid in tree(self.proc.pid):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


async def load(url: str, headers: dict[str, str], clients: int, requests: int) -> tuple[list[float], float]:
    """Latencies (s) of `requests` GETs shared by `clients` concurrent keep-alive connections, and the wall
    time. A bare HTTP/1.1 client on asyncio streams: the clients share the machine's two cores with the
    server, and httpx would spend more CPU per request than the server does (wrk is not on the machine)."""
    parts = httpx.URL(url)
    head = (f"GET {parts.raw_path.decode()} HTTP/1.1\r\nHost: {parts.host}:{parts.port}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode()
    latencies: list[float] = []
    left = iter(range(requests))
    ready, go = asyncio.Barrier(clients + 1), asyncio.Event()

    async def get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(head)
        status = await reader.readline()
        length = 0
        while (line := await reader.readline()) != b"\r\n":
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        assert b" 200 " in status, status

    async def client() -> None:
        # Connected and warmed up before the clock starts: the steady state of a pool of keep-alive
        # connections (16 connections opened at once would otherwise be most of the p99).
        reader, writer = await asyncio.open_connection(parts.host, parts.port)
        await get(reader, writer)
        await ready.wait()
        await go.wait()
        for _ in left:
            t = time.perf_counter()
            await get(reader, writer)
            latencies.append(time.perf_counter() - t)
        writer.close()

    tasks = [asyncio.create_task(client()) for _ in range(clients)]
    await ready.wait()
    t0 = time.perf_counter()
    go.set()
    await asyncio.gather(*tasks)
    return latencies, time.perf_counter() - t0


def report(name: str, latencies: list[float], wall: float) -> tuple[float, float]:
    q = statistics.quantiles(latencies, n=100)
    p50, p99 = q[49] * 1000, q[98] * 1000
    print(f"{name:<28} p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   {len(latencies) / wall:7.0f} requests/s")
    return p99, len(latencies) / wall


def wav_stream(total: int, chunk: int = 1 << 20) -> Iterator[bytes]:
    """A mono 16-bit 48 kHz WAV of `total` bytes: its header, then silence, made as it is sent."""
    data = total - 44
    yield (b"RIFF" + struct.pack("<I", total - 8) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 48000, 96000, 2, 16)
           + b"data" + struct.pack("<I", data))
    zeros = bytes(chunk)
    while data > 0:
        n = min(chunk, data)
        yield zeros[:n]
        data -= n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--upload-gb", type=float, default=2.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DUBSTUDIO_")}
        env.update(DUBSTUDIO_DATA_DIR=tmp, DUBSTUDIO_API_TOKEN="bench-token-0123456789",
                   PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring", OPENAI_API_KEY="sk-none")
        os.environ.update(env)
        settings = Settings()
        prepare(settings)
        t = time.perf_counter()
        seed(settings, args.jobs)
        print(f"seeded {args.jobs} jobs in {time.perf_counter() - t:.1f} s")
        from tests.fakes.servers import free_port

        auth = {"Authorization": "Bearer bench-token-0123456789"}
        for title, options, goal in SERVERS:
            server = Server(env, free_port(), options)
            try:
                print(f"-- {title} (serve {' '.join(options) or 'with no options'})")
                asyncio.run(load(f"{server.url}/api/v1/jobs?limit=50", auth, args.clients, 200))  # warm up
                cpu = server.cpu_seconds()
                base = report("GET /api/v1/health", *asyncio.run(load(f"{server.url}/api/v1/health", {},
                                                                      args.clients, args.requests)))
                cpu, health_cpu = server.cpu_seconds(), server.cpu_seconds() - cpu
                p99, rps = report("GET /api/v1/jobs (50 of N)", *asyncio.run(load(
                    f"{server.url}/api/v1/jobs?limit=50", auth, args.clients, args.requests)))
                jobs_cpu = server.cpu_seconds() - cpu
                print(f"server CPU per request: health {health_cpu / args.requests * 1000:.2f} ms, "
                      f"jobs {jobs_cpu / args.requests * 1000:.2f} ms")
                print(f"jobs vs health: p99 x{p99 / base[0]:.2f}, throughput x{rps / base[1]:.2f}")
                if goal:
                    print(f"goal p99 < 50 ms: {'met' if p99 < 50 else 'MISSED'}; goal >= 300 requests/s: "
                          f"{'met' if rps >= 300 else 'MISSED'}")
            finally:
                server.stop()

        server = Server(env, free_port(), [])  # the studio: the larger process of the two
        try:
            before = server.peak_rss_mb()
            size = int(args.upload_gb * 1024**3)
            r = httpx.post(f"{server.url}/api/v1/uploads", headers=auth, json={"files": [
                {"kind": "source", "filename": "big.wav", "size": size}]})
            target = r.json()["uploads"][0]
            t = time.perf_counter()
            sent = httpx.request(target["method"], target["url"], headers=target["headers"],
                                 content=wav_stream(size), timeout=600)
            took = time.perf_counter() - t
            assert sent.status_code == 200, sent.text
            after = server.peak_rss_mb()
            print(f"upload of {args.upload_gb:g} GB: {took:.1f} s ({size / took / 1e6:.0f} MB/s); server peak RSS "
                  f"{before:.0f} MB before, {after:.0f} MB after (x{after / before:.2f}); goal < 150 MB: "
                  f"{'met' if after < 150 else 'MISSED'}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
