"""Forced alignment of a known transcript (offline engine): word times that follow the speech."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import pytest

from dubstudio.pipeline.media import ffmpeg_exe
from dubstudio.vendors.offline.pocketsphinx_stt import PocketsphinxSTT
from tests.conftest import JFK

TEXT = "And so, my fellow Americans, ask not what your country can do for you, ask what you can do for your country."


@pytest.fixture(scope="module")
def jfk16(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("align") / "jfk.wav"
    subprocess.run([ffmpeg_exe(), "-y", "-v", "error", "-i", str(JFK), "-ac", "1", "-ar", "16000", str(out)],
                   check=True)
    return out


def test_a_known_transcript_gets_word_times_from_the_speech(jfk16: Path) -> None:
    words = PocketsphinxSTT().align(jfk16, 0.0, 11.0, TEXT)
    assert [w.text for w in words][:5] == ["And", "so", "my", "fellow", "Americans"]
    assert all(a.end <= b.start + 1e-6 for a, b in itertools.pairwise(words))
    first = {w.text: w for w in reversed(words)}  # each word's first occurrence
    assert 1.0 < first["Americans"].start < 2.5 and 5.0 < first["what"].start < 6.0  # not spread evenly
    assert words[0].start > 0.1  # the silence before the first word is left out


def test_words_the_dictionary_lacks_are_spread_over_the_line(jfk16: Path) -> None:
    words = PocketsphinxSTT().align(jfk16, 1.0, 3.0, "Zxqv blorptastic")
    assert [(w.start, w.end) for w in words] == [(1.0, 2.0), (2.0, 3.0)]
