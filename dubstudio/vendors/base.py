"""The three engine interfaces the pipeline calls. Implementations live beside this module.

Every implementation turns its vendor's failures into ours at this boundary: `VendorError` (with
`retry_after` where the vendor gave one) for what a retry may fix, `PermanentVendorError` for what it
cannot (401, 403, 400, quota), naming the vendor, the cause and the setting to fix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..domain import Segment, Speech, Transcript

Progress = Callable[[float], None]  # fraction 0..1 of the current stage


class SpeechToText(Protocol):
    name: str  # engine and model, e.g. "offline" or "deepgram:nova-3": part of the cache keys

    def transcribe(self, wav_path: Path, language: str, progress: Progress | None = None) -> Transcript:
        """Segments with word timings (and speakers where the engine gives them) from a 16 kHz mono WAV.
        `language` may be 'auto'; the Transcript says which language was heard."""
        ...


class Translator(Protocol):
    name: str

    def translate(self, segments: list[Segment], source: str, target: str,
                  budgets: dict[str, int] | None = None) -> dict[str, str]:
        """Translations by segment id. `budgets` caps characters per segment where given."""
        ...

    def shorten(self, text: str, translation: str, source: str, target: str, max_chars: int) -> str:
        """A shorter translation of `text` (now `translation`) within `max_chars`, same meaning."""
        ...


class TextToSpeech(Protocol):
    name: str
    max_rate: float  # the fastest speaking rate the engine offers (1.0: it has no rate control)
    concurrency: int  # lines it may be asked for at once

    def voices(self, language: str) -> list[str]:
        """Voice ids for a language, the default first; distinct speakers get distinct voices."""
        ...

    def synthesize(self, text: str, language: str, voice: str | None = None, rate: float = 1.0) -> Speech:
        """Speech for one line. `rate` > 1 speaks faster (up to `max_rate`), where the engine can."""
        ...


@dataclass
class Engines:
    stt: SpeechToText
    translator: Translator
    tts: TextToSpeech
