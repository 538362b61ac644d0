"""mix: the dubbed lines over the original.

Single source (voice-over): the original plays on, ducked under each dubbed line with short ramps.
Stems: the background plays as it is and the dub replaces the voice track.
Works block by block (audio.BLOCK_SECONDS): a three-hour source costs the same memory as a minute.
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


def run(source_wav: Path, placements: list[Placement], mix: Path, voice: Path,
        duck_db: float, ramp_ms: float, background_wav: Path | None = None) -> None:
    """Write the mix (float, before mastering) and the dubbed voice alone."""
    info = sf.info(source_wav)
    rate = info.samplerate
    block = int(BLOCK_SECONDS * rate)
    duck, ramp = 10 ** (duck_db / 20), int(ramp_ms / 1000 * rate)
    placements = sorted(placements, key=lambda p: p.start_sample)
    lengths = [sf.info(p.clip).frames for p in placements]
    spans = [(p.start_sample, p.start_sample + n) for p, n in zip(placements, lengths, strict=True)]
    starts, ends = [s for s, _ in spans], [e for _, e in spans]  # lines never overlap: both sorted
    cache: dict[int, np.ndarray] = {}  # clips of the lines the current block touches
    tmp_mix, tmp_voice = mix.with_name(mix.name + ".part"), voice.with_name(voice.name + ".part")
    with sf.SoundFile(tmp_mix, "w", rate, 1, "FLOAT", format="WAV") as out, \
         sf.SoundFile(tmp_voice, "w", rate, 1, "PCM_24", format="WAV") as vout, \
         (sf.SoundFile(background_wav) if background_wav else contextlib.nullcontext()) as bg:
        for pos, src in enumerate(sf.blocks(source_wav, blocksize=block, dtype="float32", always_2d=False)):
            b0, n = pos * block, src.size
            dub = np.zeros(n, dtype=np.float32)
            lo, hi = bisect.bisect_right(ends, b0), bisect.bisect_left(starts, b0 + n)
            for k in [k for k in cache if k < lo]:
                del cache[k]
            for k in range(lo, hi):
                if k not in cache:
                    cache[k] = sf.read(placements[k].clip, dtype="float32")[0]
                s, e = spans[k]
                a, z = max(s, b0), min(e, b0 + n)
                dub[a - b0: z - b0] += cache[k][a - s: z - s]
            if bg is not None:  # stems: the background as it is, padded with silence where it ends early
                under = np.zeros(n, dtype=np.float32)
                got = bg.read(n, dtype="float32")
                under[: got.size] = got
            else:
                under = src * _duck_envelope(b0, n, spans, duck, ramp)
            out.write(under + dub)  # float, unclipped: mastering sets the level
            vout.write(np.clip(dub, -1.0, 1.0))
    tmp_mix.replace(mix)
    tmp_voice.replace(voice)
