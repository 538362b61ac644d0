"""The manual translator: a person types the translations. A language waits ("awaiting translation")
until every line has one; entering them (API or UI) queues the job again and it goes on from there."""

from __future__ import annotations

from ..domain import Segment
from ..errors import AwaitingTranslation


class ManualTranslator:
    name = "manual"

    def translate(self, segments: list[Segment], source: str, target: str,
                  budgets: dict[str, int] | None = None) -> dict[str, str]:
        raise AwaitingTranslation(f"The {target} lines wait for their translations.",
                                  hint="Enter a translation for every line, in the job page or through the API.")

    def shorten(self, text: str, translation: str, source: str, target: str, max_chars: int) -> str:
        return translation  # a person's line is kept as written; fit speeds it up or reports overflow
