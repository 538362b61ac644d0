"""fit: place each spoken line at its source line's start, and make what is still too long fit.

`synthesize` already borrowed silence, asked for shorter lines and spoke faster where it could; here the
rest is time-stretched without pitch change, with the engine's rate and the stretch together within
`max_speedup` (never over 1.35), and whatever still does not fit is overflow, faded out at the room's
end, so that no line reaches into the next. A short line is never slowed down.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ..domain import FitDecision, Segment
from .audio import read_wav, rms_db, write_wav
from .synthesize import Line

FADE = 0.02
HARD_SPEEDUP_LIMIT = 1.35


@dataclass(frozen=True)
class Placement:
    start_sample: int
    clip: Path


def _stretch(samples: np.ndarray, rate: float) -> np.ndarray:
    import librosa  # phase vocoder, pitch kept; imported only when a line needs it

    return librosa.effects.time_stretch(samples, rate=rate).astype(np.float32)


def _match_level(clip: np.ndarray, source_wav: Path, seg: Segment, sample_rate: int) -> np.ndarray:
    """Dubbed speech as loud as the source speech it replaces (RMS over the source line's span),
    with headroom left for the mix."""
    src, _ = sf.read(source_wav, start=int(seg.start * sample_rate), stop=int(seg.end * sample_rate),
                     dtype="float32")
    target, have = rms_db(src), rms_db(clip)
    if not np.isfinite(target) or not np.isfinite(have):
        return clip
    gain = 10 ** ((target - have) / 20)
    peak = float(np.max(np.abs(clip))) * gain
    if peak > 0.89:  # about -1 dBFS
        gain *= 0.89 / peak
    return (clip * gain).astype(np.float32)


def run(segments: list[Segment], lines: list[Line], clip_dir: Path, sample_rate: int, source_wav: Path,
        out_dir: Path, max_speedup: float) -> tuple[list[FitDecision], list[Placement]]:
    max_speedup = min(max_speedup, HARD_SPEEDUP_LIMIT)
    out_dir.mkdir(parents=True, exist_ok=True)
    decisions: list[FitDecision] = []
    placements: list[Placement] = []
    for seg, line in zip(segments, lines, strict=True):
        start_sample = round(seg.start * sample_rate)
        start = round(start_sample / sample_rate, 3)
        if not line.clip:
            decisions.append(FitDecision(seg.id, start, start, voice=line.voice))
            continue
        clip, _ = read_wav(clip_dir / line.clip)
        room, length, stretch = line.room, clip.size / sample_rate, 1.0
        if length > room > 0:
            stretch = round(min(length / room, max_speedup / line.rate), 4)
            if stretch > 1.001:
                clip = _stretch(clip, stretch)
            else:
                stretch = 1.0
        overflow = max(0.0, clip.size / sample_rate - room)
        if overflow > 0:
            keep = int(room * sample_rate)
            fade = min(keep, int(FADE * sample_rate))
            clip = clip[:keep].copy()
            if fade:
                clip[keep - fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
        clip = _match_level(clip, source_wav, seg, sample_rate)
        fitted = out_dir / f"{seg.id}.wav"
        write_wav(fitted, clip, sample_rate, subtype="FLOAT")
        placements.append(Placement(start_sample, fitted))
        length = clip.size / sample_rate
        decisions.append(FitDecision(
            seg.id, dub_start=start, dub_end=round(start + length, 3), stretch=stretch, overflow=round(overflow, 3),
            borrowed=round(max(0.0, length - (seg.end - seg.start)), 3), rate=line.rate, attempts=line.attempts,
            voice=line.voice))
    return decisions, placements
