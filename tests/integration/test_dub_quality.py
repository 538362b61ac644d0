"""Golden tests of PRODUCT.md's quality rules, measured on the files a job writes, with meters that are
not the pipeline's own (pyloudnorm for BS.1770, 4x oversampling for true peak, `srt`/`webvtt` parsers)."""

from __future__ import annotations

import itertools
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import srt
import webvtt

from dubstudio.config import Settings
from dubstudio.pipeline.media import ffmpeg_exe
from tests.conftest import JFK, MEDIA
from tests.fakes.deepgram_server import FakeDeepgram
from tests.fakes.openai_server import FakeOpenAI
from tests.support.jobs import Done, dub, integrated_lufs, streams, true_peak_dbtp, video_packets_sha

pytestmark = pytest.mark.slow
MEDIA_FILES = ("dub.wav", "dub.m4a", "voice.wav", "captions.srt", "captions.vtt")


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-y", "-v", "error", *args], check=True)


@pytest.fixture(scope="module")
def jfk_twice(tmp_path_factory: pytest.TempPathFactory,
              fake_openai_server: tuple[FakeOpenAI, str]) -> Iterator[tuple[Done, Done]]:
    """The JFK recording dubbed into Spanish twice, from scratch each time, with the offline engines."""
    _, url = fake_openai_server
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_BASE_URL", url)
        mp.setenv("OPENAI_API_KEY", "sk-test")
        mp.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
        runs = tuple(dub(JFK, "es", settings=Settings(data_dir=tmp_path_factory.mktemp(f"run{n}"))) for n in (1, 2))
    yield runs  # type: ignore[misc]


def check_rules(done: Done, lang: str, target: float = -16.0) -> dict:
    assert done.job.status == "done", done.job.error_message
    m = json.loads((done.workdir / "manifest.json").read_text())
    segs = m["languages"][lang]["segments"]
    for seg in segs:
        assert abs(seg["dub_start"] - seg["source_start"]) <= 0.040
        assert seg["stretch"] <= 1.35 and seg["rate"] * seg["stretch"] <= 1.35 + 1e-6
    for a, b in itertools.pairwise(segs):
        assert a["dub_end"] <= b["source_start"], f"{a['id']} reaches into {b['id']}"
        assert b["dub_start"] <= b["source_start"] + 0.040
    master = done.workdir / lang / "dub.wav"
    assert abs(integrated_lufs(master) - target) <= 1.0
    assert true_peak_dbtp(master) <= -1.0
    assert sf.info(master).frames == sf.info(done.workdir / "work" / "source.wav").frames
    for path in (done.workdir / lang / "captions.srt", done.workdir / lang / "captions.vtt"):
        cues = ([(c.start.total_seconds(), c.end.total_seconds(), c.content) for c in srt.parse(path.read_text())]
                if path.suffix == ".srt" else
                [(c.start_in_seconds, c.end_in_seconds, c.text) for c in webvtt.read(str(path))])
        assert cues
        for start, end, text in cues:
            lines = text.split("\n")
            assert len(lines) <= 2 and all(len(x) <= 42 for x in lines)
            assert 5 / 6 - 0.002 <= end - start <= 7.0
        for a, b in itertools.pairwise(cues):
            assert a[1] <= b[0]
    return m


def test_the_offline_dub_keeps_every_rule(jfk_twice: tuple[Done, Done]) -> None:
    m = check_rules(jfk_twice[0], "es")
    assert m["languages"]["es"]["loudness"]["true_peak_dbtp"] <= -1.0


def test_two_runs_give_byte_identical_outputs(jfk_twice: tuple[Done, Done]) -> None:
    a, b = jfk_twice
    for name in MEDIA_FILES:
        assert (a.workdir / "es" / name).read_bytes() == (b.workdir / "es" / name).read_bytes(), name
    segs = [json.loads((d.workdir / "manifest.json").read_text())["languages"]["es"] for d in (a, b)]
    assert segs[0] == segs[1]


def test_stems_replace_the_voice_over_a_resampled_padded_background(
        tmp_path: Path, fake_deepgram: FakeDeepgram, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUBSTUDIO_LOUDNESS_TARGET", "-23")
    voice = MEDIA / "speech-26s.wav"
    background = tmp_path / "music.wav"  # 20 s of a chord at 22.05 kHz, stereo: shorter and another rate
    t = np.arange(20 * 22050) / 22050
    chord = 0.05 * (np.sin(2 * np.pi * 220 * t) + np.sin(2 * np.pi * 277 * t))
    sf.write(background, np.stack([chord, chord], axis=1), 22050)
    done = dub(voice, "es", background=background)
    m = check_rules(done, "es", target=-23.0)
    voices = {(seg["speaker"], seg["voice"]) for seg in m["languages"]["es"]["segments"]}
    assert len({sp for sp, _ in voices}) == 2 and len(voices) == 2, "distinct speakers need distinct voices"
    bg = m["source"]["background"]
    assert bg["resampled"] and bg["sample_rate"] == 22050 and bg["padded_seconds"] == pytest.approx(5.9, abs=0.1)
    # Between dubbed lines the mix is the background alone: the original voice is gone.
    mix, rate = sf.read(done.workdir / "es" / "dub.wav")
    ref, _ = sf.read(done.workdir / "work" / "background.wav")
    segs = m["languages"]["es"]["segments"]
    gaps = [(a["dub_end"] + 0.05, b["dub_start"] - 0.05) for a, b in itertools.pairwise(segs)]
    gap = max(gaps, key=lambda g: g[1] - g[0])
    assert gap[1] - gap[0] > 0.2
    x, y = mix[int(gap[0] * rate):int(gap[1] * rate)], ref[int(gap[0] * rate):int(gap[1] * rate)]
    assert np.corrcoef(x, y)[0, 1] > 0.98
    tail = mix[int(21 * rate):]  # past the background's end and the last line: silence
    if not any(s["dub_end"] > 21 for s in segs):
        assert np.max(np.abs(tail)) < 1e-3


def test_a_video_gets_its_picture_copied_and_a_track_per_language(
        tmp_path: Path, fake_deepgram: FakeDeepgram, fake_openai: FakeOpenAI) -> None:
    video = tmp_path / "talk.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10", "-i", str(JFK), "-shortest", "-map", "0:v",
           "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(video))
    done = dub(video, "es,fr")
    m = check_rules(done, "es")
    check_rules(done, "fr")
    for lang in ("es", "fr"):
        out = done.workdir / lang / "video.mp4"
        assert video_packets_sha(out) == video_packets_sha(video), "the picture was re-encoded"
        assert any(a["kind"] == "video" for a in m["languages"][lang]["artifacts"])
    everything = done.workdir / "video.all.mp4"
    info = streams(everything)
    assert video_packets_sha(everything) == video_packets_sha(video)
    assert info.count("Audio:") == 3
    assert "(spa)" in info and "(fre)" in info


def test_silence_is_no_speech_not_a_crash(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, np.zeros(16000 * 3, dtype=np.float32), 16000)
    done = dub(quiet, "es")
    assert done.job.status == "failed" and done.job.error_code == "no_speech"
    assert "No speech" in (done.job.error_message or "")


def test_the_same_job_again_pays_for_nothing(fake_deepgram: FakeDeepgram, fake_openai: FakeOpenAI) -> None:
    first = dub(MEDIA / "speech-26s.wav", "es")
    calls = (dict(fake_deepgram.calls), len(fake_openai.requests))
    second = dub(MEDIA / "speech-26s.wav", "es")
    assert first.job.id != second.job.id and second.job.status == "done"
    assert (dict(fake_deepgram.calls), len(fake_openai.requests)) == calls
    assert (first.workdir / "es" / "dub.wav").read_bytes() == (second.workdir / "es" / "dub.wav").read_bytes()
    # What was paid is metered at the vendors' prices, and the cached second run cost nothing.
    costs = json.loads((first.workdir / "manifest.json").read_text())["costs"]
    seconds = costs["by_language"]["shared"]["seconds"]
    assert seconds == pytest.approx(25.9, abs=0.2) and costs["by_language"]["es"]["characters"] > 0
    assert costs["total"] > 0 and first.job.cost_total == pytest.approx(costs["total"], abs=1e-6)
    assert second.job.cost_total == 0
