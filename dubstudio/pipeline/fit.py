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
import pylibrb
import soundfile as sf
from pylibrb import Option

from ..domain import FitDecision, Segment
from .audio import read_wav, rms_db, write_wav
from .synthesize import Line

FADE = 0.02
HARD_SPEEDUP_LIMIT = 1.35
STRETCH_BLOCK = 1 << 14  # samples per Rubber Band call


@dataclass(frozen=True)
class Placement:
    start_sample: int
    clip: Path


def _stretch(samples: np.ndarray, rate: float, sample_rate: int) -> np.ndarray:
    """`samples` (mono) played `rate` times faster with the pitch kept: round(len / rate) samples.

    Rubber Band's R3 ("finer") engine in offline mode, which studies the whole clip first and then places
    the output exactly, through pylibrb (3 MB native wheels for Linux, macOS and Windows; GPL like the
    project). It replaced librosa's plain phase vocoder, which brought numba/LLVM, scipy and scikit-learn
    (over 250 MB) into the desktop bundle and compiled kernels on first use. One thread and a fixed block
    size keep the output byte-identical from run to run.
    """
    if samples.size == 0:
        return np.zeros(0, np.float32)
    want = round(samples.size / rate)
    rb = pylibrb.RubberBandStretcher(
        sample_rate, 1, Option.PROCESS_OFFLINE | Option.ENGINE_FINER | Option.THREADING_NEVER,
        initial_time_ratio=1 / rate)
    rb.set_expected_input_duration(samples.size)
    rb.set_max_process_size(STRETCH_BLOCK)  # process() takes at most 2**19 samples a call
    audio = np.ascontiguousarray(samples, dtype=np.float32).reshape(1, -1)  # (channels, samples)
    blocks = [audio[:, i:i + STRETCH_BLOCK] for i in range(0, audio.shape[1], STRETCH_BLOCK)]
    for i, block in enumerate(blocks):
        rb.study(block, final=i == len(blocks) - 1)
    out = []
    for i, block in enumerate(blocks):
        rb.process(block, final=i == len(blocks) - 1)
        out.append(rb.retrieve_available())
    while not rb.is_done() and rb.available() > 0:  # single-threaded: all is there once the final block is in
        out.append(rb.retrieve_available())
    stretched = np.concatenate(out, axis=1)[0]
    if stretched.size < want:  # Rubber Band is exact in offline mode; this only guards the contract
        stretched = np.pad(stretched, (0, want - stretched.size))
    return stretched[:want].astype(np.float32, copy=False)


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
                clip = _stretch(clip, stretch, sample_rate)
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
