"""remaster: a stretch of a language's master WAV (and voice WAV) made again in place after one line changed,
byte for byte what a full mix and master at the same gain and limit would write, in a fraction of a second
whatever the media's length.

The mix is a function of each sample's neighbourhood (mix.window remakes any stretch exactly). The master
is the mix through a gain and ffmpeg's look-ahead limiter, whose state at a sample depends on the past:
but once no sample over the limit has come for the limiter's attack plus release time, it is back at rest
(unity gain, nothing pending) exactly as at the start of a file. So the stretch to remake runs from a point
before the change where the limiter was at rest to a point after it where it is at rest again; a fresh
limiter over that stretch writes what the full pass wrote, and everything outside stays as it is.
"""

from __future__ import annotations

import bisect
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from . import media, mix
from .fit import Placement

MAX_LOOK_SECONDS = 120.0  # no rest within this far of the change (a limiter pinned for minutes): not patched
TOLERANCE = 1e-6  # samples this close under the limit count as over it, so no rounding can hide a peak


class NotPatchable(Exception):
    """The master cannot be patched here (no rest for the limiter nearby, or not the expected file)."""


@dataclass(frozen=True)
class Mastering:
    """What the last full mix and master of the language used."""

    gain_db: float
    limit_db: float
    duck_db: float
    ramp_ms: float


def _over(samples: np.ndarray, settings: Mastering) -> np.ndarray:
    """Where the gained mix reaches the limit (the samples that wake the limiter)."""
    threshold = media.limit_value(settings.limit_db) * (1 - TOLERANCE) / 10 ** (round(settings.gain_db, 3) / 20)
    return np.flatnonzero(np.abs(samples) >= threshold)


def _rest_before(peaks: list[int], x: int, reach: int, known_from: int) -> int | None:
    """The latest point at or before `x` where the limiter is at rest: no peak within `reach` before it.
    None: it lies before `known_from`, where the peaks were not looked at."""
    while x > 0:
        i = bisect.bisect_left(peaks, x - reach)
        if i == len(peaks) or peaks[i] >= x:
            return x if x - reach >= known_from or known_from == 0 else None
        x = peaks[i]  # at rest, if anywhere, no later than the earliest peak in the way
    return 0


def _rest_after(peaks: list[int], y: int, reach: int, known_to: int, total: int) -> int | None:
    """The earliest point at or after `y` where the limiter is at rest again; None past `known_to`."""
    while y < total:
        if y > known_to:
            return None
        j = bisect.bisect_left(peaks, y) - 1
        if j < 0 or peaks[j] < y - reach:
            return y
        y = peaks[j] + 1 + reach
    return total


def _near(placements: list[Placement], lo: int, hi: int) -> list[Placement]:
    """The lines that can sound in [lo, hi): a line ends before the next one starts."""
    ps = sorted(placements, key=lambda p: p.start_sample)
    return [p for k, p in enumerate(ps) if p.start_sample < hi and (k + 1 == len(ps) or ps[k + 1].start_sample > lo)]


def _data_offset(path: Path) -> int:
    """Where the samples start in a RIFF/WAVE file."""
    with path.open("rb") as f:
        head = f.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise NotPatchable(f"{path.name} is not a RIFF WAVE file")
        while len(chunk := f.read(8)) == 8:
            size = int.from_bytes(chunk[4:], "little")
            if chunk[:4] == b"data":
                return f.tell()
            f.seek(size + (size & 1), 1)
    raise NotPatchable(f"{path.name} has no data chunk")


def _splice(path: Path, frame: int, pcm: bytes, width: int) -> None:
    """Overwrite samples from `frame` on with `pcm` (mono, `width` bytes a sample), nothing else."""
    offset = _data_offset(path)
    with path.open("r+b") as f:
        f.seek(offset + frame * width)
        f.write(pcm)


def _pcm24(samples: np.ndarray, rate: int) -> bytes:
    """Samples as libsndfile writes them into a 24-bit WAV (mix.run's voice.wav)."""
    buf = io.BytesIO()
    sf.write(buf, samples, rate, subtype="PCM_24", format="RAW", endian="LITTLE")
    return buf.getvalue()


def patch(source_wav: Path, placements: list[Placement], changed: tuple[int, int], master_wav: Path,
          voice_wav: Path, settings: Mastering, background_wav: Path | None = None,
          look_seconds: float = MAX_LOOK_SECONDS) -> tuple[int, int]:
    """Remake the master and the voice where the mix changed: `changed` is [first, last) sample of the
    change (the edited line's old and new extents with the ducking ramps). Returns the master's stretch
    that was rewritten, in samples; raises NotPatchable where it cannot be done."""
    info = sf.info(source_wav)
    rate, total = info.samplerate, info.frames
    for path in (master_wav, voice_wav):
        got = sf.info(path)
        if (got.frames, got.samplerate, got.channels, got.subtype) != (total, rate, 1, "PCM_24"):
            raise NotPatchable(f"{path.name} does not match the source")
    reach = math.ceil((media.LIMITER_ATTACK_MS + media.LIMITER_RELEASE_MS) / 1000 * rate * 1.25) + 16
    ahead = math.ceil(media.LIMITER_ATTACK_MS / 1000 * rate) + 16  # outputs before a change may feel it
    a, b = max(0, changed[0]), min(total, changed[1])
    ramp = mix.ramp_samples(settings.ramp_ms, rate)
    margin = max(2 * reach, rate)
    while True:  # look wider until the limiter is at rest on both sides
        r0, r1 = max(0, a - margin), min(total, b + margin)
        mixed, voice = mix.window(source_wav, _near(placements, r0 - ramp, r1 + ramp), r0, r1,
                                  settings.duck_db, settings.ramp_ms, background_wav)
        peaks = (r0 + _over(mixed, settings)).tolist()
        start = _rest_before(peaks, a - ahead, reach, r0)
        stop = _rest_after(peaks, b + reach, reach, r1, total)
        if start is not None and stop is not None and min(total, stop + ahead) <= r1:
            break
        if margin > look_seconds * rate:
            raise NotPatchable("the limiter does not rest near the change")
        margin *= 2
    feed = min(total, stop + ahead)  # the limiter looks ahead: its input goes a little past the stretch
    pcm = media.master_pcm(mixed[start - r0: feed - r0], rate, settings.gain_db, settings.limit_db)
    _splice(master_wav, start, pcm[: (stop - start) * 3], 3)
    _splice(voice_wav, a, _pcm24(voice[a - r0: b - r0], rate), 3)
    return start, stop
