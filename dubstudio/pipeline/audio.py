"""Small helpers over soundfile/soxr for clips and block-wise reading: the working format is mono float32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

BLOCK_SECONDS = 10.0  # mixing and measuring work in blocks this long, so memory is flat in the media's length


def write_wav(path: Path, samples: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> None:
    """Write atomically: a reader never sees half a file under the final name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    sf.write(tmp, samples, sample_rate, subtype=subtype, format="WAV")
    tmp.replace(path)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    data, rate = sf.read(path, dtype="float32", always_2d=False)
    if data.ndim > 1:
        data = data.mean(axis=1)
    return data, int(rate)


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    if src_rate == dst_rate or samples.size == 0:
        return samples.astype(np.float32, copy=False)
    import soxr  # fast, high-quality and deterministic; imported only when a rate differs

    return soxr.resample(samples, src_rate, dst_rate, quality="HQ").astype(np.float32)


def rms_db(samples: np.ndarray) -> float:
    if samples.size == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return 20 * np.log10(rms) if rms > 0 else float("-inf")
