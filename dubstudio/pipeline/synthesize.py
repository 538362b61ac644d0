"""synthesize: speak every line, and make a line that is too long for its room fit, in PRODUCT.md's
order: borrow the silence before the next line, ask the translator for a shorter line (bounded
attempts), then speak faster where the engine can. What is still too long is left to `fit`, which
time-stretches within the same overall cap and reports the rest as overflow.

Clips are cached by content (engine, voice, rate, language, text), and the translator's shorter lines
in `shorten.<language>.json`, so a rerun or a resume never pays for the same line twice.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ..domain import Segment
from ..vendors.base import TextToSpeech, Translator
from .audio import resample, write_wav

GAP = 0.1  # seconds kept free before the next line
SHORTEN_ATTEMPTS = 2


@dataclass
class Line:
    """What was spoken for one segment, and how it was made to fit its room."""

    segment_id: str
    text: str  # the translation actually spoken (shortened where it had to be)
    voice: str
    room: float  # seconds from the line's start to the next line (less GAP), or to the end
    natural: float  # length at the natural rate of the first translation
    length: float  # length of the clip
    rate: float = 1.0  # speaking rate asked of the engine
    attempts: int = 0  # shorter lines asked of the translator
    clip: str = ""  # file name in the clips folder; "" for an empty line


def rooms(segments: list[Segment], duration: float) -> list[float]:
    out = []
    for i, seg in enumerate(segments):
        end = segments[i + 1].start - GAP if i + 1 < len(segments) else duration
        out.append(max(0.0, end - seg.start))
    return out


def assign_voices(segments: list[Segment], tts: TextToSpeech, language: str,
                  chosen: dict[str, str] | None = None) -> dict[str, str]:
    """A voice per speaker: the one chosen in settings, else the engine's voices in order of first
    appearance, so distinct speakers sound distinct."""
    available = tts.voices(language)
    out: dict[str, str] = {}
    for seg in segments:
        if seg.speaker not in out:
            out[seg.speaker] = (chosen or {}).get(seg.speaker) or available[len(out) % len(available)]
    return out


def clip_name(engine: str, voice: str, rate: float, language: str, text: str) -> str:
    key = "\0".join([engine, voice, f"{rate:.4f}", language, text])
    return hashlib.sha256(key.encode()).hexdigest()[:24] + ".wav"


def trim_silence(samples: np.ndarray, sample_rate: int, threshold_db: float = -45.0) -> np.ndarray:
    """Cut leading and trailing silence so that speech starts exactly where it is placed."""
    hop = max(1, sample_rate // 100)
    frames = samples[: samples.size // hop * hop].reshape(-1, hop)
    if frames.size == 0:
        return samples[:0]
    level = 20 * np.log10(np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1)) + 1e-12)
    loud = np.flatnonzero(level > threshold_db)
    if loud.size == 0:
        return samples[:0]
    return samples[loud[0] * hop: (loud[-1] + 1) * hop]


class _ShortenCache:
    """The translator's shorter lines, kept on disk as they come (a resume asks nothing twice)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, str] = json.loads(path.read_text("utf-8")) if path.exists() else {}
        self.lock = threading.Lock()

    def get(self, key: str, make: Callable[[], str]) -> str:
        if key not in self.data:
            value = make()
            with self.lock:
                self.data[key] = value
                tmp = self.path.with_name(self.path.name + ".part")
                tmp.write_text(json.dumps(self.data, ensure_ascii=False, indent=0), "utf-8")
                tmp.replace(self.path)
        return self.data[key]


def _speak(tts: TextToSpeech, text: str, language: str, voice: str, rate: float, clip_dir: Path,
           sample_rate: int) -> tuple[str, float]:
    name = clip_name(tts.name, voice, rate, language, text)
    path = clip_dir / name
    if not path.exists():
        speech = tts.synthesize(text, language, voice=voice, rate=rate)
        samples = resample(np.asarray(speech.samples, dtype=np.float32), speech.sample_rate, sample_rate)
        write_wav(path, trim_silence(samples, sample_rate), sample_rate, subtype="FLOAT")
    return name, sf.info(path).frames / sample_rate


def run(tts: TextToSpeech, translator: Translator, segments: list[Segment], translations: dict[str, str],
        source_language: str, language: str, duration: float, clip_dir: Path, sample_rate: int,
        max_speedup: float, voices: dict[str, str], progress: Callable[[float], None] | None = None,
        typed: frozenset[str] = frozenset(), only: frozenset[str] | None = None) -> list[Line]:
    """`typed`: lines a person wrote; they are spoken as written, never shortened by the translator.
    `only`: speak just these lines (an edited line's preview); the others still set each line's room."""
    clip_dir.mkdir(parents=True, exist_ok=True)
    shorter = _ShortenCache(clip_dir.parent / f"shorten.{language}.json")
    done, lock = [0], threading.Lock()

    def one(seg: Segment, room: float) -> Line:
        text, voice = translations.get(seg.id, "").strip(), voices[seg.speaker]
        line = Line(seg.id, text, voice, round(room, 3), 0.0, 0.0)
        if text:
            line.clip, line.length = _speak(tts, text, language, voice, 1.0, clip_dir, sample_rate)
            line.natural = line.length
            while line.length > room and line.attempts < SHORTEN_ATTEMPTS and seg.id not in typed:
                budget = max(4, int(len(line.text) * room / line.length * 0.95))
                current = line.text

                def ask(current: str = current, budget: int = budget) -> str:
                    return translator.shorten(seg.text, current, source_language, language, budget)

                candidate = shorter.get(f"{seg.id}\0{current}\0{budget}", ask).strip()
                line.attempts += 1
                if not candidate or len(candidate) >= len(line.text):
                    break  # the translator cannot do better: stop paying for it
                line.text = candidate
                line.clip, line.length = _speak(tts, line.text, language, voice, 1.0, clip_dir, sample_rate)
            if line.length > room > 0 and tts.max_rate > 1.0:
                line.rate = round(min(line.length / room, max_speedup, tts.max_rate), 3)
                line.clip, line.length = _speak(tts, line.text, language, voice, line.rate, clip_dir, sample_rate)
            line.natural, line.length = round(line.natural, 3), round(line.length, 3)
        with lock:
            done[0] += 1
            if progress:
                progress(done[0] / len(todo))
        return line

    todo = [(seg, room) for seg, room in zip(segments, rooms(segments, duration), strict=True)
            if only is None or seg.id in only]
    # Lines are independent: as many in flight as the engine allows, results in the segments' order.
    with ThreadPoolExecutor(max(1, tts.concurrency)) as pool:
        return list(pool.map(one, [seg for seg, _ in todo], [room for _, room in todo]))


def save(path: Path, lines: list[Line]) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps([asdict(x) for x in lines], ensure_ascii=False, indent=1), "utf-8")
    tmp.replace(path)


def load(path: Path) -> list[Line]:
    return [Line(**d) for d in json.loads(path.read_text("utf-8"))]
