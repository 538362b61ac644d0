"""Shared by the benchmarks: long inputs made from the shared recordings, instant fake engines on
loopback in their own process (so they weigh on neither the timing nor the memory of the job), and a
`dubstudio dub` run measured for wall time and peak RSS."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "media"
sys.path.insert(0, str(ROOT))

from dubstudio.pipeline.media import ffmpeg_exe  # noqa: E402


def long_input(minutes: float, dst: Path) -> Path:
    """`minutes` of conversational speech: the 26 s recording and 0.8 s of silence, looped (16 kHz mono
    keeps the file small; the pipeline resamples as it would any input)."""
    if not dst.exists():
        loop = ("[0:a]aresample=16000,pan=mono|c0=c0,apad=pad_dur=0.8[s];"
                f"[s]aloop=loop=-1:size=2e9,atrim=0:{minutes * 60}[out]")
        subprocess.run([ffmpeg_exe(), "-y", "-v", "error", "-i", str(MEDIA / "speech-26s.wav"), "-filter_complex",
                        loop, "-map", "[out]", "-c:a", "pcm_s16le", str(dst)], check=True)
    return dst


FAKES = """
import json, sys, threading
sys.path.insert(0, {root!r})
from tests.fakes.deepgram_server import FakeDeepgram
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.servers import serve
with serve(FakeDeepgram(ms_per_char={ms_per_char})) as dg, serve(FakeOpenAI().app()) as oa:
    print(json.dumps({{"deepgram": dg, "openai": oa + "/v1"}}), flush=True)
    sys.stdin.read()
"""


@contextmanager
def fakes(ms_per_char: float = 60.0) -> Iterator[dict[str, str]]:
    """Instant Deepgram (speech to text and voices) and OpenAI fakes in a child process."""
    proc = subprocess.Popen([sys.executable, "-c", FAKES.format(root=str(ROOT), ms_per_char=ms_per_char)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    urls = json.loads(proc.stdout.readline())
    try:
        yield urls
    finally:
        proc.kill()
        proc.wait()


def dub_env(urls: dict[str, str], data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUBSTUDIO_")}
    env.update(DUBSTUDIO_DATA_DIR=str(data_dir), DUBSTUDIO_STT="deepgram", DUBSTUDIO_TTS="deepgram",
               DEEPGRAM_API_KEY="dg-test-key", DUBSTUDIO_DEEPGRAM_BASE_URL=urls["deepgram"],
               OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=urls["openai"], DUBSTUDIO_VENDOR_CONCURRENCY="8",
               PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring", DUBSTUDIO_MAX_DURATION="36000")
    return env


def measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run a command; (wall seconds, its peak RSS in MB, children included, the largest process)."""
    wrapper = ("import resource, subprocess, sys, json, time; t = time.monotonic(); "
               "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); dt = time.monotonic() - t; "
               "print(json.dumps([r.returncode, dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))")
    out = subprocess.run([sys.executable, "-c", wrapper, *cmd], env=env, capture_output=True, text=True)
    code, seconds, rss_kb = json.loads(out.stdout.strip().splitlines()[-1])
    if code != 0:
        raise SystemExit(f"{cmd[:4]} failed ({code}): {out.stderr[-2000:]}")
    return seconds, rss_kb / 1024


def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="dubstudio-bench-"))


def now() -> float:
    return time.monotonic()


__all__ = ["ROOT", "dub_env", "fakes", "ffmpeg_exe", "long_input", "measured", "resource", "workdir"]
