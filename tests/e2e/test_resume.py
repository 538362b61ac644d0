"""A worker killed with SIGKILL in the middle of a job: a new worker finishes it, the outputs are
byte-identical to an uninterrupted run, and no engine answer was paid for twice (counted on the fakes)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from dubstudio.config import Settings
from dubstudio.tasks import Queue
from tests.conftest import MEDIA
from tests.fakes.deepgram_server import FakeDeepgram
from tests.fakes.openai_server import FakeOpenAI
from tests.support.jobs import _create, _get, dub

pytestmark = pytest.mark.slow
SOURCE = MEDIA / "speech-26s.wav"
OUTPUTS = ("es/dub.wav", "es/dub.m4a", "es/voice.wav", "es/captions.srt", "fr/dub.wav", "fr/captions.vtt")


def worker(log: Path, stale_after: float = 60) -> subprocess.Popen[bytes]:
    """`dubstudio worker`, requeueing jobs `stale_after` seconds without a heartbeat. Short only where a
    dead worker's job must be found: on a loaded machine a live job's heartbeat can lag a second or two,
    and a worker would requeue its own job (a full run here saw it: "queued" where "running" was due)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(DUBSTUDIO_STALE_AFTER=str(stale_after), DUBSTUDIO_REQUEUE_EVERY="0.5")
    return subprocess.Popen([sys.executable, "-m", "dubstudio", "worker"], env=env, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT)


def answered(fake: FakeDeepgram) -> Counter[tuple[str, str, str]]:
    return Counter((r["body"].decode(), r["query"].get("model", ""), r["query"].get("speed", ""))
                   for r in fake.speak_requests)


def test_sigkill_mid_job_then_resume(tmp_path: Path, fake_deepgram: FakeDeepgram, fake_openai: FakeOpenAI) -> None:
    fake_deepgram.latency = 0.05  # each voice call takes a moment: the kill lands mid-synthesis
    settings = Settings()
    job_id = asyncio.run(_create(settings, SOURCE, "es,fr", "en", None))
    Queue(settings).enqueue(job_id)
    asked_before = len(fake_openai.requests)
    first = worker(tmp_path / "worker.log")
    try:
        deadline = time.monotonic() + 60
        while len(fake_deepgram.speak_requests) < 4:
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
            assert first.poll() is None, (tmp_path / "worker.log").read_text()
            time.sleep(0.01)
        # Hold every new answer, let those already sent be saved, then kill: what the dead worker asked
        # and never got an answer to is not paid for, and asking it again is right.
        fake_deepgram.latency = 30.0
        time.sleep(0.5)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    finally:
        if first.poll() is None:
            first.kill()
    assert asyncio.run(_get(settings, job_id)).status == "running"  # as the dead worker left it
    before_kill, listened = answered(fake_deepgram), fake_deepgram.calls["listen"]
    fake_deepgram.reset()  # the held calls of the dead worker are dropped unanswered

    second = worker(tmp_path / "worker.log", stale_after=5)
    try:
        deadline = time.monotonic() + 120
        while (job := asyncio.run(_get(settings, job_id))).status not in ("done", "failed"):
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()
            time.sleep(0.2)
    finally:
        second.terminate()
        second.wait(10)
    assert job.status == "done", job.error_message
    after = answered(fake_deepgram)
    assert before_kill and after, "the kill did not land in the middle of the voices"
    assert max((before_kill + after).values()) == 1, "a line was spoken (and paid for) twice"
    assert listened == 1 and fake_deepgram.calls["listen"] == 0  # the transcript was not asked for again
    asked = Counter(json.dumps(r["messages"]) for r in fake_openai.requests[asked_before:])
    assert len(asked) >= 2 and max(asked.values()) == 1  # a translation per language (and shorter lines), none twice

    # The same job, uninterrupted, in another data folder: the same bytes.
    fake_deepgram.latency = 0.0
    reference = dub(SOURCE, "es,fr", settings=Settings(data_dir=tmp_path / "reference"))
    workdir = settings.storage_dir / "jobs" / job_id
    for name in OUTPUTS:
        assert (workdir / name).read_bytes() == (reference.workdir / name).read_bytes(), name
    ours = json.loads((workdir / "manifest.json").read_text())["languages"]
    theirs = json.loads((reference.workdir / "manifest.json").read_text())["languages"]
    assert ours == theirs
