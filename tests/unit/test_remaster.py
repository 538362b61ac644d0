"""remaster: a stretch of a master remade in place is byte for byte what a full mix and master at the
same gain and limit write, also where the limiter works hard, at either end of the file and over stems."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dubstudio.pipeline import media, mix, remaster
from dubstudio.pipeline.fit import Placement
from tests.conftest import MEDIA

RATE = 48000
DUCK_DB, RAMP_MS, LIMIT_DB = -14.0, 150.0, -2.0


def tone(path: Path, seconds: float, hz: float, level: float) -> Path:
    t = np.arange(int(seconds * RATE)) / RATE
    sf.write(path, (level * np.sin(2 * np.pi * hz * t)).astype(np.float32), RATE, subtype="FLOAT")
    return path


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real speech (26 s) at the mixing rate, a mono 16-bit WAV as ingest writes it."""
    d = tmp_path_factory.mktemp("source")
    media.decode(MEDIA / "speech-26s.wav", [(d / "source.wav", RATE)])
    return d / "source.wav"


def lines(d: Path) -> list[Placement]:
    rng = np.random.default_rng(5)
    return [Placement(int(t * RATE), tone(d / f"line{k}.wav", rng.uniform(0.8, 2.0), rng.uniform(150, 400),
                                          rng.uniform(0.2, 0.9)))
            for k, t in enumerate(np.arange(0.5, 18.0, 2.5))]


@pytest.mark.parametrize(("gain_db", "edited", "stems"), [(12.0, 3, False), (12.0, 0, False), (12.0, -1, False),
                                                          (0.0, 4, False), (12.0, 2, True)])
def test_a_patched_stretch_equals_a_full_remaster(source: Path, tmp_path: Path, gain_db: float, edited: int,
                                                   stems: bool) -> None:
    background = None
    if stems:  # a background shorter than the voice: padded with silence
        background = tmp_path / "background.wav"
        noise = np.random.default_rng(1).normal(0, 0.2, 15 * RATE).astype(np.float32)
        sf.write(background, noise, RATE, subtype="PCM_16")
    before = lines(tmp_path)
    mix.run(source, before, tmp_path / "mix.wav", tmp_path / "voice.wav", DUCK_DB, RAMP_MS, background)
    media.master(tmp_path / "mix.wav", gain_db, LIMIT_DB, tmp_path / "dub.wav", tmp_path / "dub.m4a")
    mixed = sf.read(tmp_path / "mix.wav")[0] * 10 ** (gain_db / 20)
    assert gain_db == 0 or np.mean(np.abs(mixed) > 10 ** (LIMIT_DB / 20)) > 0.05  # the limiter works hard

    k = edited % len(before)  # the edit: a louder, longer line in its place
    old = before[k]
    new = Placement(old.start_sample, tone(tmp_path / "new.wav", 2.2, 330.0, 0.95))
    after = [new if p is old else p for p in before]
    mix.run(source, after, tmp_path / "mix2.wav", tmp_path / "voice2.wav", DUCK_DB, RAMP_MS, background)
    media.master(tmp_path / "mix2.wav", gain_db, LIMIT_DB, tmp_path / "full.wav", tmp_path / "full.m4a")

    shutil.copyfile(tmp_path / "dub.wav", tmp_path / "patched.wav")
    shutil.copyfile(tmp_path / "voice.wav", tmp_path / "patched-voice.wav")
    ramp = mix.ramp_samples(RAMP_MS, RATE)
    end = old.start_sample + max(sf.info(old.clip).frames, sf.info(new.clip).frames)
    settings = remaster.Mastering(gain_db, LIMIT_DB, DUCK_DB, RAMP_MS)
    start, stop = remaster.patch(source, after, (old.start_sample - ramp, end + ramp), tmp_path / "patched.wav",
                                 tmp_path / "patched-voice.wav", settings, background)
    assert start <= old.start_sample - ramp and stop >= end + ramp
    assert (tmp_path / "patched.wav").read_bytes() == (tmp_path / "full.wav").read_bytes()
    assert (tmp_path / "patched-voice.wav").read_bytes() == (tmp_path / "voice2.wav").read_bytes()
    untouched = sf.read(tmp_path / "dub.wav", dtype="int32")[0]
    patched = sf.read(tmp_path / "patched.wav", dtype="int32")[0]
    assert np.array_equal(patched[:start], untouched[:start]) and np.array_equal(patched[stop:], untouched[stop:])


def test_a_limiter_that_never_rests_is_not_patched(source: Path, tmp_path: Path) -> None:
    placements = [Placement(RATE, tone(tmp_path / "line.wav", 18.0, 200.0, 0.9))]  # one tone, loud throughout
    mix.run(source, placements, tmp_path / "mix.wav", tmp_path / "voice.wav", DUCK_DB, RAMP_MS)
    media.master(tmp_path / "mix.wav", 6.0, LIMIT_DB, tmp_path / "dub.wav", tmp_path / "dub.m4a")
    before = (tmp_path / "dub.wav").read_bytes()
    with pytest.raises(remaster.NotPatchable):
        remaster.patch(source, placements, (10 * RATE, 11 * RATE), tmp_path / "dub.wav", tmp_path / "voice.wav",
                       remaster.Mastering(6.0, LIMIT_DB, DUCK_DB, RAMP_MS), look_seconds=3.0)
    assert (tmp_path / "dub.wav").read_bytes() == before
