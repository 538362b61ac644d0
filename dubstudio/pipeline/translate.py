"""translate: every segment of one language at once, each with a length budget that fits its room."""

from __future__ import annotations

from ..domain import Segment
from ..vendors.base import Translator
from .synthesize import rooms

CHARS_PER_SECOND = 15.0  # a comfortable speaking rate in most languages, used for the budgets


def budgets(segments: list[Segment], duration: float) -> dict[str, int]:
    """Characters each line may use: its room (its slot and the silence after it) at a natural rate."""
    return {seg.id: max(8, int(room * CHARS_PER_SECOND)) for seg, room in zip(segments, rooms(segments, duration),
                                                                                strict=True)}


def run(translator: Translator, segments: list[Segment], source: str, target: str,
        duration: float) -> dict[str, str]:
    return translator.translate(segments, source, target, budgets(segments, duration))
