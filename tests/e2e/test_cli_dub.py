"""`dubstudio dub` as a user runs it: a real process, real ffmpeg and engines, a fake translator on loopback."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import srt

from tests.conftest import JFK
from tests.fakes.openai_server import FakeOpenAI

MANIFEST_SEGMENT_FIELDS = {"id", "speaker", "source_start", "source_end", "dub_start", "dub_end", "stretch",
                           "overflow", "text", "translation"}


def dub(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dubstudio", "dub", *args], capture_output=True, text=True,
                          env=env or dict(os.environ), timeout=300)


def rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-12))


@pytest.fixture(scope="module")
def dubbed(tmp_path_factory: pytest.TempPathFactory, fake_openai_server: tuple[FakeOpenAI, str]) -> Path:
    """One dub of the JFK recording into Spanish, shared by the checks below."""
    fake, url = fake_openai_server
    root = tmp_path_factory.mktemp("dub")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUBSTUDIO_")}
    env.update(DUBSTUDIO_DATA_DIR=str(root / "data"), OPENAI_BASE_URL=url, OPENAI_API_KEY="sk-test",
               PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring")
    out = root / "out"
    calls = fake.calls
    proc = dub(str(JFK), "--to", "es", "--out", str(out), env=env)
    assert proc.returncode == 0, proc.stderr
    assert fake.calls > calls
    return out


def test_dub_is_as_long_as_the_source(dubbed: Path) -> None:
    info = sf.info(dubbed / "es" / "dub.wav")
    assert abs(info.frames / info.samplerate - sf.info(JFK).duration) <= 0.020


def test_manifest_has_the_documented_fields(dubbed: Path) -> None:
    m = json.loads((dubbed / "manifest.json").read_text())
    assert m["job_id"] and m["source"]["sha256"] and abs(m["source"]["duration"] - 11.0) < 0.05
    assert m["source"]["filename"] == "jfk-11s.flac"
    es = m["languages"]["es"]
    assert es["segments"], "no segments"
    for seg in es["segments"]:
        assert seg.keys() >= MANIFEST_SEGMENT_FIELDS
        assert seg["translation"] and seg["text"]
    assert {"integrated_lufs", "true_peak_dbtp"} <= set(es["loudness"])
    for art in es["artifacts"]:
        path = dubbed / art["path"]
        assert path.exists() and path.stat().st_size == art["bytes"] and len(art["sha256"]) == 64


def test_speech_is_where_the_manifest_places_it(dubbed: Path) -> None:
    m = json.loads((dubbed / "manifest.json").read_text())
    voice, rate = sf.read(dubbed / "es" / "voice.wav", dtype="float32")
    segs = m["languages"]["es"]["segments"]
    speech = np.zeros(voice.size, dtype=bool)
    for seg in segs:
        assert abs(seg["dub_start"] - seg["source_start"]) <= 0.040  # anchored to the source line
        a, z = int(seg["dub_start"] * rate), int(seg["dub_end"] * rate)
        assert rms_db(voice[a:z]) > -40, f"no speech in {seg['id']}"
        assert rms_db(voice[a:a + int(0.05 * rate)]) > -50, f"{seg['id']} does not start on time"
        speech[a:z] = True
    assert rms_db(voice[~speech]) < -60, "dubbed speech outside the placed segments"
    for a, b in itertools.pairwise(segs):
        assert a["dub_end"] <= b["dub_start"]


def test_captions_parse_and_follow_the_dub(dubbed: Path) -> None:
    cues = list(srt.parse((dubbed / "es" / "captions.srt").read_text(encoding="utf-8")))
    assert cues
    for cue in cues:
        lines = cue.content.split("\n")
        assert len(lines) <= 2 and all(len(line) <= 42 for line in lines)
    for a, b in itertools.pairwise(cues):
        assert a.end <= b.start
    assert list(srt.parse((dubbed / "captions.en.srt").read_text(encoding="utf-8")))


def _one_line_error(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    for w in words:
        assert w.lower() in lines[0].lower(), lines[0]


def _jobs_left(data_dir: Path) -> list[Path]:
    jobs = data_dir / "storage" / "jobs"
    return list(jobs.iterdir()) if jobs.exists() else []


def test_a_file_that_is_not_media_is_refused_and_leaves_nothing(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    bad = tmp_path / "notes.mp4"
    bad.write_text("hello, this is text")
    _one_line_error(dub(str(bad), "--to", "es"), "notes.mp4", "not an audio or video file")
    assert _jobs_left(Path(os.environ["DUBSTUDIO_DATA_DIR"])) == []


def test_an_empty_file_is_refused(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    _one_line_error(dub(str(empty), "--to", "es"), "empty")
    assert _jobs_left(Path(os.environ["DUBSTUDIO_DATA_DIR"])) == []


def test_an_unknown_language_is_refused(fake_openai: FakeOpenAI) -> None:
    _one_line_error(dub(str(JFK), "--to", "xx"), "unknown language", "iso 639-1")


def test_a_missing_translator_names_the_fix() -> None:
    _one_line_error(dub(str(JFK), "--to", "es"), "OPENAI_API_KEY", "OPENAI_BASE_URL")


def test_an_unwritable_data_folder_names_the_fix(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("x")
    env = dict(os.environ, DUBSTUDIO_DATA_DIR=str(blocker / "data"))
    _one_line_error(dub(str(JFK), "--to", "es", env=env), "DUBSTUDIO_DATA_DIR")


def test_a_missing_file_is_refused(fake_openai: FakeOpenAI) -> None:
    _one_line_error(dub("no-such-file.wav", "--to", "es"), "no file")


def ffmpeg(*args: str) -> None:
    from dubstudio.pipeline.media import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-y", "-v", "error", *args], check=True)


def test_an_input_over_the_limit_is_refused_before_any_work(fake_openai: FakeOpenAI) -> None:
    calls = fake_openai.calls
    env = dict(os.environ, DUBSTUDIO_MAX_DURATION="5")
    _one_line_error(dub(str(JFK), "--to", "es", env=env), "over the limit", "DUBSTUDIO_MAX_DURATION")
    assert fake_openai.calls == calls
    assert _jobs_left(Path(os.environ["DUBSTUDIO_DATA_DIR"])) == []


def test_a_corrupt_container_is_refused(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    whole = tmp_path / "whole.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=duration=3", "-c:a", "aac", str(whole))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    _one_line_error(dub(str(broken), "--to", "es"), "broken.mp4")


def test_a_video_without_sound_is_refused(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    silent = tmp_path / "silent.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x64:rate=5:duration=2", "-c:v", "libx264", str(silent))
    _one_line_error(dub(str(silent), "--to", "es"), "video without an audio stream")


def test_the_source_language_as_a_target_is_refused(fake_openai: FakeOpenAI) -> None:
    _one_line_error(dub(str(JFK), "--to", "en,es"), "also a target")
