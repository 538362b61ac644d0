"""What a job costs: every engine call that was made (a cached answer costs nothing) is metered in
units the vendors bill (audio seconds, characters), priced from the settings' table, reported as it
happens and totalled in the manifest. Also the estimate shown before a job starts.

Metering wraps the engines here rather than living in each vendor module, so every engine, cloud or
offline, is counted the same way.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import soundfile as sf

from ..domain import Segment, Speech, Transcript, Word
from ..vendors.base import Engines, Progress, SpeechToText, TextToSpeech, Translator
from .translate import CHARS_PER_SECOND

# US dollars per unit, by engine name prefix (the longest matching prefix wins); a setting overrides.
DEFAULT_PRICES: dict[str, float] = {
    "offline": 0.0,
    "deepgram:nova": 0.0043 / 60,  # per audio second (nova-3 pre-recorded, pay as you go)
    "deepgram:aura": 0.030 / 1000,  # per character (Aura-2)
    "elevenlabs": 0.18 / 1000,  # per character (multilingual v2, creator tier)
    "openai": 0.60 / 1_000_000 / 0.25,  # per character, at ~4 characters a token (gpt-4o-mini output)
}


def price(prices: dict[str, float], engine: str) -> float:
    table = {**DEFAULT_PRICES, **prices}
    best = max((p for p in table if engine.startswith(p)), key=len, default=None)
    return table[best] if best is not None else 0.0


@dataclass
class Meter:
    """Totals by language ("" for the shared transcription), kept in `path` so that a job resumed
    after a crash adds to what it had already spent."""

    prices: dict[str, float]
    path: Path
    on_call: Callable[[str | None, str, float, str, float], None] = lambda *a: None
    totals: dict[str, dict[str, float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.path.exists():
            self.totals = json.loads(self.path.read_text())

    def record(self, language: str | None, engine: str, units: float, unit: str) -> None:
        cost = units * price(self.prices, engine)
        with self.lock:
            t = self.totals.setdefault(language or "", {})
            t[unit] = t.get(unit, 0.0) + units
            t["cost"] = t.get("cost", 0.0) + cost
            tmp = self.path.with_name(self.path.name + ".part")
            tmp.write_text(json.dumps(self.totals, sort_keys=True))
            tmp.replace(self.path)
        self.on_call(language, engine, units, unit, cost)

    def summary(self) -> dict[str, Any]:
        with self.lock:
            total = sum(t.get("cost", 0.0) for t in self.totals.values())
            return {"currency": "USD", "total": round(total, 6),
                    "by_language": {k or "shared": {u: round(v, 6) for u, v in t.items()}
                                    for k, t in sorted(self.totals.items())}}


class _STT:
    def __init__(self, inner: SpeechToText, meter: Meter) -> None:
        self.inner, self.meter, self.name = inner, meter, inner.name

    def align(self, wav_path: Path, start: float, end: float, text: str) -> list[Word] | None:
        """Forced alignment where the engine has it (offline: free, so not metered); else None."""
        align = getattr(self.inner, "align", None)
        return align(wav_path, start, end, text) if align else None

    def transcribe(self, wav_path: Path, language: str, progress: Progress | None = None) -> Transcript:
        result = self.inner.transcribe(wav_path, language, progress)
        self.meter.record(None, self.name, sf.info(wav_path).duration, "seconds")
        return result


class _Translator:
    def __init__(self, inner: Translator, meter: Meter) -> None:
        self.inner, self.meter, self.name = inner, meter, inner.name

    def translate(self, segments: list[Segment], source: str, target: str,
                  budgets: dict[str, int] | None = None) -> dict[str, str]:
        out = self.inner.translate(segments, source, target, budgets)
        chars = sum(len(s.text) for s in segments) + sum(len(t) for t in out.values())
        self.meter.record(target, self.name, chars, "characters")
        return out

    def shorten(self, text: str, translation: str, source: str, target: str, max_chars: int) -> str:
        out = self.inner.shorten(text, translation, source, target, max_chars)
        self.meter.record(target, self.name, len(text) + len(translation) + len(out), "characters")
        return out


class _TTS:
    def __init__(self, inner: TextToSpeech, meter: Meter) -> None:
        self.inner, self.meter = inner, meter
        self.name, self.max_rate, self.concurrency = inner.name, inner.max_rate, inner.concurrency

    def voices(self, language: str) -> list[str]:
        return self.inner.voices(language)

    def synthesize(self, text: str, language: str, voice: str | None = None, rate: float = 1.0) -> Speech:
        out = self.inner.synthesize(text, language, voice, rate)
        self.meter.record(language, self.name, len(text), "characters")
        return out


def metered(engines: Engines, meter: Meter) -> Engines:
    return Engines(stt=_STT(engines.stt, meter), translator=_Translator(engines.translator, meter),
                   tts=_TTS(engines.tts, meter))


def estimate(duration: float, languages: list[str], stt: str, translator: str, tts: str,
             prices: dict[str, float]) -> dict[str, Any]:
    """What a job should cost before it starts: the whole audio transcribed once, and per language the
    speech's characters translated (in and out) and spoken."""
    chars = duration * CHARS_PER_SECOND
    shared = duration * price(prices, stt)
    per_language = 2 * chars * price(prices, translator) + chars * price(prices, tts)
    return {"currency": "USD", "total": round(shared + per_language * len(languages), 4),
            "transcription": round(shared, 4), "per_language": round(per_language, 4),
            "assumes": {"duration_seconds": round(duration, 1), "characters_per_second": CHARS_PER_SECOND}}
