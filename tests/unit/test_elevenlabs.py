"""ElevenLabs TTS over httpx, against the fake ElevenLabs on loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from dubstudio.errors import ConfigError, PermanentVendorError, UnknownLanguage, VendorError
from dubstudio.vendors.elevenlabs import PREMADE_VOICES, ElevenLabsTTS, parse_voice_setting
from tests.fakes.elevenlabs_server import FakeElevenLabs
from tests.fakes.servers import serve

KEY = "el-test-key"
TEXT = "Hello there, friend."  # 20 characters: 1.4 s at the fake's 70 ms per character


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[FakeElevenLabs, str]]:
    fake = FakeElevenLabs()
    with serve(fake) as url:
        yield fake, url


@pytest.fixture
def fake(server: tuple[FakeElevenLabs, str]) -> FakeElevenLabs:
    server[0].reset()
    return server[0]


@pytest.fixture
def url(server: tuple[FakeElevenLabs, str]) -> str:
    return server[1]


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def tts(url: str, sleeps: list[float]) -> Iterator[ElevenLabsTTS]:
    with ElevenLabsTTS(KEY, url, timeout=2.0, retries=3, concurrency=4, backoff=0.01, sleep=sleeps.append) as engine:
        yield engine


def test_speech_has_the_expected_length_and_format(tts: ElevenLabsTTS, fake: FakeElevenLabs) -> None:
    speech = tts.synthesize(TEXT, "es")

    assert speech.sample_rate == 24000
    assert speech.samples.dtype == np.float32 and speech.samples.ndim == 1
    assert len(speech.samples) / speech.sample_rate == pytest.approx(1.4, abs=0.001)
    assert 0.2 < float(np.abs(speech.samples).max()) <= 1.0
    request = fake.tts_requests[-1]
    assert request["voice_id"] == PREMADE_VOICES[0]
    assert request["query"] == {"output_format": "pcm_24000"}
    assert request["body"] == {"text": TEXT, "model_id": "eleven_multilingual_v2"}
    assert tts.name == "elevenlabs:eleven_multilingual_v2" and tts.max_rate == 1.2


def test_rate_is_sent_as_voice_speed_within_the_documented_range(tts: ElevenLabsTTS, fake: FakeElevenLabs) -> None:
    fast = tts.synthesize(TEXT, "en", rate=1.1)
    assert fake.tts_requests[-1]["body"]["voice_settings"] == {"speed": 1.1}
    assert len(fast.samples) / fast.sample_rate == pytest.approx(1.4 / 1.1, abs=0.001)
    tts.synthesize(TEXT, "en", rate=1.35)
    assert fake.tts_requests[-1]["body"]["voice_settings"] == {"speed": 1.2}


def test_language_code_goes_only_to_models_that_take_it(url: str, fake: FakeElevenLabs) -> None:
    with ElevenLabsTTS(KEY, url, model="eleven_flash_v2_5", timeout=2, retries=0) as engine:
        assert engine.name == "elevenlabs:eleven_flash_v2_5"
        engine.synthesize(TEXT, "pt-BR")
    assert fake.tts_requests[-1]["body"]["language_code"] == "pt"


def test_default_voices_are_distinct_premade_voices_for_every_language(tts: ElevenLabsTTS) -> None:
    for lang in ("en", "es", "de", "ja", "fil"):
        voices = tts.voices(lang)
        assert voices == PREMADE_VOICES and len(set(voices)) == len(voices) >= 4
    with pytest.raises(UnknownLanguage, match="DUBSTUDIO_TTS"):
        tts.voices("xx")


def test_distinct_speakers_get_distinct_voices(tts: ElevenLabsTTS, fake: FakeElevenLabs) -> None:
    first, second = tts.voices("fr")[:2]
    a, b = tts.synthesize(TEXT, "fr", voice=first), tts.synthesize(TEXT, "fr", voice=second)
    assert [r["voice_id"] for r in fake.tts_requests] == [first, second]
    assert len(a.samples) == len(b.samples) and not np.allclose(a.samples, b.samples)


def test_configured_voices(url: str, fake: FakeElevenLabs) -> None:
    voices = parse_voice_setting("JBFqnCBsd6RMkjVDRZzb, EXAVITQu4vr4xnSDxMaL; es=IKne3meq5aSn9XLyUdCD")
    assert voices == {"*": ["JBFqnCBsd6RMkjVDRZzb", "EXAVITQu4vr4xnSDxMaL"], "es": ["IKne3meq5aSn9XLyUdCD"]}
    assert parse_voice_setting("  ") is None
    with ElevenLabsTTS(KEY, url, voices=voices, timeout=2, retries=0) as engine:
        assert engine.voices("en") == ["JBFqnCBsd6RMkjVDRZzb", "EXAVITQu4vr4xnSDxMaL"]
        assert engine.voices("es") == ["IKne3meq5aSn9XLyUdCD"]
        engine.synthesize(TEXT, "es")
    assert fake.tts_requests[-1]["voice_id"] == "IKne3meq5aSn9XLyUdCD"


@pytest.mark.parametrize("fault", [429, 500, 503, "drop", "malformed", "slow"])
def test_transient_faults_are_retried(fault: object, url: str, fake: FakeElevenLabs, sleeps: list[float]) -> None:
    fake.fail_next.append(fault)
    fake.retry_after, fake.slow_seconds = "2", 0.8
    with ElevenLabsTTS(KEY, url, timeout=0.4, retries=2, backoff=0.01, sleep=sleeps.append) as engine:
        speech = engine.synthesize(TEXT, "en")
    assert len(speech.samples) == int(1.4 * 24000)
    assert fake.calls["tts"] == 2
    if fault in (429, 503):
        assert sleeps == [2.0]  # the server's Retry-After, longer than our backoff


def test_a_wrong_key_fails_fast_without_retries(url: str, fake: FakeElevenLabs, sleeps: list[float]) -> None:
    started = time.monotonic()
    with ElevenLabsTTS("wrong-key", url, timeout=2, retries=5, sleep=sleeps.append) as engine, \
            pytest.raises(PermanentVendorError) as info:
        engine.synthesize(TEXT, "en")
    assert time.monotonic() - started < 1.0
    assert "ELEVENLABS_API_KEY" in str(info.value) and "401" in str(info.value)
    assert fake.calls["tts"] == 1 and sleeps == []


@pytest.mark.parametrize(("fault", "words"), [("quota", "quota"), (403, "ELEVENLABS_API_KEY"), (400, "400")])
def test_permanent_refusals_are_not_retried(fault: object, words: str, tts: ElevenLabsTTS,
                                            fake: FakeElevenLabs) -> None:
    fake.fail_next.append(fault)
    with pytest.raises(PermanentVendorError) as info:
        tts.synthesize(TEXT, "en")
    assert words in str(info.value)
    assert fake.calls["tts"] == 1


def test_an_unknown_voice_is_permanent(tts: ElevenLabsTTS, fake: FakeElevenLabs) -> None:
    with pytest.raises(PermanentVendorError, match="DUBSTUDIO_ELEVENLABS_VOICES"):
        tts.synthesize(TEXT, "en", voice="no-such-voice")
    assert fake.calls["tts"] == 1


def test_an_exhausted_quota_is_permanent(tts: ElevenLabsTTS, fake: FakeElevenLabs) -> None:
    fake.character_limit = 25
    tts.synthesize(TEXT, "en")
    with pytest.raises(PermanentVendorError, match="quota"):
        tts.synthesize(TEXT, "en")
    assert fake.calls["tts"] == 2


def test_attempts_are_bounded(tts: ElevenLabsTTS, fake: FakeElevenLabs, sleeps: list[float]) -> None:
    fake.fail_next.extend([500] * 10)
    with pytest.raises(VendorError) as info:
        tts.synthesize(TEXT, "en")
    assert not isinstance(info.value, PermanentVendorError)
    assert fake.calls["tts"] == 4 and len(sleeps) == 3


def test_random_transient_faults_are_absorbed(url: str, fake: FakeElevenLabs, sleeps: list[float]) -> None:
    fake.reset(fail_rate=0.3, seed=3)
    with ElevenLabsTTS(KEY, url, timeout=2, retries=8, backoff=0.01, sleep=sleeps.append) as engine:
        lengths = [len(engine.synthesize(f"Line number {i}.", "en").samples) for i in range(10)]
    assert all(n > 0 for n in lengths)
    assert fake.calls["tts"] > 10


def test_concurrency_is_limited(url: str, fake: FakeElevenLabs) -> None:
    fake.latency = 0.15
    errors: list[BaseException] = []
    with ElevenLabsTTS(KEY, url, timeout=5, retries=0, concurrency=3) as engine:
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
    assert fake.calls["tts"] == 8
    assert fake.max_in_flight == 3


def test_check_and_account_voices(tts: ElevenLabsTTS, fake: FakeElevenLabs, url: str) -> None:
    tts.synthesize(TEXT, "en")
    sub = tts.check()
    assert sub["tier"] == "creator" and sub["character_count"] == len(TEXT) and sub["character_limit"] == 100_000
    voices = tts.account_voices()
    assert [v["voice_id"] for v in voices] == PREMADE_VOICES
    assert {v["category"] for v in voices} == {"premade"} and voices[0]["labels"]["gender"] == "female"
    with ElevenLabsTTS("wrong", url, timeout=2, retries=3) as bad, pytest.raises(PermanentVendorError):
        bad.check()
    assert fake.calls["user"] == 2 and fake.calls["voices"] == 1


def test_empty_text_needs_no_call(tts: ElevenLabsTTS, fake: FakeElevenLabs) -> None:
    assert len(tts.synthesize("  ", "en").samples) == 0
    assert fake.calls["tts"] == 0


def test_a_missing_key_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="ELEVENLABS_API_KEY"):
        ElevenLabsTTS(None, url)
