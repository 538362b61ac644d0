"""captions: SRT cues within the usual limits (42 characters a line, 2 lines a cue, at most 7 s).

The `srt` library writes and parses the format; this module only decides where cues break.
"""

from __future__ import annotations

import math
import textwrap
from datetime import timedelta
from pathlib import Path

import srt

LINE = 42
LINES = 2
MAX_CUE = 7.0
MIN_CUE = 5 / 6


def _chunks(text: str) -> list[str]:
    """Split text into pieces that wrap into at most LINES lines of LINE characters."""
    lines = textwrap.wrap(" ".join(text.split()), LINE, break_long_words=True)
    return ["\n".join(lines[i:i + LINES]) for i in range(0, len(lines), LINES)]


def cues(items: list[tuple[float, float, str]]) -> list[srt.Subtitle]:
    """One or more cues per (start, end, text), times shared by characters, never overlapping."""
    pieces: list[tuple[float, float, str]] = []
    for start, end, text in items:
        chunks = _chunks(text)
        if not chunks:
            continue
        total = sum(len(c) for c in chunks)
        n_by_time = max(1, int(-(-(end - start) // MAX_CUE)))
        if n_by_time > len(chunks):  # a long line with little text: split its time more finely
            words = text.split()
            per = -(-len(words) // n_by_time)
            chunks = [c for i in range(0, len(words), per) for c in _chunks(" ".join(words[i:i + per]))]
            total = sum(len(c) for c in chunks)
        t = start
        for c in chunks:
            d = (end - start) * len(c) / total
            pieces.append((t, t + d, c))
            t += d
    out: list[srt.Subtitle] = []
    for i, (s, e, text) in enumerate(pieces):
        nxt = pieces[i + 1][0] if i + 1 < len(pieces) else float("inf")
        e = min(max(e, s + MIN_CUE), nxt, s + MAX_CUE)
        if out and s < out[-1].end.total_seconds():
            s = out[-1].end.total_seconds()
        start_ms, end_ms = round(s * 1000), math.ceil(max(e, s + 0.001) * 1000 - 1e-6)
        out.append(srt.Subtitle(index=len(out) + 1, start=timedelta(milliseconds=start_ms),
                                end=timedelta(milliseconds=end_ms), content=text))
    return out


def write_srt(path: Path, items: list[tuple[float, float, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(srt.compose(cues(items), reindex=False), encoding="utf-8")
