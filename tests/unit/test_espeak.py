"""The offline espeak-ng voice: real synthesis through the helper process, no mocks."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from dubstudio.domain import Speech
from dubstudio.errors import UnknownLanguage
from dubstudio.vendors.offline.espeak import EspeakTTS, voice_for, wpm_for

EN = "Hello world. This is a test of the offline voice."
ES = "Hola mundo. Esta es una prueba de la voz sin conexión."


@pytest.fixture(scope="module")
def tts() -> Iterator[EspeakTTS]:
    engine = EspeakTTS()
    yield engine
    engine.close()


def duration(speech: Speech) -> float:
    return len(speech.samples) / speech.sample_rate


@pytest.mark.parametrize(("text", "language"), [(EN, "en"), (ES, "es")])
def test_speaks_audible_audio_of_plausible_length(tts: EspeakTTS, text: str, language: str) -> None:
    speech = tts.synthesize(text, language)
    assert speech.samples.dtype == np.float32
    assert speech.samples.ndim == 1
    assert speech.sample_rate == 22050
    assert 0.5 < duration(speech) < 10
    assert float(np.sqrt(np.mean(speech.samples ** 2))) > 0.01  # not silence
    assert float(np.abs(speech.samples).max()) <= 1.0


def test_same_line_twice_is_byte_identical_even_with_other_lines_between(tts: EspeakTTS) -> None:
    first = tts.synthesize(EN, "en").samples.tobytes()
    assert tts.synthesize(EN, "en").samples.tobytes() == first
    tts.synthesize(ES, "es")
    tts.synthesize("Something else entirely, said a little faster.", "en", rate=1.3)
    assert tts.synthesize(EN, "en").samples.tobytes() == first


def test_identical_across_two_server_processes(tts: EspeakTTS) -> None:
    with EspeakTTS() as other:
        assert other.synthesize(ES, "es").samples.tobytes() == tts.synthesize(ES, "es").samples.tobytes()


def test_faster_rate_gives_shorter_audio(tts: EspeakTTS) -> None:
    normal = tts.synthesize(EN, "en", rate=1.0)
    fast = tts.synthesize(EN, "en", rate=1.25)
    assert duration(fast) < duration(normal)
    assert wpm_for(1.0) == 175
    assert wpm_for(100.0) == 450 and wpm_for(0.01) == 80


def test_concurrent_calls_from_threads(tts: EspeakTTS) -> None:
    lines = [f"Line number {i} of the queue." for i in range(8)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda t: tts.synthesize(t, "en").samples.tobytes(), lines))
    assert all(len(r) > 0 for r in results)
    assert results[3] == tts.synthesize(lines[3], "en").samples.tobytes()


def test_server_restarts_after_it_dies(tts: EspeakTTS) -> None:
    before = tts.synthesize("Still here.", "en").samples.tobytes()
    proc = tts._server.proc
    assert proc is not None
    proc.kill()
    proc.wait()
    assert tts.synthesize("Still here.", "en").samples.tobytes() == before


def test_blank_text_is_empty_speech(tts: EspeakTTS) -> None:
    speech = tts.synthesize("  \n\t", "en")
    assert speech.samples.size == 0


def test_word_timings(tts: EspeakTTS) -> None:
    speech, words = tts.synthesize_words("Hola mundo, qué tal.", "es")
    assert [w.text for w in words] == ["Hola", "mundo", "qué", "tal"]
    assert all(0 <= w.start <= w.end <= duration(speech) + 1e-3 for w in words)
    assert [w.start for w in words] == sorted(w.start for w in words)


def test_voices_for_languages() -> None:
    assert voice_for("en") == "en-us"
    assert voice_for("es") == "es"
    assert voice_for("fr") == "fr-fr"
    assert voice_for("pt-BR") == "pt-br"
    assert voice_for("zh") == "cmn"


def test_unknown_language_raises(tts: EspeakTTS) -> None:
    with pytest.raises(UnknownLanguage) as err:
        tts.synthesize("Hello", "xx")
    assert "es" in err.value.hint
    with pytest.raises(UnknownLanguage):
        voice_for("klingon")
