"""The three engine interfaces the pipeline calls. Implementations live beside this module."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..domain import Segment, Speech, Transcript

Progress = Callable[[float], None]  # fraction 0..1 of the current stage


class SpeechToText(Protocol):
    name: str

    def transcribe(self, wav_path: Path, language: str, progress: Progress | None = None) -> Transcript:
        """Segments with word timings from a 16 kHz mono WAV. `language` may be 'auto'."""
        ...


class Translator(Protocol):
    name: str

    def translate(self, segments: list[Segment], source: str, target: str,
                  budgets: dict[str, int] | None = None) -> dict[str, str]:
        """Translations by segment id. `budgets` caps characters per segment where given."""
        ...


class TextToSpeech(Protocol):
    name: str

    def synthesize(self, text: str, language: str, voice: str | None = None, rate: float = 1.0) -> Speech:
        """Speech for one line. `rate` > 1 speaks faster, where the engine can."""
        ...


@dataclass
class Engines:
    stt: SpeechToText
    translator: Translator
    tts: TextToSpeech
