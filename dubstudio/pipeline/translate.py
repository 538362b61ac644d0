"""translate: every segment of one language at once, each with a length budget that fits its slot."""

from __future__ import annotations

from ..domain import Segment
from ..vendors.base import Translator

CHARS_PER_SECOND = 15.0  # a comfortable speaking rate in most languages, used for the budgets


def budgets(segments: list[Segment], duration: float, gap: float = 0.1) -> dict[str, int]:
    """Characters each line may use: its slot plus the silence before the next line, at a natural rate."""
    out: dict[str, int] = {}
    for i, seg in enumerate(segments):
        next_start = segments[i + 1].start if i + 1 < len(segments) else duration
        room = max(seg.end - seg.start, next_start - gap - seg.start)
        out[seg.id] = max(8, int(room * CHARS_PER_SECOND))
    return out


def run(translator: Translator, segments: list[Segment], source: str, target: str,
        duration: float) -> dict[str, str]:
    return translator.translate(segments, source, target, budgets(segments, duration))
