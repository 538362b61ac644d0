"""The pipeline's pure parts: captions within limits, placement anchored, ducking shaped, imports one way."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dubstudio.domain import Segment, Word
from dubstudio.pipeline import captions, fit, mix, synthesize

PIPELINE = Path(__file__).resolve().parents[2] / "dubstudio" / "pipeline"


def test_captions_keep_the_limits() -> None:
    long = " ".join(["word"] * 60)
    words = [Word(f"w{i}", 30 + i * 0.4, 30 + i * 0.4 + 0.3) for i in range(50)]
    items = [captions.Item(0.0, 3.0, "short line"), captions.Item(3.2, 20.0, long),
             captions.Item(20.5, 20.6, "blink"), captions.Item(30.0, 50.0, " ".join(w.text for w in words), words)]
    cues = captions.cues(items)
    for cue in cues:
        lines = cue.content.split("\n")
        assert len(lines) <= 2 and all(len(x) <= 42 for x in lines)
        assert 5 / 6 - 1e-9 <= (cue.end - cue.start).total_seconds() <= 7.0
    for a, b in itertools.pairwise(cues):
        assert a.end <= b.start
    on_words = [c for c in cues if c.start.total_seconds() >= 30]
    assert len(on_words) > 1 and {c.start.total_seconds() for c in on_words} <= {round(w.start, 3) for w in words}


def test_a_line_too_long_for_its_room_is_stretched_within_the_cap_and_the_rest_is_overflow(tmp_path: Path) -> None:
    rate = 8000
    source = tmp_path / "source.wav"
    sf.write(source, 0.1 * np.ones(rate * 10, dtype=np.float32), rate)
    segs = [Segment("a", 1.0, 2.0, "one"), Segment("b", 3.0, 4.0, "two"), Segment("c", 8.0, 9.0, "three")]
    rooms = synthesize.rooms(segs, 10.0)
    assert rooms == pytest.approx([1.9, 4.9, 2.0])
    lines = []
    for seg, room, seconds in zip(segs, rooms, (0.5, 7.0, 1.0), strict=True):  # b: far too long for 4.9 s
        name = f"{seg.id}.wav"
        sf.write(tmp_path / name, 0.3 * np.ones(int(rate * seconds), dtype=np.float32), rate, subtype="FLOAT")
        lines.append(synthesize.Line(seg.id, seg.text, "v", room, seconds, seconds, clip=name))
    decisions, placements = fit.run(segs, lines, tmp_path, rate, source, tmp_path / "fitted", max_speedup=1.25)
    by = {d.segment_id: d for d in decisions}
    for seg in segs:
        assert abs(by[seg.id].dub_start - seg.start) <= 0.040
    assert by["a"].stretch == 1.0 and by["a"].overflow == 0.0 and by["a"].borrowed == 0.0
    assert by["b"].stretch == 1.25 and by["b"].overflow > 0
    assert by["b"].dub_end <= segs[2].start - synthesize.GAP + 1e-6
    assert [p.start_sample for p in placements] == [rate * 1, rate * 3, rate * 8]


def test_the_stretch_keeps_the_pitch_gives_the_exact_length_and_is_deterministic() -> None:
    rate = 48000
    t = np.arange(2 * rate) / rate
    tone = (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    out = fit._stretch(tone, 1.25, rate)
    assert out.dtype == np.float32 and out.size == round(tone.size / 1.25)
    spectrum = np.abs(np.fft.rfft(out * np.hanning(out.size)))
    assert np.argmax(spectrum) * rate / out.size == pytest.approx(220, abs=2)
    assert 0.3 < float(np.max(np.abs(out))) < 0.7  # the tone's level, not silence or a burst
    assert fit._stretch(tone, 1.25, rate).tobytes() == out.tobytes()
    noise = np.random.default_rng(7).uniform(-0.1, 0.1, 12 * rate + 5).astype(np.float32)  # > 2**19 samples
    assert fit._stretch(noise, 1.3, rate).size == round(noise.size / 1.3)


def test_ducking_ramps_down_around_speech() -> None:
    env = mix._duck_envelope(0, 1000, [(400, 600)], duck=0.2, ramp=100)
    assert env[0] == 1.0 and env[999] == 1.0
    assert np.allclose(env[400:601], 0.2)
    assert 0.2 < env[350] < 1.0 and np.all(np.diff(env[290:401]) <= 0)


def test_the_pipeline_knows_nothing_of_the_database_the_queue_or_the_web() -> None:
    banned = ("sqlalchemy", "huey", "nicegui", "fastapi", "dubstudio.db", "dubstudio.tasks", "dubstudio.api")
    for path in PIPELINE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            relative = node.module or "" if isinstance(node, ast.ImportFrom) and node.level > 0 else ""
            for name in [*names, "dubstudio." + relative.lstrip(".") if relative.startswith(("db", "tasks")) else ""]:
                assert not name.startswith(banned), f"{path.name} imports {name}"
