"""synthesize: one clip per line, cached by content so a rerun or resume never speaks a line twice."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..vendors.base import TextToSpeech
from .audio import resample, write_wav


def clip_name(engine: str, voice: str | None, rate: float, language: str, text: str) -> str:
    key = "\0".join([engine, voice or "", f"{rate:.4f}", language, text])
    return hashlib.sha256(key.encode()).hexdigest()[:24] + ".wav"


def trim_silence(samples: np.ndarray, sample_rate: int, threshold_db: float = -45.0) -> np.ndarray:
    """Cut leading and trailing silence so that speech starts exactly where it is placed."""
    if samples.size == 0:
        return samples
    hop = max(1, sample_rate // 100)
    frames = samples[: samples.size // hop * hop].reshape(-1, hop)
    if frames.size == 0:
        return samples
    level = 20 * np.log10(np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1)) + 1e-12)
    loud = np.flatnonzero(level > threshold_db)
    if loud.size == 0:
        return samples[:0]
    return samples[loud[0] * hop: (loud[-1] + 1) * hop]


def run(tts: TextToSpeech, lines: dict[str, str], language: str, clip_dir: Path, sample_rate: int,
        voice: str | None = None, progress: Callable[[float], None] | None = None) -> dict[str, Path]:
    """Speak every non-empty line; returns clip paths by segment id (mono, `sample_rate`)."""
    clip_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    items = list(lines.items())
    for n, (seg_id, text) in enumerate(items, 1):
        if text.strip():
            path = clip_dir / clip_name(tts.name, voice, 1.0, language, text)
            if not path.exists():
                speech = tts.synthesize(text, language, voice=voice)
                samples = trim_silence(resample(np.asarray(speech.samples, dtype=np.float32),
                                                speech.sample_rate, sample_rate), sample_rate)
                write_wav(path, samples, sample_rate, subtype="FLOAT")
            out[seg_id] = path
        if progress:
            progress(n / len(items))
    return out
