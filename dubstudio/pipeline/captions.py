"""captions: SRT and WebVTT cues within the usual limits: at most 42 characters a line, 2 lines a cue,
cues from 5/6 s to 7 s, never overlapping. Long lines are split on word timings where there are any
(the source language), else in proportion to their characters (a translation).

The `srt` and `webvtt-py` libraries write the formats; this module only decides where cues break.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import srt
import webvtt

from ..domain import Word

LINE = 42
LINES = 2
MAX_CUE = 7.0
MIN_CUE = 5 / 6


@dataclass
class Item:
    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)


def _fits(text: str) -> bool:
    return len(textwrap.wrap(text, LINE, break_long_words=True)) <= LINES


def _by_words(item: Item) -> list[tuple[float, float, str]]:
    """Greedy: add words while the text wraps into LINES lines and the cue stays under MAX_CUE."""
    out: list[tuple[float, float, str]] = []
    group: list[Word] = []
    for w in item.words:
        if group and (not _fits(" ".join(x.text for x in [*group, w])) or w.end - group[0].start > MAX_CUE):
            out.append((group[0].start, group[-1].end, " ".join(x.text for x in group)))
            group = []
        group.append(w)
    if group:
        out.append((group[0].start, group[-1].end, " ".join(x.text for x in group)))
    return out


def _by_characters(item: Item) -> list[tuple[float, float, str]]:
    lines = textwrap.wrap(" ".join(item.text.split()), LINE, break_long_words=True)
    chunks = [" ".join(lines[i:i + LINES]) for i in range(0, len(lines), LINES)]
    pieces = max(len(chunks), math.ceil((item.end - item.start) / MAX_CUE))
    if pieces > len(chunks):  # a long line with little text: split its words more finely
        words = item.text.split()
        per = max(1, math.ceil(len(words) / pieces))
        chunks = [" ".join(words[i:i + per]) for i in range(0, len(words), per)]
    total = sum(len(c) for c in chunks) or 1
    out, t = [], item.start
    for c in chunks:
        d = (item.end - item.start) * len(c) / total
        out.append((t, t + d, c))
        t += d
    return out


def _merge_short(pieces: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """A cue too short to read joins the next one where the two still fit one cue."""
    out: list[tuple[float, float, str]] = []
    for piece in pieces:
        if out:
            s, e, text = out[-1]
            joined = f"{text} {piece[2]}"
            if e - s < MIN_CUE and _fits(joined) and piece[1] - s <= MAX_CUE:
                out[-1] = (s, piece[1], joined)
                continue
        out.append(piece)
    return out


def cues(items: list[Item]) -> list[srt.Subtitle]:
    pieces: list[tuple[float, float, str]] = []
    for item in items:
        if item.text.strip():
            pieces += _by_words(item) if item.words else _by_characters(item)
    out: list[srt.Subtitle] = []
    end_before = 0.0
    for s, e, text in _merge_short(pieces):
        s = max(s, end_before)  # a cue that had to run on a little pushes the next one back
        e = min(max(e, s + MIN_CUE), s + MAX_CUE)
        start_ms, end_ms = round(s * 1000), math.ceil(e * 1000 - 1e-6)
        end_before = end_ms / 1000
        out.append(srt.Subtitle(index=len(out) + 1, start=timedelta(milliseconds=start_ms),
                                end=timedelta(milliseconds=end_ms),
                                content="\n".join(textwrap.wrap(text, LINE, break_long_words=True))))
    return out


def _vtt_time(t: timedelta) -> str:
    ms = round(t.total_seconds() * 1000)
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def write(srt_path: Path, vtt_path: Path, items: list[Item]) -> None:
    subs = cues(items)
    srt_path.parent.mkdir(parents=True, exist_ok=True)
    srt_path.write_text(srt.compose(subs, reindex=False), encoding="utf-8")
    vtt = webvtt.WebVTT(captions=[webvtt.Caption(_vtt_time(c.start), _vtt_time(c.end), c.content) for c in subs])
    vtt_path.write_text(vtt.content, encoding="utf-8")
