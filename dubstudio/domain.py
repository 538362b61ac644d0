"""Plain records that pipeline stages pass to each other. No database, no web, no queue here."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Word:
    text: str
    start: float
    end: float


@dataclass
class Segment:
    """One line of the source: its time span, speaker and words."""

    id: str
    start: float
    end: float
    text: str
    speaker: str = "S1"
    words: list[Word] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Segment:
        words = [Word(**w) for w in d.get("words", [])]
        return cls(id=d["id"], start=d["start"], end=d["end"], text=d["text"],
                   speaker=d.get("speaker", "S1"), words=words)


@dataclass
class Transcript:
    language: str
    duration: float
    segments: list[Segment]

    def to_dict(self) -> dict[str, Any]:
        return {"language": self.language, "duration": self.duration,
                "segments": [s.to_dict() for s in self.segments]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Transcript:
        return cls(language=d["language"], duration=d["duration"],
                   segments=[Segment.from_dict(s) for s in d["segments"]])


@dataclass
class Speech:
    """Synthesized audio for one line: mono float32 samples at `sample_rate`."""

    samples: Any  # numpy.ndarray (float32, mono); Any keeps numpy out of this module's imports
    sample_rate: int


@dataclass
class FitDecision:
    """Where a dubbed line lands on the source timeline, and how it was made to fit."""

    segment_id: str
    dub_start: float
    dub_end: float
    stretch: float = 1.0  # time-stretch without pitch change (rate × stretch stays within the cap)
    overflow: float = 0.0  # seconds that did not fit and were faded out
    borrowed: float = 0.0  # seconds of the silence after the line that it uses
    rate: float = 1.0  # speaking rate asked of the voice engine
    attempts: int = 0  # shorter lines asked of the translator
    voice: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
