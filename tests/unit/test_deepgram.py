"""Deepgram STT and TTS through the official SDK, against the fake Deepgram on loopback."""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dubstudio.domain import Word
from dubstudio.errors import ConfigError, PermanentVendorError, UnknownLanguage, VendorError
from dubstudio.vendors.deepgram import (
    AURA2_VOICES,
    DeepgramSTT,
    DeepgramTTS,
    decode_wav,
    environment,
    flac_upload,
    split_long,
)
from tests.fakes.deepgram_server import FakeDeepgram
from tests.fakes.servers import serve

KEY = "dg-test-key"
SR = 16000
BURSTS = [(0.0, 1.0), (1.6, 3.2), (3.8, 4.6)]  # voiced stretches of the test recording (seconds)
SPEECH = Path(__file__).resolve().parents[3] / "shared" / "media" / "speech-26s.wav"


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[FakeDeepgram, str]]:
    fake = FakeDeepgram()
    with serve(fake) as url:
        yield fake, url


@pytest.fixture
def fake(server: tuple[FakeDeepgram, str]) -> FakeDeepgram:
    server[0].reset()
    return server[0]


@pytest.fixture
def url(server: tuple[FakeDeepgram, str]) -> str:
    return server[1]


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def stt(url: str, sleeps: list[float]) -> Iterator[DeepgramSTT]:
    with DeepgramSTT(KEY, url, timeout=2.0, retries=3, backoff=0.01, sleep=sleeps.append) as engine:
        yield engine


@pytest.fixture
def tts(url: str, sleeps: list[float]) -> Iterator[DeepgramTTS]:
    with DeepgramTTS(KEY, url, timeout=2.0, retries=3, concurrency=4, backoff=0.01, sleep=sleeps.append) as engine:
        yield engine


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    """Three tone bursts separated by silence, 16 kHz mono."""
    total = BURSTS[-1][1]
    y = np.zeros(int(total * SR), dtype=np.float32)
    for a, b in BURSTS:
        t = np.arange(int((b - a) * SR)) / SR
        y[int(a * SR):int(a * SR) + len(t)] = 0.3 * np.sin(2 * np.pi * 180 * t)
    path = tmp_path / "three.wav"
    sf.write(path, y, SR, subtype="PCM_16")
    return path


# ------------------------------------------------------------------------------------------- STT


def test_transcription_maps_utterances_speakers_and_words(stt: DeepgramSTT, fake: FakeDeepgram, wav: Path) -> None:
    transcript = stt.transcribe(wav, "auto")

    assert stt.name == "deepgram:nova-3"
    assert transcript.language == "en"
    assert transcript.duration == pytest.approx(4.6, abs=0.01)
    segs = transcript.segments
    assert [s.id for s in segs] == ["seg-0001", "seg-0002", "seg-0003"]
    assert [s.speaker for s in segs] == ["S1", "S2", "S1"]
    assert [s.text for s in segs] == ["And so.", "My fellow americans ask.", "Not what."]
    for seg, (a, b) in zip(segs, BURSTS, strict=True):
        assert seg.start == pytest.approx(a, abs=0.05)
        assert a <= seg.end <= b + 0.05
        assert all(isinstance(w, Word) and seg.start <= w.start < w.end <= seg.end for w in seg.words)
        assert " ".join(w.text for w in seg.words) == seg.text
    query = fake.listen_requests[-1]["query"]
    assert query == {"model": "nova-3", "smart_format": "true", "punctuate": "true", "utterances": "true",
                     "diarize": "true", "detect_language": "true"}


def test_a_given_language_is_sent_and_reported(stt: DeepgramSTT, fake: FakeDeepgram, wav: Path) -> None:
    transcript = stt.transcribe(wav, "es")
    assert transcript.language == "es"
    query = fake.listen_requests[-1]["query"]
    assert query["language"] == "es" and "detect_language" not in query


def test_the_detected_language_is_reported(stt: DeepgramSTT, fake: FakeDeepgram, wav: Path) -> None:
    fake.language = "fr"
    assert stt.transcribe(wav, "auto").language == "fr"


def test_without_utterances_words_are_grouped_at_pauses(stt: DeepgramSTT, fake: FakeDeepgram, wav: Path) -> None:
    fake.include_utterances = False
    segs = stt.transcribe(wav, "auto").segments
    assert [s.text for s in segs] == ["And so.", "My fellow americans ask.", "Not what."]
    assert [s.speaker for s in segs] == ["S1", "S2", "S1"]


def test_the_audio_is_streamed_from_disk_as_flac(stt: DeepgramSTT, fake: FakeDeepgram, tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    t = np.arange(30 * SR) / SR
    tone = 0.3 * np.sin(2 * np.pi * 150 * t) * (np.sin(2 * np.pi * 0.25 * t) > 0)
    noise = 0.01 * np.random.default_rng(0).standard_normal(len(t))  # a bare tone would fit in one piece
    sf.write(path, (tone + noise).astype(np.float32), SR, subtype="PCM_16")
    seen: list[float] = []
    transcript = stt.transcribe(path, "auto", progress=seen.append)

    request = fake.listen_requests[-1]
    assert request["chunked"] and "content-length" not in request["headers"]  # a generator, not one buffer
    assert request["magic"] == b"fLaC" and request["bytes"] < 0.7 * path.stat().st_size
    assert request["pieces"] >= 2
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) >= 3
    assert len(transcript.segments) >= 5
    assert not list(Path(tempfile.gettempdir()).glob("dubstudio-stt-*.flac"))  # the copy is gone


def test_the_flac_upload_is_lossless(wav: Path) -> None:
    with flac_upload(wav) as flac:
        assert flac.suffix == ".flac"
        decoded, rate = sf.read(flac, dtype="int16")
    original, _ = sf.read(wav, dtype="int16")
    assert rate == SR and np.array_equal(decoded, original)
    assert not flac.exists()


def test_a_file_libsndfile_cannot_read_is_uploaded_as_it_is(stt: DeepgramSTT, fake: FakeDeepgram,
                                                             tmp_path: Path) -> None:
    path = tmp_path / "noise.wav"
    path.write_bytes(b"not audio at all" * 100)
    with pytest.raises(PermanentVendorError, match="400"):
        stt.transcribe(path, "auto")
    assert fake.calls["listen"] == 1  # refused by the fake as Deepgram does, not retried
    assert fake.listen_requests[-1]["magic"] == b"not " and fake.listen_requests[-1]["bytes"] == 1600


def test_a_real_recording_gives_timed_lines(stt: DeepgramSTT, fake: FakeDeepgram) -> None:
    transcript = stt.transcribe(SPEECH, "auto")
    assert transcript.duration == pytest.approx(sf.info(str(SPEECH)).duration, abs=0.01)
    assert transcript.segments
    starts = [s.start for s in transcript.segments]
    assert starts == sorted(starts)
    assert all(s.end - s.start <= 10.0 + 1e-6 for s in transcript.segments)
    assert fake.listen_requests[-1]["pieces"] >= 2


@pytest.mark.parametrize("fault", [429, 500, 503, "drop", "malformed", "slow"])
def test_transient_faults_are_retried(fault: object, url: str, fake: FakeDeepgram, wav: Path,
                                      sleeps: list[float]) -> None:
    fake.fail_next.append(fault)
    fake.retry_after, fake.slow_seconds = "2", 0.8
    with DeepgramSTT(KEY, url, timeout=0.4, retries=2, backoff=0.01, sleep=sleeps.append) as engine:
        transcript = engine.transcribe(wav, "auto")
    assert len(transcript.segments) == 3
    assert fake.calls["listen"] == 2
    if fault in (429, 503):
        assert sleeps == [2.0]  # the server's Retry-After, longer than our backoff


def test_a_wrong_key_fails_fast_without_retries(url: str, fake: FakeDeepgram, wav: Path, sleeps: list[float]) -> None:
    started = time.monotonic()
    with DeepgramSTT("wrong-key", url, timeout=2, retries=5, sleep=sleeps.append) as engine, \
            pytest.raises(PermanentVendorError) as info:
        engine.transcribe(wav, "auto")
    assert time.monotonic() - started < 1.0
    assert "DEEPGRAM_API_KEY" in str(info.value) and "401" in str(info.value)
    assert fake.calls["listen"] == 1 and sleeps == []


@pytest.mark.parametrize(("fault", "words"), [(402, "credit"), ("quota", "credit"), (400, "400"), (403, "key")])
def test_permanent_refusals_are_not_retried(fault: object, words: str, stt: DeepgramSTT, fake: FakeDeepgram,
                                            wav: Path) -> None:
    fake.fail_next.append(fault)
    with pytest.raises(PermanentVendorError) as info:
        stt.transcribe(wav, "auto")
    assert words in str(info.value)
    assert fake.calls["listen"] == 1


def test_attempts_are_bounded(stt: DeepgramSTT, fake: FakeDeepgram, wav: Path, sleeps: list[float]) -> None:
    fake.fail_next.extend([500] * 10)
    with pytest.raises(VendorError) as info:
        stt.transcribe(wav, "auto")
    assert not isinstance(info.value, PermanentVendorError)
    assert fake.calls["listen"] == 4  # retries=3: four tries in all
    assert len(sleeps) == 3
    assert info.value.details["attempts"] == 4


def test_a_missing_file_is_bad_input(stt: DeepgramSTT, tmp_path: Path, fake: FakeDeepgram) -> None:
    with pytest.raises(Exception, match="No audio file"):
        stt.transcribe(tmp_path / "nope.wav", "auto")
    assert fake.calls["listen"] == 0


def test_split_long_prefers_sentence_ends() -> None:
    words = [Word(f"w{i}" + ("." if i == 9 else ""), i * 1.0, i * 1.0 + 0.8) for i in range(16)]
    parts = split_long(words)
    assert [len(p) for p in parts] == [10, 6]
    assert all(p[-1].end - p[0].start <= 10.0 for p in parts)


# ------------------------------------------------------------------------------------------- TTS


def test_speech_has_the_expected_length_and_format(tts: DeepgramTTS, fake: FakeDeepgram) -> None:
    text = "Hello there, friend."  # 20 characters: 1.4 s at 70 ms per character
    speech = tts.synthesize(text, "en")

    assert speech.sample_rate == 24000
    assert speech.samples.dtype == np.float32 and speech.samples.ndim == 1
    assert len(speech.samples) / speech.sample_rate == pytest.approx(1.4, abs=0.001)
    assert 0.2 < float(np.abs(speech.samples).max()) <= 1.0
    query = fake.speak_requests[-1]["query"]
    assert query == {"model": "aura-2-thalia-en", "encoding": "linear16", "container": "wav", "sample_rate": "24000"}
    assert tts.name == "deepgram:aura-2" and tts.max_rate == 1.5


def test_rate_is_sent_as_speed_within_the_documented_range(tts: DeepgramTTS, fake: FakeDeepgram) -> None:
    text = "Hello there, friend."
    fast = tts.synthesize(text, "en", rate=1.25)
    assert fake.speak_requests[-1]["query"]["speed"] == "1.25"
    assert len(fast.samples) / fast.sample_rate == pytest.approx(1.4 / 1.25, abs=0.001)
    tts.synthesize(text, "es", rate=3.0)
    assert fake.speak_requests[-1]["query"]["speed"] == "1.5"
    tts.synthesize(text, "de", rate=1.3)  # speed is documented for English and Spanish only
    assert "speed" not in fake.speak_requests[-1]["query"]
    assert tts.max_rate_for("de") == 1.0 and tts.max_rate_for("es-MX") == 1.5


def test_voices_per_language_are_distinct(tts: DeepgramTTS) -> None:
    for lang, voices in AURA2_VOICES.items():
        got = tts.voices(lang)
        assert got == voices and len(got) >= 2 and len(set(got)) == len(got)
        assert all(v.startswith("aura-2-") and v.endswith(f"-{lang}") for v in got)
    assert tts.voices("en-GB") == AURA2_VOICES["en"]
    with pytest.raises(UnknownLanguage):
        tts.voices("pt")


def test_distinct_speakers_get_distinct_voices(tts: DeepgramTTS, fake: FakeDeepgram) -> None:
    first, second = tts.voices("es")[:2]
    a = tts.synthesize("Hola a todos.", "es", voice=first)
    b = tts.synthesize("Hola a todos.", "es", voice=second)
    assert [r["query"]["model"] for r in fake.speak_requests] == [first, second]
    assert len(a.samples) == len(b.samples) and not np.allclose(a.samples, b.samples)


def test_configured_voices_replace_the_table(url: str, fake: FakeDeepgram) -> None:
    with DeepgramTTS(KEY, url, timeout=2, retries=0, voices={"en": ["aura-2-zeus-en"]}) as engine:
        assert engine.voices("en") == ["aura-2-zeus-en"]
        assert engine.voices("fr") == AURA2_VOICES["fr"]


@pytest.mark.parametrize("fault", [429, 500, "drop", "malformed", "slow"])
def test_tts_transient_faults_are_retried_including_mid_stream(fault: object, url: str, fake: FakeDeepgram,
                                                               sleeps: list[float]) -> None:
    fake.fail_next.append(fault)
    fake.retry_after, fake.slow_seconds = "1", 0.8
    with DeepgramTTS(KEY, url, timeout=0.4, retries=2, backoff=0.01, sleep=sleeps.append) as engine:
        speech = engine.synthesize("Hello there, friend.", "en")
    assert len(speech.samples) == int(1.4 * 24000)
    assert fake.calls["speak"] == 2
    if fault == 429:
        assert sleeps == [1.0]


def test_tts_wrong_key_fails_fast_without_retries(url: str, fake: FakeDeepgram, sleeps: list[float]) -> None:
    started = time.monotonic()
    with DeepgramTTS("nope", url, timeout=2, retries=5, sleep=sleeps.append) as engine, \
            pytest.raises(PermanentVendorError, match="DEEPGRAM_API_KEY"):
        engine.synthesize("Hello", "en")
    assert time.monotonic() - started < 1.0
    assert fake.calls["speak"] == 1 and sleeps == []


def test_tts_attempts_are_bounded(tts: DeepgramTTS, fake: FakeDeepgram) -> None:
    fake.fail_next.extend([500] * 10)
    with pytest.raises(VendorError):
        tts.synthesize("Hello", "en")
    assert fake.calls["speak"] == 4


def test_random_transient_faults_are_absorbed(url: str, fake: FakeDeepgram, sleeps: list[float]) -> None:
    fake.reset(fail_rate=0.3, seed=7)
    with DeepgramTTS(KEY, url, timeout=2, retries=8, backoff=0.01, sleep=sleeps.append) as engine:
        lengths = [len(engine.synthesize(f"Line number {i}.", "en").samples) for i in range(10)]
    assert all(n > 0 for n in lengths)
    assert fake.calls["speak"] > 10  # some calls failed and were retried


def test_concurrency_is_limited(url: str, fake: FakeDeepgram) -> None:
    fake.latency = 0.15
    errors: list[BaseException] = []
    with DeepgramTTS(KEY, url, timeout=5, retries=0, concurrency=3) as engine:
        def speak(i: int) -> None:
            try:
                engine.synthesize(f"Line {i}.", "en")
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=speak, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    assert not errors
    assert fake.calls["speak"] == 8
    assert fake.max_in_flight == 3


def test_empty_text_needs_no_call(tts: DeepgramTTS, fake: FakeDeepgram) -> None:
    speech = tts.synthesize("   ", "en")
    assert len(speech.samples) == 0 and fake.calls["speak"] == 0


def test_a_missing_key_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="DEEPGRAM_API_KEY"):
        DeepgramTTS(None, url)
    with pytest.raises(ConfigError, match="DEEPGRAM_API_KEY"):
        DeepgramSTT("", url)


def test_environment_for_a_custom_base_url() -> None:
    env = environment("http://127.0.0.1:8123/dg/")
    assert (env.base, env.production, env.agent_rest) == (
        "http://127.0.0.1:8123/dg", "ws://127.0.0.1:8123/dg", "http://127.0.0.1:8123/dg")
    assert environment("https://dg.example.com").production == "wss://dg.example.com"
    assert environment("https://api.deepgram.com/").agent == "wss://agent.deepgram.com"


def test_decode_wav_rejects_truncated_audio_and_accepts_streaming_placeholders() -> None:
    pcm = (np.arange(100, dtype="<i2") * 100).tobytes()
    header = b"RIFF" + (36 + len(pcm)).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
    header += (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (24000).to_bytes(4, "little")
    header += (48000).to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
    samples, rate = decode_wav(header + b"data" + len(pcm).to_bytes(4, "little") + pcm)
    assert rate == 24000 and len(samples) == 100 and samples[1] == pytest.approx(100 / 32768)
    with pytest.raises(ValueError, match="truncated"):
        decode_wav(header + b"data" + len(pcm).to_bytes(4, "little") + pcm[:100])
    placeholder, _ = decode_wav(header + b"data" + (0xFFFFFFFF).to_bytes(4, "little") + pcm)
    assert len(placeholder) == 100
    with pytest.raises(ValueError):
        decode_wav(b"not a wav at all")
