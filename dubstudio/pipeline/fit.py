"""fit: place each dubbed line at its source line's start and make it fit its room.

Order (PRODUCT.md): natural rate; borrow the silence before the next line (keeping a 100 ms gap); then
time-stretch without pitch change up to `max_stretch`; what is still too long is overflow, faded out at
the room's end so that no line reaches into the next. A short line is never slowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ..domain import FitDecision, Segment
from .audio import read_wav, rms_db, write_wav

GAP = 0.1
FADE = 0.02
HARD_STRETCH_LIMIT = 1.35


@dataclass(frozen=True)
class Placement:
    start_sample: int
    clip: Path


def _stretch(samples: np.ndarray, rate: float) -> np.ndarray:
    import librosa  # heavy import, only when a line needs it

    return librosa.effects.time_stretch(samples, rate=rate).astype(np.float32)


def _match_level(clip: np.ndarray, source_wav: Path, seg: Segment, sample_rate: int) -> np.ndarray:
    """Dubbed speech as loud as the source speech it replaces (RMS over the source line's span)."""
    src, _ = sf.read(source_wav, start=int(seg.start * sample_rate), stop=int(seg.end * sample_rate),
                     dtype="float32")
    target, have = rms_db(src), rms_db(clip)
    if not np.isfinite(target) or not np.isfinite(have):
        return clip
    gain = 10 ** ((target - have) / 20)
    peak = float(np.max(np.abs(clip))) * gain
    if peak > 0.89:  # leave headroom (about -1 dBFS) for the mix
        gain *= 0.89 / peak
    return (clip * gain).astype(np.float32)


def run(segments: list[Segment], clips: dict[str, Path], duration: float, sample_rate: int,
        source_wav: Path, out_dir: Path, max_stretch: float) -> tuple[list[FitDecision], list[Placement]]:
    max_stretch = min(max_stretch, HARD_STRETCH_LIMIT)
    out_dir.mkdir(parents=True, exist_ok=True)
    decisions: list[FitDecision] = []
    placements: list[Placement] = []
    for i, seg in enumerate(segments):
        next_start = segments[i + 1].start if i + 1 < len(segments) else duration
        room = max(0.0, next_start - GAP - seg.start) if i + 1 < len(segments) else max(0.0, duration - seg.start)
        clip_path = clips.get(seg.id)
        if clip_path is None:
            decisions.append(FitDecision(seg.id, seg.start, seg.start))
            continue
        clip, _ = read_wav(clip_path)
        natural = clip.size / sample_rate
        stretch = 1.0
        if natural > room > 0:
            stretch = min(natural / room, max_stretch)
            clip = _stretch(clip, stretch)
        length = clip.size / sample_rate
        overflow = max(0.0, length - room)
        if overflow > 0:
            keep = int(room * sample_rate)
            fade = min(keep, int(FADE * sample_rate))
            clip = clip[:keep].copy()
            if fade:
                clip[keep - fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
            length = clip.size / sample_rate
        clip = _match_level(clip, source_wav, seg, sample_rate)
        fitted = out_dir / f"{seg.id}.wav"
        write_wav(fitted, clip, sample_rate, subtype="FLOAT")
        start_sample = round(seg.start * sample_rate)
        placements.append(Placement(start_sample, fitted))
        decisions.append(FitDecision(
            seg.id, dub_start=round(start_sample / sample_rate, 3),
            dub_end=round(start_sample / sample_rate + length, 3), stretch=round(stretch, 4),
            overflow=round(overflow, 3), borrowed=round(max(0.0, min(length, room) - (seg.end - seg.start)), 3)))
    return decisions, placements
