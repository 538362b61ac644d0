"""How well a long job keeps the cloud engines busy: vendor calls against the per-vendor concurrency.

    .venv/bin/python bench/engines.py [--segments 300] [--languages es,fr,de] [--latency 0.2] [--concurrency 8]

A `dubstudio dub` of a ~300-segment input into three languages, against fakes that answer every call after
`latency` seconds (Deepgram for speech to text and voices, `FakeDeepgram(latency=...)`; the OpenAI fake
through a middleware here that sleeps as long), with DUBSTUDIO_VENDOR_CONCURRENCY=8. The fakes run in a
child process (as in bench/common.py) that timestamps every call and hands the records over at
`GET /_bench/calls`.

Per phase (transcription: /v1/listen; translation: chat completions that translate; synthesis: /v1/speak
and the chat completions that shorten a line, which the synthesis stage asks for), the floor is
calls x latency / concurrency; the phase's time is from the start of its first call to the end of its
last. Printed: the efficiency = sum of the floors / sum of the phases' times (the engines' share of the
job), and the same over the job's whole wall time (ingest, fitting, mixing and encoding included).
Goal (issue): efficiency >= 0.8.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import soundfile as sf
from common import MEDIA, ROOT, dub_env, long_input, measured, workdir

SEGMENTS_PER_LOOP = 5.4  # the fake Deepgram hears 5-6 lines per loop of the 26 s recording
PAD_S = 0.8  # silence long_input puts after each loop

# The child: both fakes behind a middleware that adds the OpenAI latency, classifies and timestamps
# every call, and answers GET /_bench/calls with the records. argv: root, latency, ms_per_char.
CHILD = r"""
import asyncio, json, sys, time
from urllib.parse import parse_qs
sys.path.insert(0, sys.argv[1])
from dubstudio.languages import NAMES
from tests.fakes.deepgram_server import FakeDeepgram
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.servers import serve

latency, ms_per_char = float(sys.argv[2]), float(sys.argv[3])
calls = []  # [phase, kind, start, end, language]
in_flight, peak = {}, {}


def timed(app, sleep):
    async def asgi(scope, receive, send):
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        if scope["path"] == "/_bench/calls":
            body = json.dumps({"calls": calls, "peak": peak}).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        start = time.time()
        path = scope["path"].rstrip("/")
        lang = ""
        if path.endswith("/listen"):
            phase, kind = "transcription", "listen"
        elif path.endswith("/speak"):
            phase, kind = "synthesis", "speak"
            lang = parse_qs(scope["query_string"].decode()).get("model", [""])[-1].rsplit("-", 1)[-1]
        else:  # chat completions: read the body to tell a translation from a shortening
            parts = []
            while True:
                message = await receive()
                parts.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
            body = b"".join(parts)
            try:
                system = json.loads(body)["messages"][0]["content"]
            except Exception:
                system = ""
            phase, kind = ("synthesis", "shorten") if system.startswith("You shorten") else ("translation", "chat")
            lang = next((code for code, name in NAMES.items() if f" to {name}." in system or f" in {name} (" in system),
                        "")
            replayed = False

            async def receive():
                nonlocal replayed
                if replayed:
                    await asyncio.Event().wait()
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
        in_flight[phase] = in_flight.get(phase, 0) + 1
        peak[phase] = max(peak.get(phase, 0), in_flight[phase])
        record = [phase, kind, start, None, lang]

        async def sending(message):
            if message["type"] == "http.response.body" and not message.get("more_body"):
                record[3] = time.time()
            await send(message)

        try:
            if sleep:
                await asyncio.sleep(sleep)
            await app(scope, receive, sending)
        finally:
            in_flight[phase] -= 1
            record[3] = record[3] or time.time()
            calls.append(record)

    return asgi


with serve(timed(FakeDeepgram(latency=latency, ms_per_char=ms_per_char), 0.0)) as dg, \
        serve(timed(FakeOpenAI().app(), latency)) as oa:
    print(json.dumps({"deepgram": dg, "openai": oa + "/v1"}), flush=True)
    sys.stdin.read()
"""


@contextmanager
def slow_fakes(latency: float, ms_per_char: float = 60.0) -> Iterator[dict[str, str]]:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(ROOT), str(latency), str(ms_per_char)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    urls = json.loads(proc.stdout.readline())
    try:
        yield urls
    finally:
        proc.kill()
        proc.wait()


def fetch_calls(url: str) -> dict:
    with urllib.request.urlopen(url + "/_bench/calls", timeout=30) as r:
        return dict(json.loads(r.read()))


def heard(path: Path) -> int:
    """Segments the fake Deepgram (and our mapping of its answer) make of `path`."""
    from dubstudio.vendors.deepgram import to_transcript
    from tests.fakes.deepgram_server import FakeDeepgram

    answer = FakeDeepgram().transcribe(path.read_bytes(), {"utterances": "true", "punctuate": "true",
                                                            "diarize": "true"})
    return len(to_transcript(answer, "en").segments)


def input_of(segments: int, tmp: Path) -> tuple[Path, int]:
    """The looped recording (bench/common.py long_input), as many loops as give at least `segments` lines."""
    loop_s = sf.info(str(MEDIA / "speech-26s.wav")).duration + PAD_S
    loops = max(1, math.ceil(segments / SEGMENTS_PER_LOOP))
    while True:
        path = long_input(loops * loop_s / 60, tmp / f"input-{loops}.wav")
        found = heard(path)
        if found >= segments:
            return path, found
        loops += max(1, math.ceil((segments - found) * loops / max(1, found)))


def phase_line(name: str, rows: list[list], latency: float, concurrency: int, t0: float,
               part: bool = False) -> tuple[float, float]:
    """Print one phase; (floor, span) in seconds."""
    kinds = {k: sum(1 for c in rows if c[1] == k) for k in sorted({c[1] for c in rows})}
    floor = len(rows) * latency / concurrency
    start, end = min(c[2] for c in rows), max(c[3] for c in rows)
    span = end - start
    busy = sum(c[3] - c[2] for c in rows) / span if span > 0 else 0.0
    line = f"{name:>13}: {len(rows)} calls {kinds}, {start - t0:.1f}-{end - t0:.1f} s, {busy:.1f} in flight on average"
    if part:  # one language's share of a phase: the concurrency is the vendor's, shared by the languages
        print(line)
    else:
        print(f"{line}; floor {floor:.2f} s, took {span:.2f} s: efficiency {floor / span:.2f}")
    return floor, span


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--segments", type=int, default=300)
    ap.add_argument("--languages", default="es,fr,de")
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    langs = args.languages.split(",")
    tmp = workdir()
    source, _ = input_of(args.segments, tmp)
    out = tmp / "out"
    with slow_fakes(args.latency) as urls:
        env = dub_env(urls, tmp / "data")
        env["DUBSTUDIO_VENDOR_CONCURRENCY"] = str(args.concurrency)
        job_s, rss = measured([sys.executable, "-m", "dubstudio", "dub", str(source), "--to", args.languages,
                               "--out", str(out)], env=env)
        record = fetch_calls(urls["deepgram"])
    manifest = json.loads((out / "manifest.json").read_text())
    segments = len(manifest["languages"][langs[0]]["segments"])
    calls = record["calls"]
    t0 = min(c[2] for c in calls)

    print(f"input: {manifest['source']['duration'] / 60:.1f} min, {segments} segments, {len(langs)} languages; "
          f"every call answered after {args.latency * 1000:.0f} ms; concurrency {args.concurrency}")
    print("(times from the first vendor call; floor = calls x latency / concurrency)")
    floor_sum = span_sum = 0.0
    for phase in ("transcription", "translation", "synthesis"):
        rows = [c for c in calls if c[0] == phase]
        if not rows:
            print(f"{phase:>13}: no calls")
            continue
        floor, span = phase_line(phase, rows, args.latency, args.concurrency, t0)
        floor_sum, span_sum = floor_sum + floor, span_sum + span
        if phase != "transcription":
            for lang in langs:
                mine = [c for c in rows if c[4] == lang]
                if mine:
                    phase_line(lang, mine, args.latency, args.concurrency, t0, part=True)
    print(f"dubstudio dub: {job_s:.1f} s, peak RSS {rss:.0f} MB")
    print(f"efficiency over the vendor phases: {floor_sum / span_sum:.2f} (goal >= 0.8)")
    print(f"efficiency over the job's wall time: {floor_sum / job_s:.2f}")


if __name__ == "__main__":
    main()
