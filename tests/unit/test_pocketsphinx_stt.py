"""The offline pocketsphinx recogniser on real speech, no mocks. Decoding jfk takes seconds, so once."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import soundfile as sf

from dubstudio.domain import Transcript, Word
from dubstudio.errors import BadInput, UnknownLanguage
from dubstudio.vendors.base import SpeechToText
from dubstudio.vendors.offline.pocketsphinx_stt import MAX_SEGMENT_S, PocketsphinxSTT, _split_long

JFK = Path("/work/shared/media/jfk-11s.flac")


def to_wav(src: Path, dst: Path) -> Path:
    """The ingest stage's format: 16 kHz mono s16 WAV."""
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-i", str(src),
         "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", str(dst)],
        check=True,
    )
    return dst


@dataclass
class Run:
    wav: Path
    transcript: Transcript
    progress: list[float]
    seconds: float


@pytest.fixture(scope="module")
def jfk(tmp_path_factory: pytest.TempPathFactory) -> Run:
    wav = to_wav(JFK, tmp_path_factory.mktemp("jfk") / "jfk.wav")
    progress: list[float] = []
    t0 = time.perf_counter()
    transcript = PocketsphinxSTT().transcribe(wav, "auto", progress.append)
    return Run(wav, transcript, progress, time.perf_counter() - t0)


def test_is_a_speech_to_text_engine() -> None:
    engine: SpeechToText = PocketsphinxSTT()
    assert engine.name == "offline"


def test_jfk_gives_ordered_non_overlapping_segments(jfk: Run) -> None:
    t = jfk.transcript
    assert t.language == "en"
    assert t.duration == pytest.approx(11.0, abs=0.05)
    assert len(t.segments) >= 2
    assert [s.id for s in t.segments] == [f"seg-{i:04d}" for i in range(1, len(t.segments) + 1)]
    for seg in t.segments:
        assert 0.0 <= seg.start < seg.end <= 11.1
        assert seg.speaker == "S1"
        assert seg.words
        assert seg.start == seg.words[0].start and seg.end == seg.words[-1].end
        assert seg.text == " ".join(w.text for w in seg.words)
        for w in seg.words:
            assert seg.start <= w.start < w.end <= seg.end
            assert "(" not in w.text and w.text[0] not in "<["  # no variants, no fillers
        assert seg.end - seg.start <= MAX_SEGMENT_S or len(seg.words) == 1
    for a, b in zip(t.segments, t.segments[1:], strict=False):
        assert a.end <= b.start


def test_jfk_text_is_recognisable(jfk: Run) -> None:
    text = " ".join(s.text for s in jfk.transcript.segments)
    assert "country" in text


def test_progress_is_non_decreasing_and_ends_at_one(jfk: Run) -> None:
    assert len(jfk.progress) >= 2
    assert all(0.0 <= p <= 1.0 for p in jfk.progress)
    assert jfk.progress == sorted(jfk.progress)
    assert jfk.progress[-1] == 1.0


def test_faster_than_realtime_on_jfk(jfk: Run) -> None:
    # A loose bound: it measures about 0.7x realtime on 2 cores; 2x would mean a real regression.
    assert jfk.seconds < 2 * jfk.transcript.duration


def test_same_file_same_transcript(tmp_path: Path, jfk: Run) -> None:
    clip = tmp_path / "clip.wav"
    data, sr = sf.read(jfk.wav, dtype="int16", frames=4 * 16000)  # a short clip keeps this quick
    sf.write(clip, data, sr, subtype="PCM_16")
    engine = PocketsphinxSTT()
    first = engine.transcribe(clip, "en").to_dict()
    assert first["segments"]
    assert engine.transcribe(clip, "en").to_dict() == first


def test_silence_gives_no_segments(tmp_path: Path) -> None:
    wav = tmp_path / "silence.wav"
    rng = np.random.default_rng(0)
    quiet = np.concatenate([np.zeros(3 * 16000), rng.normal(0, 1e-4, 2 * 16000)]).astype(np.float32)
    sf.write(wav, quiet, 16000, subtype="PCM_16")
    progress: list[float] = []
    t = PocketsphinxSTT().transcribe(wav, "en", progress.append)
    assert t.segments == []
    assert t.duration == pytest.approx(5.0)
    assert progress[-1] == 1.0


def test_empty_wav_gives_no_segments(tmp_path: Path) -> None:
    wav = tmp_path / "empty.wav"
    sf.write(wav, np.zeros(0, dtype=np.int16), 16000, subtype="PCM_16")
    t = PocketsphinxSTT().transcribe(wav, "auto")
    assert t.segments == [] and t.duration == 0.0


@pytest.mark.parametrize("language", ["es", "fr", "de"])
def test_non_english_is_refused_with_a_hint(tmp_path: Path, language: str) -> None:
    with pytest.raises(UnknownLanguage) as exc:
        PocketsphinxSTT().transcribe(tmp_path / "never-read.wav", language)
    assert "English" in exc.value.message
    assert "DUBSTUDIO_STT=deepgram" in exc.value.hint


def test_long_lines_split_at_the_widest_pause() -> None:
    # 12 words of 0.5 s with 0.2 s pauses, one 0.35 s pause after word 5: 8.4 s in all.
    words, t = [], 0.0
    for i in range(12):
        words.append(Word(f"w{i}", round(t, 3), round(t + 0.5, 3)))
        t += 0.5 + (0.35 if i == 4 else 0.2)
    parts = _split_long(words)
    assert [len(p) for p in parts] == [5, 7]
    assert all(p[-1].end - p[0].start <= MAX_SEGMENT_S for p in parts)
    assert _split_long(words[:5]) == [words[:5]]


def test_other_sample_rates_are_refused(tmp_path: Path) -> None:
    wav = tmp_path / "cd.wav"
    sf.write(wav, np.zeros(44100, dtype=np.int16), 44100, subtype="PCM_16")
    with pytest.raises(BadInput, match="16 kHz"):
        PocketsphinxSTT().transcribe(wav, "en")
