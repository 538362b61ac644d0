"""mix: voice-over. The original plays on, ducked under each dubbed line with short ramps.

Works block by block (audio.BLOCK_SECONDS): a three-hour source costs the same memory as a minute.
"""

from __future__ import annotations

import bisect
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


def run(source_wav: Path, placements: list[Placement], master: Path, voice: Path,
        duck_db: float, ramp_ms: float) -> None:
    info = sf.info(source_wav)
    rate = info.samplerate
    block = int(BLOCK_SECONDS * rate)
    duck, ramp = 10 ** (duck_db / 20), int(ramp_ms / 1000 * rate)
    placements = sorted(placements, key=lambda p: p.start_sample)
    lengths = [sf.info(p.clip).frames for p in placements]
    spans = [(p.start_sample, p.start_sample + n) for p, n in zip(placements, lengths, strict=True)]
    starts = [s for s, _ in spans]
    cache: dict[Path, np.ndarray] = {}
    tmp_master, tmp_voice = master.with_name(master.name + ".part"), voice.with_name(voice.name + ".part")
    with sf.SoundFile(tmp_master, "w", rate, 1, "PCM_24", format="WAV") as out, \
         sf.SoundFile(tmp_voice, "w", rate, 1, "PCM_24", format="WAV") as vout:
        for pos, src in enumerate(sf.blocks(source_wav, blocksize=block, dtype="float32", always_2d=False)):
            b0 = pos * block
            n = src.size
            dub = np.zeros(n, dtype=np.float32)
            lo = bisect.bisect_left([e for _, e in spans], b0)
            hi = bisect.bisect_left(starts, b0 + n)
            for k in range(lo, hi):
                s, e = spans[k]
                clip = cache.get(placements[k].clip)
                if clip is None:
                    clip = sf.read(placements[k].clip, dtype="float32")[0]
                    cache[placements[k].clip] = clip
                a, z = max(s, b0), min(e, b0 + n)
                dub[a - b0: z - b0] += clip[a - s: z - s]
            for key in [p.clip for p, (_, e) in zip(placements, spans, strict=True) if e <= b0]:
                cache.pop(key, None)  # clips behind us are done: keep the cache small
            mixed = src * _duck_envelope(b0, n, spans, duck, ramp) + dub
            out.write(np.clip(mixed, -1.0, 1.0))
            vout.write(np.clip(dub, -1.0, 1.0))
    tmp_master.replace(master)
    tmp_voice.replace(voice)
