"""Sound for the job page, read in bounded memory: a waveform's envelope and one line's clip.

Both read a file in blocks of at most BLOCK frames, whatever its length, and are meant to run in a
thread (they block)."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

BLOCK = 1 << 16  # frames read at a time
MAX_CLIP_SECONDS = 60.0


@dataclass(frozen=True)
class Envelope:
    duration: float
    times: list[float]  # the start of each bucket, in seconds
    peaks: list[float]  # the largest absolute sample of each bucket, 0..1


def envelope(path: Path, points: int = 800) -> Envelope:
    """At most `points` peaks of `path` (all channels together), evenly spaced."""
    info = sf.info(str(path))
    if info.frames <= 0 or info.samplerate <= 0:
        return Envelope(0.0, [], [])
    wanted = max(1, math.ceil(info.frames / max(1, points)))
    read = min(wanted, BLOCK)
    per_bucket = math.ceil(wanted / read)  # whole reads per bucket: a read never spans two buckets
    bucket = read * per_bucket
    peaks = np.zeros(math.ceil(info.frames / bucket), dtype=np.float32)
    for n, block in enumerate(sf.blocks(str(path), blocksize=read, dtype="float32", always_2d=True)):
        if block.size:
            i = n // per_bucket
            peaks[i] = max(peaks[i], float(np.max(np.abs(block))))
    times = [round(i * bucket / info.samplerate, 3) for i in range(len(peaks))]
    return Envelope(info.frames / info.samplerate, times, [round(float(p), 4) for p in np.minimum(peaks, 1.0)])


def clip(path: Path, start: float, end: float) -> bytes:
    """The stretch [start, end) seconds of `path` (at most MAX_CLIP_SECONDS) as a 16-bit WAV."""
    info = sf.info(str(path))
    rate = info.samplerate
    first = min(max(0, int(start * rate)), info.frames)
    last = min(info.frames, int(min(end, start + MAX_CLIP_SECONDS) * rate))
    data, _ = sf.read(str(path), start=first, stop=max(first, last), dtype="float32", always_2d=True)
    out = io.BytesIO()
    sf.write(out, data, rate, format="WAV", subtype="PCM_16")
    return out.getvalue()
