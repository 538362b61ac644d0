"""mix: the dubbed lines over the original.

Single source (voice-over): the original plays on, ducked under each dubbed line with short ramps.
Stems: the background plays as it is and the dub replaces the voice track.
Works block by block (audio.BLOCK_SECONDS): a three-hour source costs the same memory as a minute.
Every sample is a function of the source, the background and the placed lines alone, never of where
a block starts, so `window` remakes any stretch exactly as `run` wrote it (an edited line's preview).
"""

from __future__ import annotations

import bisect
import contextlib
from pathlib import Path

import numpy as np
import soundfile as sf

from .audio import BLOCK_SECONDS
from .fit import Placement


def _duck_envelope(start: int, n: int, spans: list[tuple[int, int]], duck: float, ramp: int) -> np.ndarray:
    """Gain per sample for [start, start+n): 1 outside speech, `duck` under it, linear ramps around it."""
    env = np.ones(n, dtype=np.float32)
    idx = np.arange(start, start + n, dtype=np.int64)
    first = bisect.bisect_left([e + ramp for _, e in spans], start)
    for s, e in spans[first:]:
        if s - ramp >= start + n:
            break
        # distance outside the span, in samples (0 inside): gain goes linearly from duck to 1 over `ramp`
        dist = np.maximum(np.maximum(s - idx, idx - e), 0)
        g = duck + (1 - duck) * np.minimum(dist / max(ramp, 1), 1.0)
        np.minimum(env, g.astype(np.float32), out=env)
    return env


def ramp_samples(ramp_ms: float, rate: int) -> int:
    return int(ramp_ms / 1000 * rate)


class _Lines:
    """The placed lines, sorted, and the clips of those the current block touches."""

    def __init__(self, placements: list[Placement]) -> None:
        self.placements = sorted(placements, key=lambda p: p.start_sample)
        lengths = [sf.info(p.clip).frames for p in self.placements]
        self.spans = [(p.start_sample, p.start_sample + n) for p, n in zip(self.placements, lengths, strict=True)]
        self.starts, self.ends = [s for s, _ in self.spans], [e for _, e in self.spans]  # no overlaps: both sorted
        self.cache: dict[int, np.ndarray] = {}

    def dub(self, b0: int, n: int) -> np.ndarray:
        """The dubbed voice over [b0, b0+n)."""
        dub = np.zeros(n, dtype=np.float32)
        lo, hi = bisect.bisect_right(self.ends, b0), bisect.bisect_left(self.starts, b0 + n)
        for k in [k for k in self.cache if k < lo]:
            del self.cache[k]
        for k in range(lo, hi):
            if k not in self.cache:
                self.cache[k] = sf.read(self.placements[k].clip, dtype="float32")[0]
            s, e = self.spans[k]
            a, z = max(s, b0), min(e, b0 + n)
            dub[a - b0: z - b0] += self.cache[k][a - s: z - s]
        return dub


def _background(bg: sf.SoundFile, b0: int, n: int) -> np.ndarray:
    """Stems: the background over [b0, b0+n) as it is, silence where it ends early."""
    under = np.zeros(n, dtype=np.float32)
    if b0 < bg.frames:
        bg.seek(b0)
        got = bg.read(n, dtype="float32")
        under[: got.size] = got
    return under


def run(source_wav: Path, placements: list[Placement], mix: Path, voice: Path,
        duck_db: float, ramp_ms: float, background_wav: Path | None = None) -> None:
    """Write the mix (float, before mastering) and the dubbed voice alone."""
    rate = sf.info(source_wav).samplerate
    block = int(BLOCK_SECONDS * rate)
    duck, ramp = 10 ** (duck_db / 20), ramp_samples(ramp_ms, rate)
    lines = _Lines(placements)
    tmp_mix, tmp_voice = mix.with_name(mix.name + ".part"), voice.with_name(voice.name + ".part")
    with sf.SoundFile(tmp_mix, "w", rate, 1, "FLOAT", format="WAV") as out, \
         sf.SoundFile(tmp_voice, "w", rate, 1, "PCM_24", format="WAV") as vout, \
         (sf.SoundFile(background_wav) if background_wav else contextlib.nullcontext()) as bg:
        for pos, src in enumerate(sf.blocks(source_wav, blocksize=block, dtype="float32", always_2d=False)):
            b0, n = pos * block, src.size
            dub = lines.dub(b0, n)
            under = _background(bg, b0, n) if bg is not None else src * _duck_envelope(b0, n, lines.spans, duck, ramp)
            out.write(under + dub)  # float, unclipped: mastering sets the level
            vout.write(np.clip(dub, -1.0, 1.0))
    tmp_mix.replace(mix)
    tmp_voice.replace(voice)


def window(source_wav: Path, placements: list[Placement], start: int, stop: int, duck_db: float, ramp_ms: float,
           background_wav: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The mix and the voice (clipped, as voice.wav holds it) over samples [start, stop): sample for sample
    what `run` writes there. `placements` need only hold the lines within a ramp of the window."""
    rate = sf.info(source_wav).samplerate
    src, _ = sf.read(source_wav, start=start, stop=stop, dtype="float32", always_2d=False)
    n = src.size
    lines = _Lines(placements)
    dub = lines.dub(start, n)
    if background_wav is not None:
        with sf.SoundFile(background_wav) as bg:
            under = _background(bg, start, n)
    else:
        under = src * _duck_envelope(start, n, lines.spans, 10 ** (duck_db / 20), ramp_samples(ramp_ms, rate))
    return under + dub, np.clip(dub, -1.0, 1.0)
